"""How an IBL session is binned (config ``ibl_binning``; NEDS paper seed 002, Sec. 4:
2 s windows of 20 ms bins, neurons >= 2 Hz); the binning itself is :mod:`pipeline.ibl.binning`.

Light (no h5py, ONE): the Snakefile builds it at parse time to make the binning rule's params.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Mapping

import numpy as np

from pipeline.ibl.regions import REGION_LEVELS
from pipeline.ibl.trials import TrialFilter
from pipeline.params import Params


#: Accepted ``firing_rate_window`` values (see :class:`BinningConfig`).
FIRING_RATE_WINDOWS = ("trials", "session")


@dataclass(frozen=True)
class BinningConfig(Params):
    """How a session is binned (config key ``ibl_binning``)."""

    align_event: str = "stimOn_times"  # trial event at time 0 of every window
    window_start_s: float = -0.5  # window start relative to the event (s)
    window_end_s: float = 1.5  # window end relative to the event (s); NEDS: 2 s windows
    bin_size_s: float = 0.02  # NEDS: 20 ms bins -> 100 bins per trial
    min_firing_rate_hz: float = 2.0  # NEDS: neurons below 2 Hz are excluded
    # where the firing rate of the filter is measured: "trials" = spikes inside the kept
    # trials' windows / (n_trials * window length), as NEDS does on its binned data;
    # "session" = all spikes / (last - first spike time of the probe)
    firing_rate_window: str = "trials"
    min_qc_label: float | None = None  # keep clusters with clusters.metrics label >= this (BWM: 1); None = off (NEDS)
    region_level: str = "Beryl"  # iblatlas mapping of the region labels: Beryl, Cosmos or Allen
    split_fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)  # train/val/test by trial
    trial_filter: TrialFilter = field(default_factory=TrialFilter)

    def __post_init__(self) -> None:
        self._coerce_field_types()
        n_bins = (self.window_end_s - self.window_start_s) / self.bin_size_s
        if self.bin_size_s <= 0 or self.window_end_s <= self.window_start_s:
            raise ValueError("bin_size_s must be > 0 and window_end_s > window_start_s")
        if abs(n_bins - round(n_bins)) > 1e-6:
            raise ValueError(f"the window ({self.window_end_s - self.window_start_s} s) is not a whole number of bins")
        if self.min_firing_rate_hz < 0:
            raise ValueError("min_firing_rate_hz must be >= 0")
        if self.firing_rate_window not in FIRING_RATE_WINDOWS:
            raise ValueError(f"firing_rate_window must be one of {FIRING_RATE_WINDOWS}, got {self.firing_rate_window!r}")
        if self.region_level not in REGION_LEVELS:
            raise ValueError(f"region_level must be one of {REGION_LEVELS}, got {self.region_level!r}")

    @property
    def n_bins(self) -> int:
        return int(round((self.window_end_s - self.window_start_s) / self.bin_size_s))

    @property
    def relative_edges_s(self) -> np.ndarray:
        return self.window_start_s + self.bin_size_s * np.arange(self.n_bins + 1)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None) -> "BinningConfig":
        """From the (YAML) config section; unknown keys raise ValueError naming them."""
        values = dict(mapping or {})
        trial_filter = dict(values.pop("trial_filter", None) or {})
        for name, known in [("ibl_binning", {f.name for f in fields(cls)}),
                            ("ibl_binning.trial_filter", {f.name for f in fields(TrialFilter)})]:
            source = values if name == "ibl_binning" else trial_filter
            unknown = sorted(set(source) - known)
            if unknown:
                raise ValueError(f"unknown {name} key(s): {unknown}")
        if "required_events" in trial_filter:
            trial_filter["required_events"] = tuple(trial_filter["required_events"])
        return cls(**values, trial_filter=TrialFilter(**trial_filter))
