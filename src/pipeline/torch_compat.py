"""Work-arounds for the installed torch/torchvision pair (CPU torch, CUDA-linked torchvision)."""

from __future__ import annotations


def register_missing_torchvision_ops() -> None:
    """Define the operator schemas ``torchvision::nms`` and ``torchvision::qnms`` when
    torchvision's compiled extension could not be loaded.

    Why: ``import suite2p`` imports cellpose, which imports torchvision. The installed
    torchvision wheel's ``_C.so`` is linked against a CUDA build of torch and fails to
    load with the CPU-only torch (``libc10.so: cannot open shared object file``);
    torchvision tolerates that for most ops, but ``torchvision/_meta_registrations.py``
    unconditionally calls ``torch.library.register_fake("torchvision::nms")`` (and
    ``"torchvision::qnms"``), which raises ``RuntimeError: operator torchvision::nms does
    not exist`` and aborts the whole import. Defining the two schemas (no kernels: Suite2P
    and the Suite2P parts of cellpose never call them) lets the import succeed. Where the
    extension did load (matching torch/torchvision, e.g. a CUDA install) the ops already
    exist and nothing is done. The same happens for ``import transformers`` (its image utilities import
    torchvision when it is installed). Idempotent; call it before importing suite2p or
    transformers.
    """
    import torch

    for name in ("nms", "qnms"):
        try:
            getattr(torch.ops.torchvision, name)
        except (AttributeError, RuntimeError):
            torch.library.define(
                f"torchvision::{name}", "(Tensor dets, Tensor scores, float iou_threshold) -> Tensor"
            )


def import_transformers():
    """Import and return ``transformers`` after :func:`register_missing_torchvision_ops`."""
    register_missing_torchvision_ops()
    import transformers

    return transformers
