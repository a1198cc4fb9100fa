"""NWB export of a fish's neural and behaviour files (pynwb), so a lab can deposit what the
pipeline produced (DANDI requires NWB).

Layout of ``results/nwb/{fish}.nwb`` (the `nwb_export` rule; times in s on the tail log's
clock for the behaviour, as acquired for the imaging, see docs/architecture.md):

- one ``ImagingPlane`` per plane (``plane{p}``; device ``microscope``; excitation
  wavelength and indicator unknown to the pipeline: NaN / "unknown");
- processing module ``ophys``: ``ImageSegmentation`` with one ``PlaneSegmentation`` per
  plane (``plane{p}``) whose ROIs are the neural file's neurons of that plane, with columns
  ``neuron`` (row in the neural file), ``roi`` (ROI index in the plane's Suite2P output),
  ``centroid_y_px``, ``centroid_x_px``, ``x_um``, ``y_um``, ``z_um``, ``region``,
  ``iscell_prob``; each ROI's ``pixel_mask`` is its centroid pixel only (the neural file
  keeps no footprints); ``Fluorescence`` (``plane{p}``: F, and ``plane{p}_neuropil``:
  Fneu), ``DfOverF`` (``plane{p}``: dF/F) and ``Fluorescence`` named ``Deconvolved``
  (``plane{p}``: Suite2P spks), each a ``RoiResponseSeries`` (volumes, rois) with the
  plane's frame times as timestamps;
- processing module ``behavior``: ``BehavioralTimeSeries`` with ``tail_angles`` (volumes,
  6) rad and ``tail_valid`` (volumes,) 0/1, timestamps = volume centres.

``session_start_time`` is not known to the pipeline (the fish table has no acquisition
date): it is the Unix epoch unless given, and ``session_description`` says so.
"""

from __future__ import annotations

import datetime as dt
import uuid
import warnings
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from pipeline.io.atomic import atomic_paths
from pipeline.io.errors import InputDataError

UNKNOWN_START = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def _read(path: Path, names: list[str]) -> dict[str, np.ndarray]:
    try:
        with h5py.File(path, "r") as f:
            return {name: f[name][()] for name in names}
    except KeyError as err:
        raise InputDataError(path, f"missing dataset ({err})") from None


def export_fish_nwb(neural_path: str | Path, behavior_path: str | Path, out_path: str | Path, fish_id: str,
                    session_start_time: dt.datetime | None = None) -> None:
    """Write one fish's neural + behaviour files as NWB (layout in the module docstring)."""
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries
    from pynwb.behavior import BehavioralTimeSeries
    from pynwb.ophys import DfOverF, Fluorescence, ImageSegmentation, OpticalChannel, RoiResponseSeries

    neural_path, behavior_path = Path(neural_path), Path(behavior_path)
    n = _read(neural_path, ["neurons/F", "neurons/Fneu", "neurons/dff", "neurons/spks", "neurons/plane",
                            "neurons/roi", "neurons/centroid_px", "neurons/position_um", "neurons/iscell_prob",
                            "time/frame_times_s"])
    with h5py.File(neural_path, "r") as f:
        regions = f["neurons/region"].asstr()[()]
        volume_rate = float(f.attrs["volume_rate_hz"])
    b = _read(behavior_path, ["tail/theta", "tail/valid", "time/volume_start_s", "time/volume_end_s"])
    if b["tail/theta"].shape[0] != n["neurons/F"].shape[1]:
        raise InputDataError(behavior_path, f"{b['tail/theta'].shape[0]} volumes but {neural_path} has "
                                            f"{n['neurons/F'].shape[1]}")
    nwbfile = NWBFile(
        session_description=(f"zebrafish {fish_id}: per-neuron calcium traces and tail angles per imaging volume "
                             "(NLP4Neuro pipeline). session_start_time "
                             + ("given by the user" if session_start_time else "unknown to the pipeline (Unix epoch)")),
        identifier=str(uuid.uuid4()), session_start_time=session_start_time or UNKNOWN_START,
        source_script="pipeline.io.nwb.export_fish_nwb", source_script_file_name=str(Path(__file__).name),
    )
    device = nwbfile.create_device(name="microscope", description="two-photon microscope")
    ophys = nwbfile.create_processing_module("ophys", "ROI traces from the pipeline's neural file")
    segmentation = ImageSegmentation()
    ophys.add(segmentation)
    fluorescence, dff, deconvolved = Fluorescence(), DfOverF(), Fluorescence(name="Deconvolved")
    for container in (fluorescence, dff, deconvolved):  # in the file before their series link to the ROI tables
        ophys.add(container)
    columns = [("neuron", "row in the neural file"), ("roi", "ROI index in the plane's Suite2P output"),
               ("centroid_y_px", "ROI centre row (px)"), ("centroid_x_px", "ROI centre column (px)"),
               ("x_um", "x position (um)"), ("y_um", "y position (um)"), ("z_um", "z position (um)"),
               ("region", "anatomical region"), ("iscell_prob", "Suite2P classifier probability")]
    for plane in range(n["time/frame_times_s"].shape[0]):
        rows = np.flatnonzero(n["neurons/plane"] == plane)
        imaging_plane = nwbfile.create_imaging_plane(
            name=f"plane{plane}", optical_channel=OpticalChannel(
                name="green", description="functional channel", emission_lambda=float("nan")),
            description=f"imaging plane {plane}", device=device, excitation_lambda=float("nan"),
            imaging_rate=volume_rate, indicator="unknown", location="unknown")
        table = segmentation.create_plane_segmentation(f"neurons of plane {plane}", imaging_plane, name=f"plane{plane}")
        for name, description in columns:
            table.add_column(name, description)
        for row in rows:
            cy, cx = n["neurons/centroid_px"][row]
            x, y, z = n["neurons/position_um"][row]
            table.add_roi(pixel_mask=[(int(round(cx)), int(round(cy)), 1.0)], neuron=int(row),
                          roi=int(n["neurons/roi"][row]), centroid_y_px=float(cy), centroid_x_px=float(cx),
                          x_um=float(x), y_um=float(y), z_um=float(z), region=str(regions[row]),
                          iscell_prob=float(n["neurons/iscell_prob"][row]))
        region = table.create_roi_table_region(f"neurons of plane {plane}", region=list(range(rows.size)))
        times = n["time/frame_times_s"][plane]
        for container, name, key, unit in ((fluorescence, f"plane{plane}", "neurons/F", "a.u."),
                                           (fluorescence, f"plane{plane}_neuropil", "neurons/Fneu", "a.u."),
                                           (dff, f"plane{plane}", "neurons/dff", "1"),
                                           (deconvolved, f"plane{plane}", "neurons/spks", "a.u.")):
            container.add_roi_response_series(RoiResponseSeries(
                name=name, data=n[key][rows].T, rois=region, unit=unit, timestamps=times))
    behavior = nwbfile.create_processing_module("behavior", "tail angles per imaging volume")
    centres = 0.5 * (b["time/volume_start_s"] + b["time/volume_end_s"])
    series = BehavioralTimeSeries(name="BehavioralTimeSeries")
    series.add_timeseries(TimeSeries(name="tail_angles", data=b["tail/theta"], unit="radians", timestamps=centres,
                                     description="mean angle of tail segments theta_00..05 (rostral->caudal) per volume"))
    series.add_timeseries(TimeSeries(name="tail_valid", data=b["tail/valid"].astype(np.uint8), unit="n.a.",
                                     timestamps=centres, description="1 = volume valid (tail tracked), 0 = excluded"))
    behavior.add(series)
    with atomic_paths(out_path) as (tmp,), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="The file path provided", category=UserWarning)  # the temporary name
        with NWBHDF5IO(str(tmp), "w") as io:
            io.write(nwbfile)


