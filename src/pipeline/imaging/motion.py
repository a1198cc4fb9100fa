"""Choice of the motion-correction backend (config ``motion_correction.method``).

- ``normcorre`` (default): NoRMCorre in PyTorch, :mod:`pipeline.imaging.normcorre`;
- ``suite2p``: suite2p's rigid + block registration, :mod:`pipeline.imaging.suite2p_registration`;
- ``caiman``: CaImAn's NoRMCorre (conda-only; ``envs/caiman.yaml``), :mod:`pipeline.imaging.caiman_registration`.

Both write the same registered-plane file. Each backend's settings are their own config
section (``normcorre``, ``suite2p_registration``).
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.params import Params

#: method -> config section holding its settings
METHOD_SECTIONS = {"normcorre": "normcorre", "suite2p": "suite2p_registration", "caiman": "caiman"}


@dataclass(frozen=True)
class MotionCorrectionConfig(Params):
    """Which backend registers the raw stacks."""

    method: str = "normcorre"  # "normcorre", "suite2p" or "caiman"

    def __post_init__(self) -> None:
        if self.method not in METHOD_SECTIONS:
            raise ValueError(f"method must be one of {sorted(METHOD_SECTIONS)}, got {self.method!r}")


def correct_motion(method: str, stack_path, out_path, settings: dict) -> dict:
    """Register ``stack_path`` into ``out_path`` with ``method`` and its ``settings``."""
    if method == "normcorre":
        from pipeline.imaging.config import NormcorreParams
        from pipeline.imaging.normcorre import motion_correct

        return motion_correct(stack_path, out_path, NormcorreParams.from_mapping(settings))
    if method == "suite2p":
        from pipeline.imaging.config import Suite2pRegistrationParams
        from pipeline.imaging.suite2p_registration import register_with_suite2p

        return register_with_suite2p(stack_path, out_path, Suite2pRegistrationParams.from_mapping(settings))
    if method == "caiman":
        from pipeline.imaging.caiman_registration import register_with_caiman
        from pipeline.imaging.config import CaimanParams

        return register_with_caiman(stack_path, out_path, CaimanParams.from_mapping(settings))
    raise ValueError(f"unknown motion-correction method {method!r}")
