"""An NWB fish (segmented ROI traces per plane + the raw tail log, written with pynwb) goes
straight to the neural and behaviour files, equal to the direct path (the same traces and
logs given as arrays / CSV files); a missing series is refused naming the file."""

from __future__ import annotations

import datetime as dt

import h5py
import numpy as np
import pandas as pd
import pytest

from pipeline.behavior.config import TailAlignmentConfig
from pipeline.behavior.tail import align_behavior
from pipeline.imaging.config import NeuralFileConfig
from pipeline.imaging.dff import delta_f_over_f
from pipeline.imaging.neural import write_neural_file
from pipeline.io.errors import InputDataError

N_PLANES, N_FRAMES, RATE_HZ, TAIL_HZ = 2, 60, 1.1, 100.0
THETAS = [f"theta_{k:02d}" for k in range(6)]


def write_nwb(path, rng, *, with_tail=True):
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries
    from pynwb.behavior import BehavioralTimeSeries
    from pynwb.ophys import Fluorescence, ImageSegmentation, OpticalChannel, RoiResponseSeries

    nwbfile = NWBFile(session_description="lab export", identifier="x",
                      session_start_time=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc))
    device = nwbfile.create_device(name="scope")
    ophys = nwbfile.create_processing_module("ophys", "traces")
    segmentation, fluorescence = ImageSegmentation(), Fluorescence()
    ophys.add(segmentation)
    ophys.add(fluorescence)
    truth = {}
    for plane in range(N_PLANES):
        ip = nwbfile.create_imaging_plane(name=f"ip{plane}", optical_channel=OpticalChannel(
            name="g", description="g", emission_lambda=520.0), description="", device=device, excitation_lambda=920.0,
            imaging_rate=RATE_HZ, indicator="GCaMP6s", location="brain")
        table = segmentation.create_plane_segmentation("rois", ip, name=f"seg{plane}")
        n_rois = 3 + plane
        for roi in range(n_rois):  # two pixels of weight 1 and 3: centre 3/4 of the way
            table.add_roi(pixel_mask=[(10 + roi, 20, 1.0), (14 + roi, 24, 3.0)])
        region = table.create_roi_table_region("all", region=list(range(n_rois)))
        F = (200 + 20 * rng.random((N_FRAMES, n_rois))).astype(np.float32)
        Fneu = (50 + 5 * rng.random((N_FRAMES, n_rois))).astype(np.float32)
        times = 0.5 + np.arange(N_FRAMES) / RATE_HZ + plane / (RATE_HZ * N_PLANES)
        fluorescence.add_roi_response_series(RoiResponseSeries(name=f"plane{plane}", data=F, rois=region, unit="a.u.",
                                                               timestamps=times))
        fluorescence.add_roi_response_series(RoiResponseSeries(name=f"plane{plane}_neuropil", data=Fneu, rois=region,
                                                               unit="a.u.", timestamps=times))
        truth[plane] = (F.T, Fneu.T, times)
    t = np.arange(0, N_FRAMES / RATE_HZ + 2, 1 / TAIL_HZ) + 0.0013
    theta = 0.2 * np.sin(t[:, None] + np.arange(6)) + 0.01 * rng.standard_normal((t.size, 6))
    if with_tail:
        behavior = nwbfile.create_processing_module("behavior", "tail")
        series = BehavioralTimeSeries(name="BehavioralTimeSeries")
        series.add_timeseries(TimeSeries(name="tail_log", data=theta, unit="radians", timestamps=t))
        behavior.add(series)
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwbfile)
    return truth, t, theta


@pytest.fixture
def nwb_fish(tmp_path):
    truth, t, theta = write_nwb(tmp_path / "f.nwb", np.random.default_rng(0))
    row = {"fish_id": "f", "input_type": "nwb", "nwb": str(tmp_path / "f.nwb"), "n_planes": N_PLANES,
           "volume_rate_hz": RATE_HZ, "tail_rate_hz": TAIL_HZ, "pixel_size_um": 0.6, "plane_spacing_um": 7.0}
    return row, truth, t, theta


def test_neural_file_from_nwb_equals_the_direct_path(nwb_fish, tmp_path):
    row, truth, _, _ = nwb_fish
    config = NeuralFileConfig(cells_only=False)
    write_neural_file(row, [row["nwb"]] * N_PLANES, tmp_path / "n.h5", config)
    with h5py.File(tmp_path / "n.h5") as f:
        plane = f["neurons/plane"][()]
        for p, (F, Fneu, times) in truth.items():
            np.testing.assert_array_equal(f["neurons/F"][()][plane == p], F)
            np.testing.assert_array_equal(f["neurons/Fneu"][()][plane == p], Fneu)
            # traces without a movie: no dark level (offset_method movie has none to read), the
            # configured neuropil coefficient where neuropil traces are given
            expected, _ = delta_f_over_f(F, Fneu, neucoeff=config.neucoeff if Fneu.any() else 0.0, dark=0.0,
                                         frame_rate_hz=RATE_HZ, baseline_window_s=config.baseline_window_s,
                                         baseline_percentile=config.baseline_percentile,
                                         baseline_smoothing_s=config.baseline_smoothing_s)
            np.testing.assert_allclose(f["neurons/dff"][()][plane == p], expected, rtol=1e-6)
            np.testing.assert_array_equal(f["time/frame_times_s"][p], times)
        np.testing.assert_allclose(f["neurons/centroid_px"][:3], [[23, 13], [23, 14], [23, 15]])  # weighted (y, x)


