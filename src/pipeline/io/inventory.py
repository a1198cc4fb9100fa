"""Input inventory: check that a recording's files exist, are readable and agree with the
metadata declared in its recordings-table row, and record their checksums.

This is the first stage for real and synthetic recordings alike. Its JSON output (the
*inventory*) is the provenance later stages copy into their outputs. Only headers and
small logs are read: TIFF page counts come from the TIFF index, arrays are memory-mapped.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import pandas as pd
import tifffile

from pipeline.config import acquisition_files, plain_row, plane_paths
from pipeline.io.dataverse import checked_frame_count, frame_means, plane_folder, read_tail_df
from pipeline.io.errors import InputDataError
from pipeline.io.nwb import read_nwb_frame_times, read_nwb_plane, read_nwb_tail
from pipeline.io.region_mask import read_region_mask
from pipeline.io.scanimage import read_acquisition
from pipeline.provenance import config_hash, describe_file

log = logging.getLogger(__name__)

#: Columns of a tail-tracking log: time (s), camera frame counter, six segment angles (rad).
TAIL_COLUMNS = ["t", "frame"] + [f"theta_{i:02d}" for i in range(6)]
FRAME_TIME_COLUMNS = ["volume", "plane", "t"]
STIMULUS_COLUMNS = ["t_start", "t_end", "epoch", "direction_deg"]
SUITE2P_FILES = ["F.npy", "Fneu.npy", "spks.npy", "stat.npy", "iscell.npy", "ops.npy"]
DATAVERSE_FILES = ["F.npy", "stat.npy", "tail_df.h5"]

#: Largest accepted relative difference between a declared and a measured sampling rate.
RATE_TOLERANCE = 0.05


def _read_csv(path: Path, columns: list[str]) -> pd.DataFrame:
    if not path.is_file():
        raise InputDataError(path, "file not found")
    try:
        table = pd.read_csv(path)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
        raise InputDataError(path, f"not a readable CSV file ({err})") from None
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise InputDataError(path, f"missing column(s) {missing}; found {list(table.columns)}")
    if table.empty:
        raise InputDataError(path, "no rows")
    return table


def _header(kind: str, id_column: str, row: Mapping[str, Any]) -> dict[str, Any]:
    """Inventory fields shared by every kind: the table row and its hash."""
    metadata = plain_row(row)
    return {"kind": kind, "id": metadata[id_column], "metadata": metadata, "metadata_hash": config_hash(metadata)}


def _check_rate(path: Path, times_s: np.ndarray, declared_hz: float, what: str) -> float:
    """Measured rate = 1 / median interval; must be within RATE_TOLERANCE of declared."""
    intervals = np.diff(times_s)
    if len(intervals) == 0 or not np.all(intervals > 0):
        raise InputDataError(path, f"{what} timestamps are not strictly increasing")
    measured = 1.0 / float(np.median(intervals))
    if abs(measured - declared_hz) > RATE_TOLERANCE * declared_hz:
        raise InputDataError(
            path, f"{what} rate measured {measured:.4g} Hz but the table declares {declared_hz:.4g} Hz"
        )
    return measured


def _frame_times(path: Path, n_planes: int, volume_rate_hz: float) -> tuple[dict[int, int], dict[str, Any]]:
    table = _read_csv(path, FRAME_TIME_COLUMNS)
    if not np.all(np.isfinite(table["t"].to_numpy(float))):
        raise InputDataError(path, "column 't' has missing or non-finite values")
    planes = sorted(int(p) for p in table["plane"].unique())
    if planes != list(range(n_planes)):
        raise InputDataError(path, f"planes {planes} but the table declares n_planes={n_planes}")
    frames_per_plane: dict[int, int] = {}
    for plane, rows in table.groupby("plane", sort=True):
        _check_rate(path, rows["t"].to_numpy(float), volume_rate_hz, f"plane {plane} frame")
        frames_per_plane[int(plane)] = len(rows)
    summary = {"t_first_s": float(table["t"].min()), "t_last_s": float(table["t"].max())}
    return frames_per_plane, summary


def _tiff_stack(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise InputDataError(path, "raw stack not found")
    try:
        with tifffile.TiffFile(path) as tif:
            n_pages = len(tif.pages)
            page = tif.pages.first
            shape, dtype = tuple(int(s) for s in page.shape), str(page.dtype)
            n_images = int((tif.imagej_metadata or {}).get("images", n_pages)) if tif.is_imagej else n_pages
    except (tifffile.TiffFileError, ValueError, OSError) as err:
        raise InputDataError(path, f"not a readable TIFF stack ({err})") from None
    if n_images != n_pages:
        raise InputDataError(path, f"an ImageJ/Fiji hyperstack holding {n_images} images in {n_pages} IFD(s) "
                                   "(Fiji writes one IFD for stacks > 4 GB): save one page per frame "
                                   "(e.g. tifffile.imwrite of the stack) or give the ScanImage files")
    if len(shape) != 2:
        raise InputDataError(path, f"pages must be 2-D (Ly, Lx), found shape {shape}")
    return {"n_frames": n_pages, "frame_shape_px": list(shape), "dtype": dtype}


def _suite2p_plane(folder: Path) -> dict[str, Any]:
    missing = [name for name in SUITE2P_FILES if not (folder / name).is_file()]
    if missing:
        raise InputDataError(folder, f"Suite2P plane folder lacks {missing}")
    fluorescence = np.load(folder / "F.npy", mmap_mode="r")
    if fluorescence.ndim != 2:
        raise InputDataError(folder / "F.npy", f"expected (n_rois, n_frames), found shape {fluorescence.shape}")
    return {"n_frames": int(fluorescence.shape[1]), "n_rois": int(fluorescence.shape[0])}


def _scanimage(row: Mapping[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]], np.ndarray]:
    """ScanImage acquisition: (inventory entry, per-plane entries, plane frame starts (planes, volumes))."""
    files = acquisition_files(row["scanimage"])
    layout, starts, _ = read_acquisition(files, row.get("channel"), int(row["n_planes"]))
    planes = [{"plane": p, "path": files[0], "n_frames": layout.n_volumes,
               "frame_shape_px": list(layout.frame_shape_px), "dtype": layout.dtype} for p in range(layout.n_slices)]
    entry = {"files": [describe_file(f) for f in files], "layout": layout.describe(),
             "incomplete_last_volume_dropped": layout.n_dropped_pages > 0}
    return entry, planes, starts


def _inventory_dataverse(row: Mapping[str, Any]) -> dict[str, Any]:
    """An NLP4Neuro Dataverse fish (:mod:`pipeline.io.dataverse`): every plane's F.npy,
    stat.npy and tail_df.h5 present, F and tail frame counts agreeing and equal across
    planes, tail rate and frame rate (mean sample time per frame) as declared."""
    n_planes, root = int(row["n_planes"]), row["dataverse_dir"]
    planes = []
    for plane in range(n_planes):
        folder = plane_folder(root, plane)
        n_frames = checked_frame_count(root, plane)
        tail = read_tail_df(folder / "tail_df.h5")
        planes.append({"plane": plane, "path": str(folder), "n_frames": n_frames,
                       "n_rois": int(np.load(folder / "F.npy", mmap_mode="r").shape[0]), "n_tail_samples": int(len(tail)),
                       "files": [describe_file(folder / name) for name in DATAVERSE_FILES]})
        if n_frames != planes[0]["n_frames"]:
            raise InputDataError(folder / "F.npy", f"{n_frames} frames but plane 0 has {planes[0]['n_frames']}")
        frame_t = frame_means(tail, n_frames)[2]
        _check_rate(folder / "tail_df.h5", frame_t[np.isfinite(frame_t)], float(row["volume_rate_hz"]),
                    f"plane {plane} frame (mean sample time per frame)")
        if plane == 0:
            tail_t = tail["t"].to_numpy(float)
            tail_rate = _check_rate(folder / "tail_df.h5", tail_t, float(row["tail_rate_hz"]), "tail sample")
            untracked = float(np.mean(~np.isfinite(tail[TAIL_COLUMNS[2:]].to_numpy(float)).all(axis=1)))
    stimulus = None
    if row.get("stimulus_log"):
        table = _read_csv(Path(row["stimulus_log"]), STIMULUS_COLUMNS)
        stimulus = {**describe_file(row["stimulus_log"]), "n_epochs": int(len(table))}
    return {
        **_header("zebrafish", "fish_id", row),
        "region_mask": None,
        "planes": planes,
        "frame_times": {"path": "each plane's tail_df.h5 frame column", "clock": "tail log's (frame column)",
                        "frames_per_plane": {p["plane"]: p["n_frames"] for p in planes}},
        "tail_log": {"path": planes[0]["files"][2]["path"], "measured_rate_hz": tail_rate,
                     "untracked_fraction": untracked, "covers_imaging": True},
        "stimulus_log": stimulus,
    }


def _inventory_nwb(row: Mapping[str, Any]) -> dict[str, Any]:
    """An NWB fish (:mod:`pipeline.io.nwb`): every plane's Fluorescence series (or, raw,
    TwoPhotonSeries timestamps) with the same number of frames at the declared volume rate,
    and the raw tail log at the declared rate."""
    path = Path(row["nwb"])
    raw = row.get("nwb_data") == "raw"
    frame_times = read_nwb_frame_times(path, int(row["n_planes"]), raw=raw)
    planes = []
    for plane, times in enumerate(frame_times):
        _check_rate(path, times, float(row["volume_rate_hz"]), f"plane {plane} frame")
        info = {"plane": plane, "path": str(path), "n_frames": int(times.size)}
        if not raw:
            info["n_rois"] = read_nwb_plane(path, plane).n_rois
        planes.append(info)
    t, theta = read_nwb_tail(path)
    stimulus = None
    if row.get("stimulus_log"):
        table = _read_csv(Path(row["stimulus_log"]), STIMULUS_COLUMNS)
        stimulus = {**describe_file(row["stimulus_log"]), "n_epochs": int(len(table))}
    return {
        **_header("zebrafish", "fish_id", row),
        "nwb": describe_file(path),
        "region_mask": None,
        "planes": planes,
        "frame_times": {"path": f"{path} (Fluorescence timestamps)", "clock": "the NWB file's (shared with its tail log)",
                        "frames_per_plane": {p["plane"]: p["n_frames"] for p in planes}},
        "tail_log": {"path": f"{path} (BehavioralTimeSeries/tail_log)", "n_samples": int(t.size),
                     "measured_rate_hz": _check_rate(path, t, float(row["tail_rate_hz"]), "tail sample"),
                     "untracked_fraction": float(np.mean(~np.isfinite(theta).all(axis=1)))},
        "stimulus_log": stimulus,
    }


def inventory_fish(row: Mapping[str, Any]) -> dict[str, Any]:
    """Check one fish's inputs against its table row and return the inventory.

    Checks: every plane's stack (or Suite2P plane folder, or the ScanImage acquisition:
    :func:`pipeline.io.scanimage.read_acquisition`) is readable; frame timestamps (the
    table's file, else the ScanImage headers) exist for every plane, one per frame, at the
    declared volume rate; the tail log has ``t, frame, theta_00..theta_05`` at the declared
    tail rate and overlaps the imaging (only when both are on one clock: with imaging-clock
    times the overlap is checked after synchronisation, in ``align_behavior``); the
    stimulus log has its columns and positive-length epochs.
    Raises InputDataError naming the file and the problem.
    """
    if row["input_type"] == "nlp4neuro_dataverse":
        return _inventory_dataverse(row)
    if row["input_type"] == "nwb":
        return _inventory_nwb(row)
    n_planes = int(row["n_planes"])
    acquisition = None
    if row["input_type"] == "scanimage":
        acquisition, scanimage_planes, header_starts = _scanimage(row)
    if row.get("frame_times"):
        frame_times = Path(row["frame_times"])
        frames_per_plane, imaging_span = _frame_times(frame_times, n_planes, float(row["volume_rate_hz"]))
        frame_time_entry = {**describe_file(frame_times), **imaging_span, "clock": "tail log's (declared)"}
    else:  # ScanImage headers (config.FRAME_TIMES_IN_DATA)
        frame_times = Path(acquisition["files"][0]["path"])
        for plane, starts in enumerate(header_starts):
            _check_rate(frame_times, starts, float(row["volume_rate_hz"]), f"plane {plane} frame (ScanImage header)")
        frames_per_plane = {p: int(header_starts.shape[1]) for p in range(n_planes)}
        imaging_span = {"t_first_s": float(header_starts.min()), "t_last_s": float(header_starts.max())}
        frame_time_entry = {"path": "ScanImage frame headers (frameTimestamps_sec)", **imaging_span,
                            "clock": "imaging computer's (since the acquisition trigger)"}
    same_clock = bool(row.get("frame_times")) and not row.get("frame_trigger")

    planes: list[dict[str, Any]] = []
    if row["input_type"] == "scanimage":
        planes = scanimage_planes
    elif row["input_type"] == "tiff":
        for plane, stack in enumerate(plane_paths(row["tiff"], n_planes)):
            info = {"plane": plane, **describe_file(stack), **_tiff_stack(Path(stack))}
            planes.append(info)
    else:
        root = Path(row["suite2p_dir"])
        for plane in range(n_planes):
            folder = root / f"plane{plane}"
            info = {"plane": plane, "path": str(folder), **_suite2p_plane(folder)}
            info["files"] = [describe_file(folder / name) for name in SUITE2P_FILES]
            planes.append(info)
    for info in planes:
        expected = frames_per_plane[info["plane"]]
        if info["n_frames"] != expected:
            raise InputDataError(
                info["path"],
                f"{info['n_frames']} frames but {frame_times} lists {expected} for plane {info['plane']}",
            )

    tail_path = Path(row["tail_log"])
    tail = _read_csv(tail_path, TAIL_COLUMNS)
    tail_t = tail["t"].to_numpy(float)
    tail_rate = _check_rate(tail_path, tail_t, float(row["tail_rate_hz"]), "tail sample")
    angles = tail[TAIL_COLUMNS[2:]].to_numpy(float)
    if same_clock and (tail_t[-1] <= imaging_span["t_first_s"] or tail_t[0] >= imaging_span["t_last_s"]):
        raise InputDataError(
            tail_path,
            f"tail log spans {tail_t[0]:.3f}-{tail_t[-1]:.3f} s, imaging spans "
            f"{imaging_span['t_first_s']:.3f}-{imaging_span['t_last_s']:.3f} s: no overlap "
            "(are both on the same clock?)",
        )

    stim_path = Path(row["stimulus_log"])
    stimulus = _read_csv(stim_path, STIMULUS_COLUMNS)
    if not np.all(stimulus["t_end"].to_numpy(float) > stimulus["t_start"].to_numpy(float)):
        raise InputDataError(stim_path, "every epoch needs t_end > t_start")

    region_mask = None
    if row.get("region_table"):
        labels, names = read_region_mask(row["region_table"])
        first_plane = planes[0].get("frame_shape_px") if planes and "frame_shape_px" in planes[0] else None
        if labels.shape[0] != n_planes or (first_plane and list(labels.shape[1:]) != first_plane):
            raise InputDataError(
                row["region_table"], f"mask shape {labels.shape} does not match {n_planes} planes of {first_plane} px"
            )
        region_mask = {**describe_file(row["region_table"]), "regions": sorted(names.values())}

    return {
        **_header("zebrafish", "fish_id", row),
        "region_mask": region_mask,
        "planes": planes,
        "frame_times": {**frame_time_entry, "frames_per_plane": frames_per_plane},
        "scanimage": acquisition,
        "frame_trigger": describe_file(row["frame_trigger"]) if row.get("frame_trigger") else None,
        "tail_log": {
            **describe_file(tail_path),
            "n_samples": int(len(tail)),
            "measured_rate_hz": tail_rate,
            "t_first_s": float(tail_t[0]),
            "t_last_s": float(tail_t[-1]),
            "untracked_fraction": float(np.mean(~np.isfinite(angles).all(axis=1))),
            "covers_imaging": (bool(tail_t[0] <= imaging_span["t_first_s"] and tail_t[-1] >= imaging_span["t_last_s"])
                               if same_clock else "not decidable before clock synchronisation (align_behavior)"),
        },
        "stimulus_log": {**describe_file(stim_path), "n_epochs": int(len(stimulus))},
    }


def inventory_session(row: Mapping[str, Any]) -> dict[str, Any]:
    """Check one IBL session (a ONE cache session or a DANDI NWB file) with
    :func:`pipeline.ibl.alf_session.load_session` (session in the cache, required
    datasets present at the revision ONE resolves, spikes sorted, cluster ids and channels
    in range, consistent trial/wheel/camera arrays, plausible wheel units) and return the
    inventory with checksums of every dataset read."""
    from pipeline.ibl.alf_session import load_session

    session = load_session(row)
    first, last = session.spike_span_s
    return {
        **_header("ibl_session", "session_id", row),
        "session_path": session.session_path,
        "probe_collections": {p.collection: {"n_spikes": int(p.spike_times.shape[0]), "n_clusters": p.n_clusters}
                              for p in session.probes},
        "camera": session.camera,
        "spike_span_s": [first, last],
        "n_trials": session.n_trials,
        "trial_attributes": sorted(session.trials),
        "files": [describe_file(p) for p in session.source_files],
    }


def checksums(inventory: Mapping[str, Any]) -> dict[str, str]:
    """path -> SHA-256 of every file an inventory describes (for stage provenance)."""
    found: dict[str, str] = {}

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            if "path" in node and "sha256" in node:
                found[node["path"]] = node["sha256"]
            for value in node.values():
                visit(value)
        elif isinstance(node, list):
            for value in node:
                visit(value)

    visit(inventory)
    return found
