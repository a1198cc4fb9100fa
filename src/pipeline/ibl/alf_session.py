"""Load one IBL session from a local ONE cache (ONE-api, local mode) and validate it.

Datasets are located by :class:`pipeline.io.alf.OneSession` (collections and revisions as
ONE resolves them) and read here. Conventions (IBL ALF):

- per probe collection (``alf/probe00``, ``alf/probe00/pykilosort``, ...): ``spikes.times``
  (s, sorted ascending) and ``spikes.clusters`` (cluster id per spike); per-cluster arrays
  ``clusters.*`` indexed by cluster id; regions through ``clusters.channels`` ->
  ``channels.brainLocationIds_ccf_2017`` (Allen ids), or, in older caches without channel
  locations, ``clusters.brainLocationAcronyms_ccf_2017`` (exact Allen acronyms);
  ``clusters.metrics.pqt`` column ``label`` (IBL single-unit QC, fraction of 3 metrics
  passed; 1 = good) when present;
- ``alf/[_ibl_]trials.*``: per-trial arrays of equal length (times in s, NaN where an event
  did not happen) and/or the columns of ``_ibl_trials.table.pqt``; a value present in both
  must agree (else an error naming both files); ``choice`` in {-1, 0, 1} (0 = no-go);
  ``probabilityLeft`` is the block prior;
- ``alf/[_ibl_]wheel.position`` in radians (some exports hold raw encoder counts: declare
  ``wheel_units: counts`` in the sessions table) at ``wheel.timestamps`` (s); samples with
  the same timestamp are averaged (logged);
- ``alf/leftCamera.ROIMotionEnergy`` (a.u.) at ``alf/_ibl_leftCamera.times`` (s): whisker
  motion energy. More timestamps than frames: the first ones are dropped (IBL's rule,
  :func:`clean_camera`). When the left camera is missing or has fewer timestamps than
  frames, the right camera (``rightCamera.*``, which films the other whisker pad) is used
  instead, with a warning, and the choice is recorded; if neither camera is usable the
  error names both.

Every problem raises :class:`~pipeline.io.errors.InputDataError` naming the file.
"""

from __future__ import annotations

import logging
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from pipeline.ibl.regions import allen_ids_from_acronyms
from pipeline.io.alf import OneSession
from pipeline.io.errors import InputDataError

log = logging.getLogger(__name__)

#: Trial attributes read when present (the alignment and reaction-time events are required).
TRIAL_ATTRIBUTES = [
    "stimOn_times", "goCue_times", "firstMovement_times", "response_times", "feedback_times",
    "choice", "feedbackType", "contrastLeft", "contrastRight", "probabilityLeft",
]
#: Wheel speeds above this (rad/s) are not a mouse turning a wheel: a unit mistake.
MAX_PLAUSIBLE_WHEEL_SPEED = 100.0


@dataclass(frozen=True)
class ProbeSorting:
    """Spike sorting of one probe collection. Cluster ids index the per-cluster arrays."""

    collection: str  # e.g. "alf/probe00/pykilosort"
    spike_times: np.ndarray  # (n_spikes,) float64 s, sorted; may be a read-only memory map
    spike_clusters: np.ndarray  # (n_spikes,) int cluster id of each spike; may be a memory map
    cluster_allen_ids: np.ndarray  # (n_clusters,) int64 Allen CCF 2017 structure id
    region_source: str  # the file the Allen ids come from (named in region errors)
    cluster_depths_um: np.ndarray | None  # (n_clusters,) float, um from the probe tip
    cluster_qc_label: np.ndarray | None  # (n_clusters,) float IBL QC label (clusters.metrics), 1 = good

    @property
    def n_clusters(self) -> int:
        return int(self.cluster_allen_ids.shape[0])


