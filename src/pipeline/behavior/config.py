"""How the tail log is aligned to the imaging frames (config ``tail_alignment``); the
alignment itself is :mod:`pipeline.behavior.tail`.

Light (no h5py, NWB): the Snakefile builds it at parse time to make the alignment rule's params.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.params import Params


@dataclass(frozen=True)
class TailAlignmentConfig(Params):
    """How the tail log is aligned to imaging frames (config key ``tail_alignment``)."""

    frame_times_mark: str = "middle"  # frame_times.csv holds frame "middle" or "start" times
    max_gap_s: float = 0.1  # longer stretches without a tracked sample of a segment invalidate the volumes (s)
    max_sync_residual_s: float = 0.005  # largest |residual| of the frame-trigger clock fit (s)
    max_invalid_fraction: float = 0.2  # the fish fails when more of its volumes are invalid (fraction)

    def __post_init__(self) -> None:
        self._coerce_field_types()
        if self.frame_times_mark not in ("middle", "start"):
            raise ValueError(f"frame_times_mark must be 'middle' or 'start', got {self.frame_times_mark!r}")
        if not self.max_gap_s > 0:
            raise ValueError("max_gap_s must be > 0")
        if not self.max_sync_residual_s > 0:
            raise ValueError("max_sync_residual_s must be > 0")
        if not 0 <= self.max_invalid_fraction < 1:
            raise ValueError("max_invalid_fraction must be in [0, 1)")