# ---- import (input_type nwb) ---------------------------------------------------------------
# Convention read (the layout export_fish_nwb writes): processing/ophys/Fluorescence/plane{p}
# (RoiResponseSeries, (frames, rois), timestamps = that plane's frame times, rois -> a
# PlaneSegmentation with centroid_y_px / centroid_x_px columns or pixel masks), optionally
# Fluorescence/plane{p}_neuropil; the raw tail log as processing/behavior/
# BehavioralTimeSeries/tail_log (TimeSeries (samples, 6) rad with timestamps), all on the
# file's one clock. Raw data instead (fish table nwb_data: raw): acquisition/plane{p}, one
# TwoPhotonSeries per plane, data (frames, rows, columns) as stored, timestamps = frame times;
# de-interleaving is not needed, each plane is streamed frame by frame into a TIFF stack.

TAIL_LOG_SERIES = "tail_log"


def _open_nwb(path: str | Path):
    from pynwb import NWBHDF5IO

    path = Path(path)
    if not path.is_file():
        raise InputDataError(path, "NWB file not found")
    try:
        io = NWBHDF5IO(str(path), "r")
        return io, io.read()
    except Exception as err:  # pynwb/hdmf raise many types for a file that is not NWB
        raise InputDataError(path, f"not a readable NWB file ({type(err).__name__}: {err})") from None


def _series(nwbfile, path: Path, module: str, container: str, name: str):
    try:
        return nwbfile.processing[module][container][name]
    except KeyError:
        raise InputDataError(path, f"no series processing/{module}/{container}/{name}") from None


@dataclass(frozen=True)
class NwbPlane:
    """One plane's ROI traces from an NWB file, in the fields write_neural_file reads."""

    F: np.ndarray  # (rois, frames) float32
    Fneu: np.ndarray  # (rois, frames); zeros without a neuropil series
    spks: np.ndarray  # (rois, frames); NaN without a Deconvolved series
    iscell: np.ndarray  # (rois, 2): [1, probability or NaN]
    centroid_px: np.ndarray  # (rois, 2) (y, x)
    frame_times_s: np.ndarray  # (frames,)

    n_rois = property(lambda self: int(self.F.shape[0]))
    n_frames = property(lambda self: int(self.F.shape[1]))
    is_cell = property(lambda self: np.ones(self.n_rois, bool))