@dataclass(frozen=True)
class AlfSession:
    """One session's raw arrays, validated. Times in seconds on the session clock."""

    probes: tuple[ProbeSorting, ...]  # one per probe collection, in the order requested
    trials: dict[str, np.ndarray]  # attribute -> (n_trials,) float64
    wheel_times: np.ndarray  # (n_wheel,) s, strictly increasing
    wheel_position_rad: np.ndarray  # (n_wheel,) rad, converted from counts if declared
    camera_times: np.ndarray  # (n_frames,) s
    camera: str  # the camera whose whisker ROI motion energy is used: "left" or "right"
    motion_energy: np.ndarray  # (n_frames,) a.u.
    session_path: str  # lab/Subjects/subject/date/number folder
    source_files: tuple[str, ...]  # every file read

    @property
    def n_trials(self) -> int:
        return int(next(iter(self.trials.values())).shape[0])

    @property
    def spike_span_s(self) -> tuple[float, float]:
        """(first, last) spike time over all probes (s)."""
        return (min(float(p.spike_times[0]) for p in self.probes), max(float(p.spike_times[-1]) for p in self.probes))


def _load(path: Path, *, mmap: bool = False) -> np.ndarray:
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except (ValueError, OSError) as err:
        raise InputDataError(path, f"not a readable .npy array ({err})") from None


def _read_parquet(path: Path):
    import pandas as pd

    try:
        return pd.read_parquet(path)
    except (OSError, ValueError) as err:
        raise InputDataError(path, f"not a readable Parquet table ({err})") from None


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


class _Reader:
    """Reads datasets of one session and records every file read."""

    def __init__(self, session: OneSession):
        self.session = session
        self.read: list[Path] = []

    def files(self, obj: str, collection: str) -> dict[str, Path]:
        return self.session.object_files(obj, collection, required=False)

    def vector(self, path: Path, *, mmap: bool = False) -> np.ndarray:
        self.read.append(path)
        return _vector(path, _load(path, mmap=mmap))

    def need(self, files: dict[str, Path], obj: str, attr: str, collection: str, *, mmap: bool = False
             ) -> tuple[Path, np.ndarray]:
        if attr not in files:
            raise InputDataError(self.session.session_path / collection, f"missing ALF dataset {obj}.{attr}")
        return files[attr], self.vector(files[attr], mmap=mmap)


def check_spikes(spike_times: np.ndarray, spike_clusters: np.ndarray, times_path: str | os.PathLike,
                 clusters_path: str | os.PathLike) -> None:
    """Equal lengths, at least one spike, times sorted (streamed), else InputDataError."""
    times_path, clusters_path = Path(times_path), Path(clusters_path)
    if spike_times.shape != spike_clusters.shape:
        raise InputDataError(
            clusters_path, f"{spike_clusters.shape[0]} entries but {times_path.name} has {spike_times.shape[0]}"
        )
    if spike_times.size == 0:
        raise InputDataError(times_path, "the collection has no spikes")
    if not _is_sorted(spike_times):
        raise InputDataError(times_path, "spike times are not sorted in ascending order")


