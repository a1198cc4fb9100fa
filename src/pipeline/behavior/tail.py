"""Tail kinematics and stimulus state per imaging frame (NLP4Neuro, seed 000, Sec. 3.1).

The paper compresses the 200 Hz tail log to the ~1.1 Hz imaging rate "by simply averaging
across all output time steps in a given frame". Here a frame's samples are chosen by
TIMESTAMP, not by counting samples, so any tail rate (200, 250, 700 Hz...), jitter and
dropped camera frames are handled the same way:

- plane frame (v, p) covers [t(v, p) - d/2, t(v, p) + d/2), with t the frame time on the
  tail clock (:mod:`pipeline.behavior.clock`: ``frame_times.csv``, mid-frame unless
  ``frame_times_mark="start"``, or ScanImage header start times mapped by the
  frame-trigger fit) and d the plane period, 1 / (volume_rate * n_planes) or, for ScanImage
  headers, 1 / ``SI.hRoiManager.scanFrameRate``;
- volume v covers the union of its plane frames, [t(v, 0) - d/2, t(v, P-1) + d/2): the
  time step the decoders see, whose neural vector holds every plane's neurons.

Each average is taken per tail segment over that segment's tracked (finite) samples in
the interval, so a NaN at the tail tip does not discard the other five segments of the
sample; dropped camera frames are skipped. Quality policy: a stretch longer than
``max_gap_s`` in which a segment has no tracked sample marks every volume it overlaps
invalid (``tail/valid`` False; so does a volume in which a segment has no sample at all);
invalid volumes are excluded from training and metrics (:mod:`pipeline.data.windows`).
The fish fails only when more than ``max_invalid_fraction`` of its volumes are invalid.
A log that does not cover the imaging or whose timestamps do not increase is an error.

NLP4Neuro Dataverse fish are aligned by their tail logs' ``frame`` column instead
(:func:`align_by_frame_column`, the paper's ``groupby("frame").mean()``).
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import h5py
import numpy as np
import pandas as pd

from pipeline.behavior.clock import ClockFit, imaging_frame_times, synchronise
from pipeline.behavior.config import TailAlignmentConfig
from pipeline.io.atomic import atomic_paths
from pipeline.io.dataverse import checked_frame_count, frame_means, plane_folder, read_tail_df
from pipeline.io.errors import InputDataError
from pipeline.io.h5 import write_dataset
from pipeline.io.inventory import STIMULUS_COLUMNS, TAIL_COLUMNS
from pipeline.io.nwb import read_nwb_tail
from pipeline.provenance import code_version, config_hash

log = logging.getLogger(__name__)

THETA_COLUMNS = TAIL_COLUMNS[2:]
#: input type whose tail samples carry their imaging frame (aligned by that column, no clock)
FRAME_COLUMN_INPUT = "nlp4neuro_dataverse"
#: stimulus epoch codes stored per volume
EPOCH_CODES = {"none": 0, "static": 1, "moving": 2}


def read_tail_log(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``tail_log.csv`` -> (t (n,) s, theta (n, 6) rad). Timestamps must increase."""
    path = Path(path)
    table = pd.read_csv(path)
    missing = [c for c in TAIL_COLUMNS if c not in table.columns]
    if missing:
        raise InputDataError(path, f"missing column(s) {missing}")
    t = table["t"].to_numpy(float)
    if not np.all(np.isfinite(t)):
        raise InputDataError(path, f"{int(np.sum(~np.isfinite(t)))} timestamps are missing (NaN)")
    backwards = np.flatnonzero(np.diff(t) <= 0)
    if backwards.size:
        raise InputDataError(path, f"timestamps do not increase at row {backwards[0] + 1} (t = {t[backwards[0] + 1]:.6f} s)")
    return t, table[THETA_COLUMNS].to_numpy(float)


