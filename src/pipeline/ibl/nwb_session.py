"""Load one IBL session from an NWB file as DANDI stores them (dandiset 000409, written by
IBL-to-NWB), producing the same :class:`~pipeline.ibl.alf_session.AlfSession` as the ONE
cache path, so both bin identically.

Layout read (pynwb):

- ``units``: ragged ``spike_times`` (s) per unit; ``probe_name`` (e.g. ``probe00``; absent:
  one probe ``probe00``); ``allen_location`` (Allen CCF 2017 acronym of the unit's channel,
  mapped to Allen ids by exact lookup); optional ``cluster_id`` (the ALF cluster id; absent:
  the unit's position within its probe), ``label`` (IBL QC label) and
  ``mean_relative_depth`` (um from the tip);
- ``trials`` (TimeIntervals): ``stim_on_time``, ``go_cue_time``, ``first_movement_time``,
  ``response_time``, ``feedback_time``, ``choice``, ``feedback_type``, ``contrast_left``,
  ``contrast_right``, ``probability_left`` (the ALF trial attributes, renamed);
- ``processing/wheel``: a ``CompassDirection`` holding the wheel-position ``SpatialSeries``
  (rad, with timestamps);
- ``processing/camera/LeftCameraMotionEnergy``: ``TimeSeries`` (a.u., with timestamps);
  ``RightCameraMotionEnergy`` when the left one is missing or inconsistent (as the ALF path).

Spike times of a probe are gathered from its units and sorted (12 bytes per spike in
memory, unlike the memory-mapped ALF path). Cluster ids missing from ``units`` (no spikes)
get Allen id 0 (void). Errors name the file and the NWB object.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from pipeline.ibl.alf_session import (
    AlfSession,
    ProbeSorting,
    check_spikes,
    check_trials,
    clean_camera,
    clean_wheel,
)
from pipeline.ibl.regions import allen_ids_from_acronyms
from pipeline.io.errors import InputDataError

#: NWB trials column -> ALF trial attribute (IBL-to-NWB trial metadata).
NWB_TRIAL_COLUMNS = {
    "stim_on_time": "stimOn_times", "go_cue_time": "goCue_times", "first_movement_time": "firstMovement_times",
    "response_time": "response_times", "feedback_time": "feedback_times", "choice": "choice",
    "feedback_type": "feedbackType", "contrast_left": "contrastLeft", "contrast_right": "contrastRight",
    "probability_left": "probabilityLeft",
}
#: camera -> time series of its whisker-ROI motion energy, tried in this order.
MOTION_ENERGY_SERIES = {"left": "LeftCameraMotionEnergy", "right": "RightCameraMotionEnergy"}


def _where(path: Path, obj: str) -> str:
    return f"{path}:{obj}"


def _probe_sorting(path: Path, units, rows: np.ndarray, probe: str) -> ProbeSorting:
    columns = set(units.colnames)
    spike_times = units["spike_times"]
    times = [np.asarray(spike_times[int(r)], float) for r in rows]
    cluster_ids = (np.asarray(units["cluster_id"].data[:], np.int64)[rows] if "cluster_id" in columns
                   else np.arange(rows.size, dtype=np.int64))
    counts = np.array([t.size for t in times])
    all_times = np.concatenate(times) if times else np.zeros(0)
    all_clusters = np.repeat(cluster_ids, counts)
    order = np.argsort(all_times, kind="stable")
    all_times, all_clusters = all_times[order], all_clusters[order]
    where = _where(path, "units/spike_times")
    check_spikes(all_times, all_clusters, where, where)
    n_clusters = int(cluster_ids.max()) + 1
    allen_ids = np.zeros(n_clusters, np.int64)
    if "allen_location" not in columns:
        raise InputDataError(_where(path, "units"), "no allen_location column: the units have no brain regions")
    acronyms = np.asarray(units["allen_location"].data[:]).astype(str)[rows]
    allen_ids[cluster_ids] = allen_ids_from_acronyms(acronyms, _where(path, "units/allen_location"))
    per_cluster = {}
    for column, key in [("label", "qc"), ("mean_relative_depth", "depth")]:
        if column in columns:
            values = np.full(n_clusters, np.nan)
            values[cluster_ids] = np.asarray(units[column].data[:], float)[rows]
            per_cluster[key] = values
    return ProbeSorting(collection=probe, spike_times=all_times, spike_clusters=all_clusters,
                        cluster_allen_ids=allen_ids, region_source=_where(path, "units/allen_location"),
                        cluster_depths_um=per_cluster.get("depth"), cluster_qc_label=per_cluster.get("qc"))


def _series(path: Path, nwb, module: str, name: str | None):
    """(timestamps, data) of a time series in ``processing/module`` (``name`` None: the
    SpatialSeries of the module's CompassDirection)."""
    if module not in nwb.processing:
        raise InputDataError(_where(path, f"processing/{module}"), "processing module not found")
    interfaces = nwb.processing[module].data_interfaces
    if name is None:
        directions = [i for i in interfaces.values() if type(i).__name__ == "CompassDirection"]
        if len(directions) != 1 or len(directions[0].spatial_series) != 1:
            raise InputDataError(_where(path, f"processing/{module}"),
                                 "expected one CompassDirection with one SpatialSeries (wheel position)")
        series = next(iter(directions[0].spatial_series.values()))
    elif name in interfaces:
        series = interfaces[name]
    else:
        raise InputDataError(_where(path, f"processing/{module}/{name}"), "time series not found")
    if series.timestamps is None:
        raise InputDataError(_where(path, f"processing/{module}/{series.name}"), "needs explicit timestamps")
    return (np.asarray(series.timestamps[:], float), np.asarray(series.data[:], float),
            _where(path, f"processing/{module}/{series.name}"))


def load_nwb_session(
    nwb_file: str | os.PathLike,
    probes: str,
    *,
    required_trial_events: tuple[str, ...] = ("stimOn_times",),
    wheel_units: str = "rad",
    wheel_ticks_per_rev: int = 4096,
) -> AlfSession:
    """Read and validate a session from a DANDI 000409-style NWB file (module docstring).
    ``probes``: comma-separated ``probe_name`` values or ``all``. Same checks as
    :func:`pipeline.ibl.alf_session.load_alf_session`."""
    from pynwb import NWBHDF5IO

    path = Path(nwb_file)
    if not path.is_file():
        raise InputDataError(path, "NWB file not found")
    try:
        io = NWBHDF5IO(str(path), "r")
        nwb = io.read()
    except Exception as err:  # noqa: BLE001 - pynwb/hdmf raise many types for unreadable files
        raise InputDataError(path, f"not a readable NWB file ({err})") from None
    try:
        units = nwb.units
        if units is None or "spike_times" not in units.colnames:
            raise InputDataError(_where(path, "units"), "no Units table with spike_times")
        names = (np.asarray(units["probe_name"].data[:]).astype(str) if "probe_name" in units.colnames
                 else np.full(len(units), "probe00"))
        available = sorted(set(names))
        chosen = available if probes.strip() == "all" else [p.strip() for p in probes.split(",") if p.strip()]
        for probe in chosen:
            if probe not in available:
                raise InputDataError(_where(path, "units/probe_name"), f"no units of probe {probe!r} (probes: {available})")
        sortings = tuple(_probe_sorting(path, units, np.flatnonzero(names == p), p) for p in chosen)

        if nwb.trials is None:
            raise InputDataError(_where(path, "intervals/trials"), "no trials table")
        trials = {alf: np.asarray(nwb.trials[column].data[:], float)
                  for column, alf in NWB_TRIAL_COLUMNS.items() if column in nwb.trials.colnames}
        check_trials(trials, required_trial_events, _where(path, "intervals/trials"))
        wheel_t, wheel_p, wheel_where = _series(path, nwb, "wheel", None)
        wheel_t, wheel_p = clean_wheel(wheel_t, wheel_p, wheel_where, wheel_where, wheel_units, wheel_ticks_per_rev)
        problems = []
        for camera, name in MOTION_ENERGY_SERIES.items():
            try:
                cam_t, me, cam_where = _series(path, nwb, "camera", name)
                cam_t, me = clean_camera(cam_t, me, cam_where, cam_where)
                break
            except InputDataError as err:
                problems.append(str(err))
        else:
            raise InputDataError(_where(path, "processing/camera"), "no usable motion energy: " + "; ".join(problems))
    finally:
        io.close()
    return AlfSession(probes=sortings, trials=trials, wheel_times=wheel_t, wheel_position_rad=wheel_p,
                      camera_times=cam_t, motion_energy=me, camera=camera, session_path=str(path),
                      source_files=(str(path),))
