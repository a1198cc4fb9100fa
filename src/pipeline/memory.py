"""Memory: the peak of the current process (job metrics, benchmarks), and the memory a
training run's parameters need (:func:`training_memory_bytes`, for sizing GPU jobs)."""

from __future__ import annotations

import math
import resource
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

#: bitsandbytes 8-bit optimisers keep fp32 states for tensors smaller than this (``min_8bit_size``)
BNB_MIN_8BIT_SIZE = 4096
#: values per block-wise quantisation block of bitsandbytes 8-bit optimiser states (one fp32 absmax each)
BNB_BLOCK_SIZE = 256
OPTIMIZERS = ("adamw", "adamw8bit")


def peak_rss_mb() -> float:
    """Peak resident set size of this process in MB: Linux ``VmHWM``, which exec resets (so a
    job started by Snakemake or a benchmark worker does not report its parent's peak, as
    ``ru_maxrss`` can); ``ru_maxrss`` where /proc is unavailable."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


@dataclass(frozen=True)
class TrainingMemory:
    """Bytes a training run's parameters need (activations excluded: they depend on batch,
    window length and gradient checkpointing and are not estimated here)."""

    weights: int  # every parameter, trainable or frozen, in its dtype
    gradients: int  # one gradient per trainable parameter, in the parameter's dtype
    optimizer_states: int  # AdamW's two moments per trainable parameter
    n_parameters: int
    n_trainable: int

    @property
    def total(self) -> int:
        return self.weights + self.gradients + self.optimizer_states

    def to_dict(self) -> dict[str, int | str]:
        return {"weights": self.weights, "gradients": self.gradients, "optimizer_states": self.optimizer_states,
                "total": self.total, "n_parameters": self.n_parameters, "n_trainable": self.n_trainable,
                "activations": "excluded"}


def adam_state_bytes(numel: int, bytes_per_value: int, optimizer: str) -> int:
    """Bytes of AdamW's two moment states of one parameter tensor of ``numel`` values:
    ``adamw`` (torch): two tensors in the parameter's dtype; ``adamw8bit`` (bitsandbytes
    ``AdamW8bit``): two uint8 tensors plus one fp32 absmax per block of
    :data:`BNB_BLOCK_SIZE` values each, or two fp32 tensors for a tensor smaller than
    :data:`BNB_MIN_8BIT_SIZE` (bitsandbytes' rule; the 256-entry quantisation maps it shares
    between tensors, 2 KiB, are left out)."""
    if optimizer not in OPTIMIZERS:
        raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
    if optimizer == "adamw":
        return 2 * numel * bytes_per_value
    if numel < BNB_MIN_8BIT_SIZE:
        return 2 * numel * 4
    return 2 * (numel + 4 * math.ceil(numel / BNB_BLOCK_SIZE))


def training_memory_bytes(parameters: Iterable[tuple[int, int, bool]], optimizer: str) -> TrainingMemory:
    """Memory of weights, gradients and AdamW states for ``parameters``: one
    ``(numel, bytes per value, trainable)`` per parameter tensor (for a torch model:
    ``(p.numel(), p.element_size(), p.requires_grad)``; the meta device gives them without
    allocating). No fp32 master copy (pure-dtype training, as the ``scratch_full`` arm)."""
    weights = gradients = states = n_parameters = n_trainable = 0
    for numel, bytes_per_value, trainable in parameters:
        weights += numel * bytes_per_value
        n_parameters += numel
        if trainable:
            gradients += numel * bytes_per_value
            states += adam_state_bytes(numel, bytes_per_value, optimizer)
            n_trainable += numel
    return TrainingMemory(weights, gradients, states, n_parameters, n_trainable)