def _load_probe(reader: _Reader, collection: str) -> ProbeSorting:
    spikes = reader.files("spikes", collection)
    if "times" not in spikes or "clusters" not in spikes:
        raise InputDataError(reader.session.session_path / collection,
                             "collection without spikes.times / spikes.clusters")
    times_path, spike_times = reader.need(spikes, "spikes", "times", collection, mmap=True)
    clusters_path, spike_clusters = reader.need(spikes, "spikes", "clusters", collection, mmap=True)
    check_spikes(spike_times, spike_clusters, times_path, clusters_path)

    clusters = reader.files("clusters", collection)
    channels = reader.files("channels", collection)
    if "channels" in clusters and "brainLocationIds_ccf_2017" in channels:
        cl_chan_path, cluster_channels = reader.need(clusters, "clusters", "channels", collection)
        loc_path, channel_ids = reader.need(channels, "channels", "brainLocationIds_ccf_2017", collection)
        cluster_channels = cluster_channels.astype(np.int64)
        if cluster_channels.size and (cluster_channels.min() < 0 or cluster_channels.max() >= channel_ids.shape[0]):
            raise InputDataError(
                loc_path, f"{channel_ids.shape[0]} channels but {cl_chan_path.name} refers to channels "
                f"{int(cluster_channels.min())}..{int(cluster_channels.max())}")
        allen_ids, region_source = channel_ids.astype(np.int64)[cluster_channels], str(loc_path)
        n_clusters_path = cl_chan_path
    elif "brainLocationAcronyms_ccf_2017" in clusters:
        acr_path, acronyms = reader.need(clusters, "clusters", "brainLocationAcronyms_ccf_2017", collection)
        allen_ids, region_source = allen_ids_from_acronyms(acronyms.astype(str), acr_path), str(acr_path)
        n_clusters_path = acr_path
    else:
        raise InputDataError(
            reader.session.session_path / collection,
            "no cluster locations: need clusters.channels + channels.brainLocationIds_ccf_2017 "
            "(or clusters.brainLocationAcronyms_ccf_2017)")
    n_clusters = allen_ids.shape[0]
    max_cluster = int(spike_clusters.max())
    if int(spike_clusters.min()) < 0 or max_cluster >= n_clusters:
        raise InputDataError(
            n_clusters_path, f"describes {n_clusters} clusters but {clusters_path.name} holds cluster ids "
            f"{int(spike_clusters.min())}..{max_cluster}")

    depths = None
    if "depths" in clusters:
        depths_path, depths = reader.need(clusters, "clusters", "depths", collection)
        depths = depths.astype(float)
        if depths.shape[0] != n_clusters:
            raise InputDataError(depths_path, f"{depths.shape[0]} clusters but {Path(n_clusters_path).name} has {n_clusters}")
    qc_label = None
    if "metrics" in clusters:
        metrics_path = clusters["metrics"]
        reader.read.append(metrics_path)
        metrics = _read_parquet(metrics_path)
        if "label" in metrics.columns:
            if "cluster_id" in metrics.columns:
                qc_label = np.full(n_clusters, np.nan)
                ids = metrics["cluster_id"].to_numpy(np.int64)
                if ids.size and (ids.min() < 0 or ids.max() >= n_clusters):
                    raise InputDataError(metrics_path, f"cluster_id outside 0..{n_clusters - 1}")
                qc_label[ids] = metrics["label"].to_numpy(float)
            elif len(metrics) == n_clusters:
                qc_label = metrics["label"].to_numpy(float)
            else:
                raise InputDataError(metrics_path, f"{len(metrics)} rows but {Path(n_clusters_path).name} has {n_clusters} clusters")
    return ProbeSorting(collection=collection, spike_times=spike_times, spike_clusters=spike_clusters,
                        cluster_allen_ids=allen_ids, region_source=region_source,
                        cluster_depths_um=depths, cluster_qc_label=qc_label)