def read_nwb_plane(path: str | Path, plane: int) -> NwbPlane:
    """Plane ``plane``'s traces, neuropil, deconvolved activity and ROI centres."""
    path = Path(path)
    io, nwbfile = _open_nwb(path)
    with io:
        series = _series(nwbfile, path, "ophys", "Fluorescence", f"plane{plane}")
        F = np.asarray(series.data[()], dtype=np.float32).T
        times = np.asarray(series.get_timestamps(), dtype=float)
        containers = nwbfile.processing["ophys"].data_interfaces
        neuropil = containers["Fluorescence"].roi_response_series.get(f"plane{plane}_neuropil")
        Fneu = np.asarray(neuropil.data[()], np.float32).T if neuropil is not None else np.zeros_like(F)
        deconvolved = containers["Deconvolved"].roi_response_series.get(f"plane{plane}") if "Deconvolved" in containers else None
        spks = np.asarray(deconvolved.data[()], np.float32).T if deconvolved is not None else np.full_like(F, np.nan)
        table = series.rois.table.to_dataframe().iloc[list(series.rois.data[()])]
        if {"centroid_y_px", "centroid_x_px"} <= set(table.columns):
            centroid = table[["centroid_y_px", "centroid_x_px"]].to_numpy(np.float32)
        elif "pixel_mask" in table.columns:  # weighted mean of (x, y, weight) pixels
            centroid = np.array([[np.average([p[1] for p in m], weights=[p[2] for p in m]),
                                  np.average([p[0] for p in m], weights=[p[2] for p in m])]
                                 for m in table["pixel_mask"]], dtype=np.float32)
        else:
            raise InputDataError(path, f"ROIs of plane{plane} have neither centroid columns nor pixel masks")
        probability = table["iscell_prob"].to_numpy(float) if "iscell_prob" in table.columns else np.full(len(table), np.nan)
    if Fneu.shape != F.shape or spks.shape != F.shape or times.shape != (F.shape[1],):
        raise InputDataError(path, f"plane{plane}: neuropil, deconvolved or timestamps do not match F {F.shape}")
    return NwbPlane(F, Fneu, spks, np.column_stack([np.ones(F.shape[0]), probability]), centroid, times)


def _raw_series(nwbfile, path: Path, plane: int):
    try:
        return nwbfile.acquisition[f"plane{plane}"]
    except KeyError:
        raise InputDataError(path, f"no series acquisition/plane{plane} (TwoPhotonSeries)") from None


def read_nwb_frame_times(path: str | Path, n_planes: int, raw: bool = False) -> np.ndarray:
    """(planes, frames) s: the timestamps of each plane's Fluorescence series (or, ``raw``,
    of its TwoPhotonSeries)."""
    path = Path(path)
    io, nwbfile = _open_nwb(path)
    with io:
        times = [np.asarray((_raw_series(nwbfile, path, p) if raw else
                             _series(nwbfile, path, "ophys", "Fluorescence", f"plane{p}")).get_timestamps(), float)
                 for p in range(n_planes)]
    if len({t.size for t in times}) != 1:
        raise InputDataError(path, f"planes have different frame counts {[t.size for t in times]}")
    return np.stack(times)


def read_nwb_tail(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """The raw tail log: (t (samples,) s, theta (samples, 6) rad)."""
    path = Path(path)
    io, nwbfile = _open_nwb(path)
    with io:
        series = _series(nwbfile, path, "behavior", "BehavioralTimeSeries", TAIL_LOG_SERIES)
        t, theta = np.asarray(series.get_timestamps(), float), np.asarray(series.data[()], float)
    if theta.ndim != 2 or theta.shape != (t.size, 6):
        raise InputDataError(path, f"{TAIL_LOG_SERIES} has shape {theta.shape}, expected ({t.size}, 6)")
    if not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
        raise InputDataError(path, f"{TAIL_LOG_SERIES} timestamps must be finite and increasing")
    return t, theta


def write_nwb_plane_stack(path: str | Path, plane: int, out_path: str | Path) -> int:
    """Stream ``acquisition/plane{plane}`` (TwoPhotonSeries, (frames, rows, columns)) frame by
    frame into a multipage TIFF (the ``tiff`` input layout motion correction reads),
    atomically. Returns the number of frames."""
    import tifffile
    from tqdm import tqdm

    path = Path(path)
    io, nwbfile = _open_nwb(path)
    with io:
        data = _raw_series(nwbfile, path, plane).data  # h5py dataset: read lazily
        if data.ndim != 3:
            raise InputDataError(path, f"acquisition/plane{plane} has shape {data.shape}, expected (frames, rows, columns)")
        with atomic_paths(out_path) as (tmp,), tifffile.TiffWriter(tmp, bigtiff=True) as writer:
            for index in tqdm(range(data.shape[0]), desc=f"plane {plane}", mininterval=5):
                writer.write(np.asarray(data[index]), contiguous=True, software=False, metadata=None)
        return int(data.shape[0])