def interval_means(t: np.ndarray, values: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per column, the mean of the finite values of ``values`` (n, k) whose time ``t`` lies
    in [start, end), per interval. Returns (means (m, k), NaN where a column has no finite
    sample in the interval; number of finite samples (m, k))."""
    finite = np.isfinite(values)
    cumulative = np.vstack([np.zeros(values.shape[1]), np.cumsum(np.where(finite, values, 0.0), axis=0)])
    cumulative_n = np.vstack([np.zeros(values.shape[1], np.int64), np.cumsum(finite, axis=0)])
    lo = np.searchsorted(t, starts, side="left")
    hi = np.searchsorted(t, ends, side="left")
    n = cumulative_n[hi] - cumulative_n[lo]
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (cumulative[hi] - cumulative[lo]) / n
    return means, n


def _check_coverage(path: Path, t: np.ndarray, span: tuple[float, float]) -> None:
    if t[0] > span[0] or t[-1] < span[1]:
        raise InputDataError(
            path, f"tail log spans {t[0]:.3f}-{t[-1]:.3f} s but imaging spans {span[0]:.3f}-{span[1]:.3f} s "
            "(it must cover the whole imaging)"
        )


def gap_affected(t: np.ndarray, theta: np.ndarray, starts: np.ndarray, ends: np.ndarray,
                 max_gap_s: float) -> np.ndarray:
    """(m,) bool: intervals [start, end) that overlap a stretch longer than ``max_gap_s``
    in which some segment (column of ``theta`` (n, k)) has no tracked sample. The stretch
    runs between consecutive tracked samples of that segment (open at both ends); the
    first interval's start and the last one's end bound it."""
    span = (float(starts.min()), float(ends.max()))
    affected = np.zeros(starts.size, bool)
    for column in theta.T:
        tracked = t[np.isfinite(column)]
        tracked = np.concatenate([[span[0]], tracked[(tracked > span[0]) & (tracked < span[1])], [span[1]]])
        for k in np.flatnonzero(np.diff(tracked) > max_gap_s):
            affected |= (starts < tracked[k + 1]) & (ends > tracked[k])
    return affected


def stimulus_per_interval(stimulus: pd.DataFrame, starts: np.ndarray, ends: np.ndarray) -> dict[str, np.ndarray]:
    """Stimulus state of each interval: epoch code and direction at its centre, and the
    fraction of it spent in moving epochs."""
    centre = 0.5 * (starts + ends)
    epoch = np.zeros(centre.size, np.int8)
    direction = np.full(centre.size, np.nan)
    moving_time = np.zeros(centre.size)
    for row in stimulus.itertuples(index=False):
        inside = (centre >= row.t_start) & (centre < row.t_end)
        epoch[inside] = EPOCH_CODES[row.epoch]
        direction[inside] = row.direction_deg
        if row.epoch == "moving":
            moving_time += np.clip(np.minimum(ends, row.t_end) - np.maximum(starts, row.t_start), 0, None)
    return {"epoch": epoch, "direction_deg": direction, "moving_fraction": moving_time / (ends - starts)}


@dataclass(frozen=True)
class AlignedTail:
    """The tail log reduced to imaging volumes and plane frames (one of two alignment paths)."""

    theta_volume: np.ndarray  # (volumes, 6) rad
    n_volume: np.ndarray  # (volumes, 6) tracked samples
    theta_frames: np.ndarray  # (planes, volumes, 6) rad
    n_frames: np.ndarray  # (planes, volumes, 6)
    valid: np.ndarray  # (volumes,) bool
    volume_starts: np.ndarray  # (volumes,) s, tail clock
    volume_ends: np.ndarray  # (volumes,) s
    frame_times: np.ndarray  # (planes, volumes) s, tail clock
    frame_mark: str  # "middle" | "start"
    clock: ClockFit
    tail_times: np.ndarray  # (samples,) s of the log the volumes come from
    sources: tuple[str, ...]  # files read (stimulus log excluded)


def align_by_timestamps(fish_row: Mapping[str, Any], config: TailAlignmentConfig) -> AlignedTail:
    """Tail samples chosen by timestamp within each frame / volume interval, after putting
    the frame times on the tail clock (:mod:`pipeline.behavior.clock`)."""
    n_planes = int(fish_row["n_planes"])
    frames = imaging_frame_times(fish_row, config.frame_times_mark)
    clock = synchronise(frames, fish_row, config.max_sync_residual_s)
    plane_period = frames.plane_period_s
    frame_times = clock.to_behaviour_clock(frames.times_s)
    centres = frame_times + (plane_period / 2 if frames.mark == "start" else 0.0)
    frame_starts, frame_ends = centres - plane_period / 2, centres + plane_period / 2
    volume_starts, volume_ends = frame_starts[0], frame_ends[-1]

    if fish_row.get("input_type") == "nwb":
        tail_path = Path(fish_row["nwb"])
        t, theta = read_nwb_tail(tail_path)
    else:
        tail_path = Path(fish_row["tail_log"])
        t, theta = read_tail_log(tail_path)
    _check_coverage(tail_path, t, (float(volume_starts[0]), float(volume_ends[-1])))
    theta_volume, n_volume = interval_means(t, theta, volume_starts, volume_ends)
    theta_frames, n_frames = interval_means(t, theta, frame_starts.ravel(), frame_ends.ravel())
    valid = ~gap_affected(t, theta, volume_starts, volume_ends, config.max_gap_s) & np.all(n_volume > 0, axis=1)
    sources = tuple(dict.fromkeys((str(tail_path), *frames.sources))) + ((str(fish_row["frame_trigger"]),) if fish_row.get("frame_trigger") else ())
    return AlignedTail(theta_volume, n_volume, theta_frames.reshape(n_planes, -1, theta.shape[1]),
                       n_frames.reshape(n_planes, -1, theta.shape[1]), valid, volume_starts, volume_ends,
                       frame_times, frames.mark, clock, t, sources)


def align_by_frame_column(fish_row: Mapping[str, Any], config: TailAlignmentConfig) -> AlignedTail:
    """NLP4Neuro Dataverse fish (:mod:`pipeline.io.dataverse`): each tail sample carries the
    imaging frame it belongs to, so no clock is involved. Volume v = the samples of plane 0's
    log with frame v (the paper's ``groupby("frame").mean()``); plane frame (p, v) = those of
    plane p's log. A volume spans from its first sample to the next volume's first sample;
    gaps longer than ``max_gap_s`` inside it (per segment) make it invalid."""
    n_planes = int(fish_row["n_planes"])
    root = fish_row["dataverse_dir"]
    n_volumes = checked_frame_count(root, 0)
    per_plane, sources = [], []
    for plane in range(n_planes):
        path = plane_folder(root, plane) / "tail_df.h5"
        if checked_frame_count(root, plane) != n_volumes:
            raise InputDataError(path, f"plane {plane} has a different frame count than plane 0 ({n_volumes})")
        per_plane.append((read_tail_df(path), *frame_means(read_tail_df(path), n_volumes)))
        sources.append(str(path))
    tail0, theta_volume, n_volume, _ = per_plane[0]
    t = tail0["t"].to_numpy(float)
    first_sample = tail0.groupby("frame")["t"].min().reindex(pd.RangeIndex(n_volumes)).to_numpy(float)
    if np.any(np.isnan(first_sample)):
        raise InputDataError(sources[0], f"{int(np.isnan(first_sample).sum())} imaging frames have no tail sample "
                                         "at all: their interval is undefined")
    volume_starts = first_sample
    volume_ends = np.append(first_sample[1:], t[-1] + float(np.median(np.diff(t))))
    theta = tail0[THETA_COLUMNS].to_numpy(float)
    valid = ~gap_affected(t, theta, volume_starts, volume_ends, config.max_gap_s) & np.all(n_volume > 0, axis=1)
    not_measured = ClockFit("frame_column", float("nan"), float("nan"), float("nan"), 0)
    return AlignedTail(theta_volume, n_volume, np.stack([p[1] for p in per_plane]), np.stack([p[2] for p in per_plane]),
                       valid, volume_starts, volume_ends, np.stack([p[3] for p in per_plane]), "middle",
                       not_measured, t, tuple(sources))


def align_behavior(
    fish_row: Mapping[str, Any],
    out_path: str | Path,
    config: TailAlignmentConfig,
    *,
    source_checksums: Mapping[str, str] | None = None,
) -> None:
    """Write the behaviour file of one fish (layout in docs/architecture.md):
    ``/tail/theta`` (volumes, 6) rad, ``/tail/tail_sum`` (volumes,) rad,
    ``/tail/theta_per_plane_frame`` (planes, volumes, 6) rad, ``/tail/n_samples``,
    ``/tail/valid``, ``/time/{volume_start_s, volume_end_s, frame_times_s}``,
    ``/stimulus/{epoch, direction_deg, moving_fraction}`` (volumes,) when a stimulus log is given."""
    n_planes = int(fish_row["n_planes"])
    by_frame_column = fish_row.get("input_type") == FRAME_COLUMN_INPUT
    aligned = (align_by_frame_column if by_frame_column else align_by_timestamps)(fish_row, config)
    valid = aligned.valid
    invalid_fraction = float(np.mean(~valid))
    tail_source = aligned.sources[0]
    if invalid_fraction > config.max_invalid_fraction:
        first = int(np.argmin(valid))
        raise InputDataError(
            tail_source, f"{invalid_fraction:.0%} of {valid.size} volumes are invalid (a segment untracked for more "
            f"than tail_alignment.max_gap_s = {config.max_gap_s} s; first at t = {aligned.volume_starts[first]:.3f} s): "
            f"more than tail_alignment.max_invalid_fraction = {config.max_invalid_fraction:.0%}",
        )
    if not valid.all():
        log.warning("fish %s: %d of %d volumes invalid (tail gaps > %s s): excluded from training and metrics",
                    fish_row["fish_id"], int((~valid).sum()), valid.size, config.max_gap_s)
    state = None
    sources = list(aligned.sources)
    if fish_row.get("stimulus_log"):
        stimulus_path = Path(fish_row["stimulus_log"])
        stimulus = pd.read_csv(stimulus_path)
        if [c for c in STIMULUS_COLUMNS if c not in stimulus.columns]:
            raise InputDataError(stimulus_path, f"missing column(s) of {STIMULUS_COLUMNS}")
        unknown = set(stimulus["epoch"]) - set(EPOCH_CODES)
        if unknown:
            raise InputDataError(stimulus_path, f"unknown epoch name(s) {sorted(unknown)}; expected static/moving")
        state = stimulus_per_interval(stimulus, aligned.volume_starts, aligned.volume_ends)
        sources.insert(1, str(stimulus_path))
    measured_rate = 1.0 / float(np.median(np.diff(aligned.tail_times)))
    log.info("fish %s: %d volumes, tail at %.1f Hz, %.1f samples per volume and segment", fish_row["fish_id"],
             valid.size, measured_rate, float(aligned.n_volume.mean()))

    clock = aligned.clock
    with atomic_paths(out_path) as (tmp,):
        with h5py.File(tmp, "w") as f:
            f.attrs.update({
                "fish_id": str(fish_row["fish_id"]),
                "description": "tail angles and stimulus state per imaging volume (NLP4Neuro decoding target)",
                "tail_rate_hz_measured": measured_rate,
                "volume_rate_hz": float(fish_row["volume_rate_hz"]),
                "n_planes": n_planes,
                "frame_times_mark": aligned.frame_mark,
                "clock_sync": clock.method,
                "clock_offset_s": clock.offset_s,
                "clock_drift_ppm": clock.drift_ppm,
                "clock_residual_max_s": clock.residual_max_s,
                "clock_n_pulses": clock.n_pulses,
                "invalid_fraction": invalid_fraction,
                "stimulus": "from the stimulus log" if state else "no stimulus log given: no stimulus datasets",
                "source_files_json": json.dumps({p: (source_checksums or {}).get(p, "") for p in sources}),
                "config_hash": config_hash({"tail_alignment": vars(config), "fish": dict(fish_row)}),
                "code_version": code_version(),
            })
            theta_volume = aligned.theta_volume
            write_dataset(f, "tail/theta", theta_volume, "rad", "mean segment angle per volume (theta_00..05, rostral->caudal)")
            write_dataset(f, "tail/tail_sum", theta_volume.sum(axis=1), "rad", "sum of the six segment angles per volume")
            write_dataset(f, "tail/theta_per_plane_frame", aligned.theta_frames, "rad",
                          "mean segment angle over each plane frame (planes, volumes, 6)")
            write_dataset(f, "tail/n_samples", aligned.n_volume, "count",
                          "tracked samples averaged per volume and segment (volumes, 6)")
            write_dataset(f, "tail/n_samples_per_plane_frame", aligned.n_frames, "count",
                          "tracked samples averaged per plane frame and segment (planes, volumes, 6)")
            write_dataset(f, "tail/valid", valid, "bool",
                          f"False: a segment untracked for > {config.max_gap_s} s overlaps the volume (excluded "
                          "from training and metrics)")
            write_dataset(f, "time/volume_start_s", aligned.volume_starts, "s", "start of each volume's interval")
            write_dataset(f, "time/volume_end_s", aligned.volume_ends, "s", "end of each volume's interval")
            write_dataset(f, "time/frame_times_s", aligned.frame_times, "s",
                          f"frame times ({aligned.frame_mark}) on the tail log's clock (attrs clock_*)")
            if state:
                write_dataset(f, "stimulus/epoch", state["epoch"], "code", f"epoch at the volume centre: {EPOCH_CODES}")
                write_dataset(f, "stimulus/direction_deg", state["direction_deg"], "deg",
                              "grating direction at the volume centre")
                write_dataset(f, "stimulus/moving_fraction", state["moving_fraction"], "1",
                              "fraction of the volume in moving epochs")
