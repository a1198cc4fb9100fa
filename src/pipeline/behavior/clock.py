"""Imaging frame times and the imaging ↔ behaviour clock (the synchronisation step of
``align_behavior``).

Where frame times come from (:func:`imaging_frame_times`):

- the table's ``frame_times`` CSV (``volume, plane, t``), declared to be on the tail log's
  clock unless a ``frame_trigger`` is given;
- for ``input_type: scanimage`` without that CSV, the frame headers
  (``frameTimestamps_sec``, seconds since ScanImage's acquisition trigger, on the imaging
  computer's clock), read by :mod:`pipeline.io.scanimage`;
- for ``input_type: nlp4neuro_dataverse``, each plane's tail log: frame f's time is the mean
  ``t`` of the samples whose ``frame`` column is f (tail clock; NaN for a frame without
  samples). Those fish are aligned by that column, not by times;
- for ``input_type: nwb``, the timestamps of each plane's ``Fluorescence/plane{p}``
  series (:mod:`pipeline.io.nwb`; NWB keeps one clock per file, the tail log's).

How they are put on the behaviour clock (:func:`synchronise`):

- a ``frame_trigger`` file: the imaging frame clock (one TTL pulse at the start of every
  acquired frame, flyback frames included) logged on the behaviour computer, CSV with
  ``t`` (s, behaviour clock). Pulse k is frame k of the acquisition. The clocks are
  related by a least-squares line  t_behaviour = offset + (1 + drift_ppm · 1e-6) · t_imaging
  over all pulses; a pulse count that differs from the frame count, an interval longer
  than 1.5 × the median (a missing pulse) or a residual above
  ``tail_alignment.max_sync_residual_s`` is an error naming the files;
- no trigger: table frame times are taken as declared (on the tail clock; recorded as
  ``clock_sync = declared_shared_clock``, offset and drift not measured = NaN); ScanImage
  header times cannot be related to the tail clock and are refused.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd

from pipeline.config import FRAME_TIMES_IN_DATA
from pipeline.io.errors import InputDataError

log = logging.getLogger(__name__)

FRAME_TIME_COLUMNS = ["volume", "plane", "t"]
TRIGGER_COLUMNS = ["t"]
#: an interval between trigger pulses longer than this many median intervals is a missing pulse
MISSING_PULSE_FACTOR = 1.5


@dataclass(frozen=True)
class FrameTimes:
    """Frame times of one recording on one clock."""

    times_s: np.ndarray  # (planes, volumes) s, frame "middle" or "start" (``mark``)
    mark: str  # "middle" | "start"
    plane_period_s: float  # duration of one plane frame, s
    pulse_times_s: np.ndarray  # (frames,) s, start of every acquired frame in acquisition order (flyback included)
    clock: str  # "tail" (declared on the tail log's clock) | "imaging" (the imaging computer's)
    sources: tuple[str, ...]  # files they were read from


@dataclass(frozen=True)
class ClockFit:
    """t_behaviour = offset_s + (1 + drift_ppm · 1e-6) · t_imaging."""

    method: str  # "frame_trigger" | "declared_shared_clock" | "frame_column" (Dataverse: no clock involved)
    offset_s: float  # NaN when not measured
    drift_ppm: float  # NaN when not measured
    residual_max_s: float  # largest |residual| of the fit, NaN when not measured
    n_pulses: int

    def to_behaviour_clock(self, t_imaging: np.ndarray) -> np.ndarray:
        if self.method != "frame_trigger":  # nothing measured: the times are already on the tail clock
            return np.asarray(t_imaging, float)
        return self.offset_s + (1.0 + self.drift_ppm * 1e-6) * np.asarray(t_imaging, float)


def read_frame_times(path: str | Path, n_planes: int) -> np.ndarray:
    """``frame_times.csv`` as an array (n_planes, n_volumes) of seconds."""
    path = Path(path)
    table = pd.read_csv(path)
    missing = [c for c in FRAME_TIME_COLUMNS if c not in table.columns]
    if missing:
        raise InputDataError(path, f"missing column(s) {missing}")
    table = table.sort_values(["plane", "volume"])
    counts = table.groupby("plane").size()
    if sorted(counts.index) != list(range(n_planes)) or counts.nunique() != 1:
        raise InputDataError(path, f"expected the same number of frames for planes 0..{n_planes - 1}, found {counts.to_dict()}")
    times = table["t"].to_numpy(float).reshape(n_planes, -1)
    if not np.all(np.isfinite(times)) or np.any(np.diff(times, axis=1) <= 0):
        raise InputDataError(path, "frame times must be finite and increase within each plane")
    return times


def imaging_frame_times(fish_row: Mapping[str, Any], frame_times_mark: str = "middle") -> FrameTimes:
    """The recording's frame times from the table's ``frame_times`` file (``mark`` =
    ``frame_times_mark``) or, for ScanImage input without one, from the frame headers."""
    n_planes = int(fish_row["n_planes"])
    if fish_row.get("frame_times"):
        times = read_frame_times(fish_row["frame_times"], n_planes)
        plane_period = 1.0 / (float(fish_row["volume_rate_hz"]) * n_planes)
        starts = times - (plane_period / 2 if frame_times_mark == "middle" else 0.0)
        return FrameTimes(times, frame_times_mark, plane_period, np.sort(starts.ravel()), "tail",
                          (str(fish_row["frame_times"]),))
    if fish_row["input_type"] not in FRAME_TIMES_IN_DATA:
        raise InputDataError(fish_row.get("tail_log", "?"), f"no frame times: input_type {fish_row['input_type']} "
                                                            "needs a frame_times file")
    plane_period = 1.0 / (float(fish_row["volume_rate_hz"]) * n_planes)
    if fish_row["input_type"] == "nwb":  # one clock per NWB file: the tail log's
        from pipeline.io.nwb import read_nwb_frame_times

        times = read_nwb_frame_times(fish_row["nwb"], n_planes, raw=fish_row.get("nwb_data") == "raw")
        starts = times - (plane_period / 2 if frame_times_mark == "middle" else 0.0)
        return FrameTimes(times, frame_times_mark, plane_period, np.sort(starts.ravel()), "tail", (str(fish_row["nwb"]),))
    if fish_row["input_type"] == "nlp4neuro_dataverse":
        from pipeline.io.dataverse import checked_frame_count, frame_means, plane_folder, read_tail_df

        root = fish_row["dataverse_dir"]
        n_frames = checked_frame_count(root, 0)
        paths = [plane_folder(root, p) / "tail_df.h5" for p in range(n_planes)]
        times = np.stack([frame_means(read_tail_df(path), n_frames)[2] for path in paths])
        return FrameTimes(times, "middle", plane_period, np.array([]), "tail", tuple(str(p) for p in paths))
    from pipeline.config import acquisition_files
    from pipeline.io.scanimage import read_acquisition

    files = acquisition_files(fish_row["scanimage"])
    layout, starts, all_starts = read_acquisition(files, fish_row.get("channel"), n_planes)
    return FrameTimes(starts, "start", layout.frame_period_s, all_starts, "imaging", tuple(files))


def read_trigger(path: str | Path) -> np.ndarray:
    """Frame-trigger pulse times (s, behaviour clock) from a CSV with column ``t``."""
    path = Path(path)
    if not path.is_file():
        raise InputDataError(path, "frame-trigger file not found")
    table = pd.read_csv(path)
    if "t" not in table.columns:
        raise InputDataError(path, f"missing column 't' (pulse times, s); found {list(table.columns)}")
    t = table["t"].to_numpy(float)
    if t.size < 2 or not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
        raise InputDataError(path, "pulse times must be finite, at least two, and strictly increasing")
    return t


def fit_clock(t_imaging: np.ndarray, t_behaviour: np.ndarray, max_residual_s: float,
              frames_source: str, trigger_path: str) -> ClockFit:
    """Least-squares line from imaging frame starts to their trigger pulses (same order).

    Errors name both files: pulse and frame counts differ; a missing pulse (an interval
    > MISSING_PULSE_FACTOR × median); a residual above ``max_residual_s``."""
    intervals = np.diff(t_behaviour)
    long = np.flatnonzero(intervals > MISSING_PULSE_FACTOR * np.median(intervals))
    if long.size:
        raise InputDataError(trigger_path, f"{long.size} missing frame-trigger pulse(s): the first gap is "
                                           f"{intervals[long[0]]:.4f} s after t = {t_behaviour[long[0]]:.4f} s "
                                           f"(median interval {np.median(intervals):.4f} s); cannot relate it "
                                           f"to the frames of {frames_source}")
    if t_behaviour.size != t_imaging.size:
        raise InputDataError(trigger_path, f"{t_behaviour.size} frame-trigger pulses but {frames_source} has "
                                           f"{t_imaging.size} frames (flyback included): the clocks cannot be related")
    centre = t_imaging.mean()
    slope, intercept = np.polyfit(t_imaging - centre, t_behaviour, 1)
    offset = intercept - slope * centre
    residual = t_behaviour - (offset + slope * t_imaging)
    worst = float(np.max(np.abs(residual)))
    if worst > max_residual_s:
        raise InputDataError(trigger_path, f"frame-trigger pulses deviate up to {worst * 1e3:.2f} ms from a linear "
                                           f"clock relation with the frames of {frames_source} (tolerance "
                                           f"{max_residual_s * 1e3:.2f} ms, tail_alignment.max_sync_residual_s)")
    fit = ClockFit("frame_trigger", float(offset), float((slope - 1.0) * 1e6), worst, int(t_behaviour.size))
    log.info("clock fit from %d trigger pulses (%s): offset %.4f s, drift %.2f ppm, max residual %.3f ms",
             fit.n_pulses, trigger_path, fit.offset_s, fit.drift_ppm, worst * 1e3)
    return fit


def synchronise(frames: FrameTimes, fish_row: Mapping[str, Any], max_residual_s: float) -> ClockFit:
    """Relate the frame times' clock to the tail log's (see the module docstring)."""
    trigger = fish_row.get("frame_trigger")
    frames_source = ", ".join(frames.sources) if len(frames.sources) <= 2 else f"{frames.sources[0]} (+{len(frames.sources) - 1} files)"
    if trigger:
        return fit_clock(frames.pulse_times_s, read_trigger(trigger), max_residual_s, frames_source, str(trigger))
    if frames.clock == "tail":
        return ClockFit("declared_shared_clock", float("nan"), float("nan"), float("nan"), 0)
    raise InputDataError(
        frames.sources[0], f"frame times of {frames_source} are on the imaging computer's clock (seconds since "
        f"the acquisition trigger) and {fish_row['tail_log']} is on the behaviour computer's: give the fish "
        "table's frame_trigger column (the frame clock logged on the behaviour computer) or a frame_times file "
        "on the tail log's clock",
    )
