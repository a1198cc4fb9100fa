"""Load one IBL session from an ALF folder (as a ONE cache stores it) and validate it.

Conventions (IBL ALF):

- ``spikes.times`` (s, sorted ascending) and ``spikes.clusters`` (cluster id per spike)
  live in the probe collection; per-cluster arrays ``clusters.*`` are indexed by cluster id
  (``clusters.brainLocationAcronyms_ccf_2017[k]`` is the region of cluster ``k``).
- ``trials.*`` are per-trial arrays of equal length (times in s, NaN where an event did
  not happen), or the columns of ``trials.table.pqt`` (newer caches; per-attribute arrays
  win where both exist); ``choice`` in {-1, 0, 1} (0 = no-go); ``probabilityLeft`` is the
  block prior.
- ``wheel.position`` is in radians (some exports hold raw encoder counts: declare
  ``wheel_units: counts`` in the sessions table) at ``wheel.timestamps`` (s).
- ``leftCamera.ROIMotionEnergy`` (a.u.) at ``leftCamera.times`` (s): whisker motion energy.

Every problem raises :class:`~pipeline.io.errors.InputDataError` naming the file.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from pipeline.io.alf import find_dataset, require_dataset
from pipeline.io.errors import InputDataError

#: Trial attributes read when present (the alignment and reaction-time events are required).
TRIAL_ATTRIBUTES = [
    "stimOn_times", "goCue_times", "firstMovement_times", "response_times", "feedback_times",
    "choice", "feedbackType", "contrastLeft", "contrastRight", "probabilityLeft",
]
#: Wheel speeds above this (rad/s) are not a mouse turning a wheel: a unit mistake.
MAX_PLAUSIBLE_WHEEL_SPEED = 100.0


@dataclass(frozen=True)
class AlfSession:
    """One session's raw arrays, validated. Times in seconds on the session clock."""

    spike_times: np.ndarray  # (n_spikes,) float64, sorted; may be a read-only memory map
    spike_clusters: np.ndarray  # (n_spikes,) int cluster id of each spike
    cluster_acronyms: np.ndarray  # (n_clusters,) str, brain-region acronym per cluster id
    cluster_depths_um: np.ndarray | None  # (n_clusters,) float, um from the probe tip
    trials: dict[str, np.ndarray]  # attribute -> (n_trials,) float64
    wheel_times: np.ndarray  # (n_wheel,) s
    wheel_position_rad: np.ndarray  # (n_wheel,) rad, converted from counts if declared
    camera_times: np.ndarray  # (n_frames,) s
    motion_energy: np.ndarray  # (n_frames,) a.u.
    source_files: tuple[str, ...]  # every file read

    @property
    def n_clusters(self) -> int:
        return int(self.cluster_acronyms.shape[0])

    @property
    def n_trials(self) -> int:
        return int(next(iter(self.trials.values())).shape[0])


def _load(path: Path, *, mmap: bool = False) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise InputDataError(path, f"not a readable .npy array ({err})") from None


def _read_trials_table(path: Path) -> dict[str, np.ndarray]:
    """Columns of ``_ibl_trials.table.pqt`` (one row per trial) named in TRIAL_ATTRIBUTES."""
    import pandas as pd

    try:
        table = pd.read_parquet(path)
    except (OSError, ValueError) as err:
        raise InputDataError(path, f"not a readable Parquet trials table ({err})") from None
    return {attr: table[attr].to_numpy(dtype=float) for attr in TRIAL_ATTRIBUTES if attr in table.columns}


def _is_sorted(values: np.ndarray, chunk: int = 1 << 22) -> bool:
    """Ascending order, checked in chunks so a memory-mapped array is streamed."""
    for start in range(0, values.shape[0] - 1, chunk):
        block = np.asarray(values[start:start + chunk + 1])
        if np.any(block[1:] < block[:-1]):
            return False
    return True


def _vector(path: Path, array: np.ndarray) -> np.ndarray:
    if array.ndim != 1:
        raise InputDataError(path, f"expected a 1-D array, found shape {array.shape}")
    return array


