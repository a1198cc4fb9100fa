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