def _load_trials(reader: _Reader, required: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Per-attribute trial arrays and the columns of the trials table, which must agree."""
    files = reader.files("trials", "alf")
    trials: dict[str, np.ndarray] = {}
    origin: dict[str, Path] = {}
    for attr in TRIAL_ATTRIBUTES:
        if attr in files:
            trials[attr] = reader.vector(files[attr]).astype(float)
            origin[attr] = files[attr]
    if "table" in files:
        table_path = files["table"]
        reader.read.append(table_path)
        table = _read_parquet(table_path)
        for attr in TRIAL_ATTRIBUTES:
            if attr not in table.columns:
                continue
            column = table[attr].to_numpy(dtype=float)
            if attr in trials:
                same = column.shape == trials[attr].shape and np.array_equal(column, trials[attr], equal_nan=True)
                if not same:
                    raise InputDataError(
                        origin[attr], f"trials.{attr} disagrees with column {attr!r} of {table_path} "
                        "(which one is current? remove the stale one)")
            else:
                trials[attr], origin[attr] = column, table_path
    check_trials(trials, required, reader.session.session_path / "alf")
    return trials


def check_trials(trials: dict[str, np.ndarray], required: tuple[str, ...], source: str | os.PathLike) -> None:
    """Required trial attributes present and all attributes of equal length, else
    InputDataError naming ``source``."""
    for attr in required:
        if attr not in trials:
            raise InputDataError(source, f"missing ALF dataset trials.{attr} (needed by the binning config)")
    lengths = {attr: values.shape[0] for attr, values in trials.items()}
    if len(set(lengths.values())) > 1:
        raise InputDataError(source, f"trial arrays differ in length: {lengths}")


def _load_wheel(reader: _Reader, wheel_units: str, wheel_ticks_per_rev: int) -> tuple[np.ndarray, np.ndarray]:
    files = reader.files("wheel", "alf")
    wheel_t_path, wheel_t = reader.need(files, "wheel", "timestamps", "alf")
    wheel_p_path, wheel_p = reader.need(files, "wheel", "position", "alf")
    return clean_wheel(wheel_t, wheel_p, wheel_t_path, wheel_p_path, wheel_units, wheel_ticks_per_rev)


def clean_wheel(wheel_t: np.ndarray, wheel_p: np.ndarray, wheel_t_path: str | os.PathLike,
                wheel_p_path: str | os.PathLike, wheel_units: str, wheel_ticks_per_rev: int
                ) -> tuple[np.ndarray, np.ndarray]:
    """Checked wheel (times s, position rad): equal lengths, time never going back,
    samples sharing a timestamp averaged (logged), counts converted, plausible speeds.
    Errors name the file the values came from."""
    wheel_t_path, wheel_p_path = Path(wheel_t_path), Path(wheel_p_path)
    if wheel_t.shape != wheel_p.shape:
        raise InputDataError(wheel_p_path, f"{wheel_p.shape[0]} samples but {wheel_t_path.name} has {wheel_t.shape[0]}")
    if wheel_t.size and np.any(np.diff(wheel_t) < 0):
        raise InputDataError(wheel_t_path, "wheel timestamps go backwards")
    wheel_t, wheel_p = wheel_t.astype(float), wheel_p.astype(float)
    unique_t, first, counts = np.unique(wheel_t, return_index=True, return_counts=True)
    if unique_t.size < wheel_t.size:  # encoder events in the same clock tick: one averaged sample
        log.warning("%s: %d samples share a timestamp with the previous one; their positions are averaged",
                    wheel_t_path, wheel_t.size - unique_t.size)
        wheel_p = np.add.reduceat(wheel_p, first) / counts
        wheel_t = unique_t
    if wheel_t.size < 2:
        raise InputDataError(wheel_t_path, "need at least 2 wheel samples")
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
    return wheel_t, wheel_p


#: Cameras tried for the whisker motion energy, in order.
CAMERAS = ("left", "right")


def _load_camera(reader: _Reader) -> tuple[np.ndarray, np.ndarray, str]:
    """(frame times, motion energy, camera) of the first consistent camera of CAMERAS."""
    problems = []
    for camera in CAMERAS:
        try:
            files = reader.files(f"{camera}Camera", "alf")
            cam_t_path, cam_t = reader.need(files, f"{camera}Camera", "times", "alf")
            me_path, motion_energy = reader.need(files, f"{camera}Camera", "ROIMotionEnergy", "alf")
            cam_t, motion_energy = clean_camera(cam_t, motion_energy, cam_t_path, me_path)
        except InputDataError as err:
            problems.append(str(err))
            continue
        if problems:
            log.warning("whisker motion energy from the %s camera: %s", camera, "; ".join(problems))
        return cam_t, motion_energy, camera
    raise InputDataError(reader.session.session_path / "alf", "no usable camera motion energy: " + "; ".join(problems))


def clean_camera(cam_t: np.ndarray, motion_energy: np.ndarray, cam_t_path: str | os.PathLike,
                 me_path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Checked camera (frame times s, motion energy a.u.): lengths reconciled by IBL's rule,
    non-finite frames dropped, times strictly increasing. Errors name the file the values
    came from.

    IBL's rule (``brainbox.io.one.SessionLoader._check_video_timestamps``): more timestamps
    than frames happens in pre-GPIO sessions whose first frames were not recorded, so the
    last n_frames timestamps are kept (logged); fewer timestamps than frames cannot be fixed
    (an error; :func:`load_alf_session` then tries the other camera)."""
    cam_t_path, me_path = Path(cam_t_path), Path(me_path)
    if cam_t.shape[0] < motion_energy.shape[0] or motion_energy.shape[0] == 0:
        raise InputDataError(me_path, f"{motion_energy.shape[0]} frames but {cam_t_path.name} has "
                                      f"{cam_t.shape[0]} timestamps: frames without a time cannot be aligned")
    if cam_t.shape[0] > motion_energy.shape[0]:
        log.warning("%s: %d timestamps for %d frames; the first %d dropped (IBL: frames missing at the start "
                    "of pre-GPIO videos)", cam_t_path, cam_t.shape[0], motion_energy.shape[0],
                    cam_t.shape[0] - motion_energy.shape[0])
        cam_t = cam_t[cam_t.shape[0] - motion_energy.shape[0]:]
    finite = np.isfinite(cam_t) & np.isfinite(motion_energy)
    cam_t, motion_energy = cam_t[finite].astype(float), motion_energy[finite].astype(float)
    if cam_t.size < 2 or np.any(np.diff(cam_t) <= 0):
        raise InputDataError(cam_t_path, "camera timestamps must be strictly increasing (at least 2 frames)")
    return cam_t, motion_energy


def load_alf_session(
    one_cache: str | os.PathLike,
    session: str,
    probes: str,
    *,
    required_trial_events: tuple[str, ...] = ("stimOn_times",),
    wheel_units: str = "rad",
    wheel_ticks_per_rev: int = 4096,
) -> AlfSession:
    """Read and validate a session of a local ONE cache.

    Parameters
    ----------
    one_cache : ONE cache folder (``sessions.pqt``, ``datasets.pqt``, session folders).
    session : eid or session path (absolute or relative to ``one_cache``).
    probes : probe collections relative to ``alf/`` (comma-separated) or ``all``
        (:meth:`pipeline.io.alf.OneSession.probe_collections`).
    required_trial_events : trial attributes that must exist (e.g. the alignment event).
    wheel_units : ``"rad"`` or ``"counts"`` (then divided by ``wheel_ticks_per_rev`` / 2 pi).

    Checks: required datasets present; spikes sorted; spike arrays of equal length;
    cluster ids within the per-cluster arrays; cluster channels within the channel arrays;
    trial arrays of equal length and table/per-attribute agreement; wheel and camera
    timestamps increasing and matching their values; plausible wheel speeds.
    """
    reader = _Reader(OneSession(one_cache, session))
    sortings = tuple(_load_probe(reader, c) for c in reader.session.probe_collections(probes))
    trials = _load_trials(reader, required_trial_events)
    wheel_t, wheel_p = _load_wheel(reader, wheel_units, wheel_ticks_per_rev)
    cam_t, motion_energy, camera = _load_camera(reader)
    return AlfSession(
        probes=sortings, trials=trials, wheel_times=wheel_t, wheel_position_rad=wheel_p,
        camera_times=cam_t, motion_energy=motion_energy, camera=camera, session_path=str(reader.session.session_path),
        source_files=tuple(str(p) for p in reader.read),
    )


def load_session(row: Mapping[str, Any], *, required_trial_events: tuple[str, ...] = ("stimOn_times",)) -> AlfSession:
    """The session of a sessions-table row: from ``nwb_file`` (DANDI 000409 layout,
    :func:`pipeline.ibl.nwb_session.load_nwb_session`) when the row has one, else from
    ``one_cache`` + ``session`` (:func:`load_alf_session`); ``probes`` selects the probes."""
    wheel = {"wheel_units": row.get("wheel_units", "rad"), "wheel_ticks_per_rev": int(row.get("wheel_ticks_per_rev", 4096))}
    if row.get("nwb_file"):
        from pipeline.ibl.nwb_session import load_nwb_session

        return load_nwb_session(row["nwb_file"], row["probes"], required_trial_events=required_trial_events, **wheel)
    return load_alf_session(row["one_cache"], row["session"], row["probes"],
                            required_trial_events=required_trial_events, **wheel)