def test_behaviour_from_nwb_equals_the_csv_path(nwb_fish, tmp_path):
    row, truth, t, theta = nwb_fish
    align_behavior(row, tmp_path / "nwb.h5", TailAlignmentConfig())
    tail = pd.DataFrame(theta, columns=THETAS)
    tail.insert(0, "frame", np.arange(t.size))
    tail.insert(0, "t", t)
    tail.to_csv(tmp_path / "tail.csv", index=False)
    pd.DataFrame([{"volume": v, "plane": p, "t": truth[p][2][v]} for p in truth for v in range(N_FRAMES)]).to_csv(
        tmp_path / "frames.csv", index=False)
    csv_row = {**row, "input_type": "tiff", "tail_log": str(tmp_path / "tail.csv"),
               "frame_times": str(tmp_path / "frames.csv")}
    align_behavior(csv_row, tmp_path / "csv.h5", TailAlignmentConfig())
    with h5py.File(tmp_path / "nwb.h5") as a, h5py.File(tmp_path / "csv.h5") as b:
        np.testing.assert_allclose(a["tail/theta"][()], b["tail/theta"][()], atol=1e-12)
        np.testing.assert_array_equal(a["tail/valid"][()], b["tail/valid"][()])


def test_nwb_without_the_named_series_is_refused(tmp_path):
    write_nwb(tmp_path / "f.nwb", np.random.default_rng(1), with_tail=False)
    row = {"fish_id": "f", "input_type": "nwb", "nwb": str(tmp_path / "f.nwb"), "n_planes": N_PLANES,
           "volume_rate_hz": RATE_HZ, "tail_rate_hz": TAIL_HZ}
    with pytest.raises(InputDataError, match="no series processing/behavior/BehavioralTimeSeries/tail_log") as err:
        align_behavior(row, tmp_path / "b.h5", TailAlignmentConfig())
    assert err.value.path.endswith("f.nwb") and not (tmp_path / "b.h5").exists()
    with pytest.raises(InputDataError, match="no series processing/ophys/Fluorescence/plane2"):
        write_neural_file({**row, "n_planes": 3, "pixel_size_um": 1, "plane_spacing_um": 1}, [row["nwb"]] * 3,
                          tmp_path / "n.h5", NeuralFileConfig())


def test_inventory_of_an_nwb_fish(nwb_fish):
    from pipeline.io.inventory import inventory_fish

    row, _, t, _ = nwb_fish
    inventory = inventory_fish(row)
    assert [p["n_rois"] for p in inventory["planes"]] == [3, 4]
    assert [p["n_frames"] for p in inventory["planes"]] == [N_FRAMES] * N_PLANES
    assert inventory["tail_log"]["n_samples"] == t.size
    assert inventory["tail_log"]["measured_rate_hz"] == pytest.approx(TAIL_HZ)


def test_raw_two_photon_series_is_streamed_into_plane_stacks(tmp_path):
    """nwb_data: raw — acquisition/plane{p} TwoPhotonSeries become the stacks that motion
    correction reads (pixel-identical); frame times from their timestamps."""
    import tifffile
    from pynwb import NWBHDF5IO, NWBFile
    from pynwb.ophys import OpticalChannel, TwoPhotonSeries

    from pipeline.behavior.clock import imaging_frame_times
    from pipeline.io.nwb import write_nwb_plane_stack

    rng = np.random.default_rng(2)
    nwbfile = NWBFile(session_description="raw", identifier="r",
                      session_start_time=dt.datetime(2024, 1, 1, tzinfo=dt.timezone.utc))
    device = nwbfile.create_device(name="scope")
    movies, times = [], []
    for plane in range(N_PLANES):
        ip = nwbfile.create_imaging_plane(name=f"ip{plane}", optical_channel=OpticalChannel(
            name="g", description="g", emission_lambda=520.0), description="", device=device, excitation_lambda=920.0,
            imaging_rate=RATE_HZ, indicator="GCaMP6s", location="brain")
        movies.append(rng.integers(0, 4000, (12, 9, 11), dtype=np.uint16))
        times.append(np.arange(12) / RATE_HZ + plane * 0.4)
        nwbfile.add_acquisition(TwoPhotonSeries(name=f"plane{plane}", data=movies[-1], imaging_plane=ip, unit="a.u.",
                                                timestamps=times[-1]))
    with NWBHDF5IO(str(tmp_path / "raw.nwb"), "w") as io:
        io.write(nwbfile)
    for plane in range(N_PLANES):
        assert write_nwb_plane_stack(tmp_path / "raw.nwb", plane, tmp_path / f"p{plane}.tif") == 12
        np.testing.assert_array_equal(tifffile.imread(tmp_path / f"p{plane}.tif"), movies[plane])
    row = {"fish_id": "r", "input_type": "nwb", "nwb": str(tmp_path / "raw.nwb"), "nwb_data": "raw",
           "n_planes": N_PLANES, "volume_rate_hz": RATE_HZ}
    np.testing.assert_array_equal(imaging_frame_times(row).times_s, np.stack(times))
    with pytest.raises(InputDataError, match="no series acquisition/plane2"):
        write_nwb_plane_stack(tmp_path / "raw.nwb", 2, tmp_path / "p2.tif")
    assert not (tmp_path / "p2.tif").exists()