def load_alf_session(
    alf_dir: str | os.PathLike,
    probe: str,
    *,
    required_trial_events: tuple[str, ...] = ("stimOn_times",),
    wheel_units: str = "rad",
    wheel_ticks_per_rev: int = 4096,
) -> AlfSession:
    """Read and validate a session.

    Parameters
    ----------
    alf_dir : session ALF folder holding ``[_ibl_]trials.*``, ``[_ibl_]wheel.*``, camera data.
    probe : collection inside ``alf_dir`` holding ``spikes.*`` and ``clusters.*``.
    required_trial_events : trial attributes that must exist (e.g. the alignment event).
    wheel_units : ``"rad"`` or ``"counts"`` (then divided by ``wheel_ticks_per_rev`` / 2 pi).

    Checks: required datasets present; spikes sorted; spike arrays of equal length;
    cluster ids within the per-cluster arrays; trial arrays of equal length; wheel and
    camera timestamps increasing and matching their values; plausible wheel speeds.
    """
    alf_dir = Path(alf_dir)
    if not alf_dir.is_dir():
        raise InputDataError(alf_dir, "ALF session folder not found")
    probe_dir = alf_dir / probe
    read: list[Path] = []

    def need(folder: Path, obj: str, attr: str, *, mmap: bool = False) -> tuple[Path, np.ndarray]:
        path = require_dataset(folder, obj, attr)
        read.append(path)
        return path, _vector(path, _load(path, mmap=mmap))

    # -- spikes and clusters
    times_path, spike_times = need(probe_dir, "spikes", "times", mmap=True)
    clusters_path, spike_clusters = need(probe_dir, "spikes", "clusters", mmap=True)
    if spike_times.shape != spike_clusters.shape:
        raise InputDataError(
            clusters_path, f"{spike_clusters.shape[0]} entries but {times_path.name} has {spike_times.shape[0]}"
        )
    if spike_times.size == 0:
        raise InputDataError(times_path, "the session has no spikes")
    if not _is_sorted(spike_times):
        raise InputDataError(times_path, "spike times are not sorted in ascending order")
    acronym_path, acronyms = need(probe_dir, "clusters", "brainLocationAcronyms_ccf_2017")
    acronyms = acronyms.astype(str)
    max_cluster = int(spike_clusters.max())
    if int(spike_clusters.min()) < 0 or max_cluster >= acronyms.shape[0]:
        raise InputDataError(
            clusters_path,
            f"cluster ids range {int(spike_clusters.min())}..{max_cluster} but {acronym_path.name} "
            f"describes {acronyms.shape[0]} clusters",
        )
    depths_path = find_dataset(probe_dir, "clusters", "depths")
    depths = None
    if depths_path is not None:
        read.append(depths_path)
        depths = _vector(depths_path, _load(depths_path)).astype(float)
        if depths.shape != acronyms.shape:
            raise InputDataError(depths_path, f"{depths.shape[0]} clusters but {acronym_path.name} has {acronyms.shape[0]}")

    # -- trials: per-attribute arrays, else columns of the trials table (newer ONE caches)
    trials: dict[str, np.ndarray] = {}
    for attr in TRIAL_ATTRIBUTES:
        path = find_dataset(alf_dir, "trials", attr)
        if path is None:
            continue
        read.append(path)
        trials[attr] = _vector(path, _load(path)).astype(float)
    table_path = find_dataset(alf_dir, "trials", "table", ext="pqt")
    if table_path is not None and any(attr not in trials for attr in TRIAL_ATTRIBUTES):
        read.append(table_path)
        for attr, column in _read_trials_table(table_path).items():
            trials.setdefault(attr, column)
    for attr in required_trial_events:
        if attr not in trials:
            raise InputDataError(alf_dir, f"missing ALF dataset trials.{attr}.npy (needed by the binning config)")
    lengths = {attr: values.shape[0] for attr, values in trials.items()}
    if len(set(lengths.values())) > 1:
        raise InputDataError(alf_dir, f"trial arrays differ in length: {lengths}")

    # -- wheel
    wheel_t_path, wheel_t = need(alf_dir, "wheel", "timestamps")
    wheel_p_path, wheel_p = need(alf_dir, "wheel", "position")
    if wheel_t.shape != wheel_p.shape:
        raise InputDataError(wheel_p_path, f"{wheel_p.shape[0]} samples but {wheel_t_path.name} has {wheel_t.shape[0]}")
    if wheel_t.size < 2 or np.any(np.diff(wheel_t) <= 0):
        raise InputDataError(wheel_t_path, "wheel timestamps must be strictly increasing (at least 2 samples)")
    if wheel_units == "counts":
        wheel_p = wheel_p * (2 * math.pi / wheel_ticks_per_rev)
    elif wheel_units != "rad":
        raise ValueError(f"wheel_units must be 'rad' or 'counts', got {wheel_units!r}")
    speed = np.abs(np.diff(wheel_p)) / np.diff(wheel_t)
    typical_max = float(np.percentile(speed, 99.9))
    if typical_max > MAX_PLAUSIBLE_WHEEL_SPEED:
        raise InputDataError(
            wheel_p_path,
            f"wheel speed reaches {typical_max:.0f} rad/s (99.9th percentile) taking positions as "
            f"{wheel_units}: implausible for a mouse; are they encoder counts (set wheel_units: counts "
            "and wheel_ticks_per_rev in the sessions table)?",
        )

    # -- camera motion energy (whisker)
    cam_t_path, cam_t = need(alf_dir, "leftCamera", "times")
    me_path, motion_energy = need(alf_dir, "leftCamera", "ROIMotionEnergy")
    if cam_t.shape != motion_energy.shape:
        raise InputDataError(me_path, f"{motion_energy.shape[0]} frames but {cam_t_path.name} has {cam_t.shape[0]}")
    finite = np.isfinite(cam_t) & np.isfinite(motion_energy)
    cam_t, motion_energy = cam_t[finite], motion_energy[finite].astype(float)
    if cam_t.size < 2 or np.any(np.diff(cam_t) <= 0):
        raise InputDataError(cam_t_path, "camera timestamps must be strictly increasing (at least 2 frames)")

    return AlfSession(
        spike_times=spike_times,
        spike_clusters=spike_clusters,
        cluster_acronyms=acronyms,
        cluster_depths_um=depths,
        trials=trials,
        wheel_times=wheel_t.astype(float),
        wheel_position_rad=wheel_p.astype(float),
        camera_times=cam_t.astype(float),
        motion_energy=motion_energy,
        source_files=tuple(str(p) for p in read),
    )
