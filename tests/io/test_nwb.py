"""NWB export of a fish's neural and behaviour files round-trips through pynwb: every trace,
ROI column, frame time and tail angle reads back equal."""

from __future__ import annotations

import datetime as dt

import h5py
import numpy as np
import pytest

from pipeline.io.errors import InputDataError
from pipeline.io.nwb import export_fish_nwb

N_NEURONS, N_VOLUMES, N_PLANES = 7, 40, 2


@pytest.fixture
def fish_files(tmp_path):
    rng = np.random.default_rng(0)
    plane = np.array([0, 0, 0, 1, 1, 1, 1])
    neural, behavior = tmp_path / "neural.h5", tmp_path / "behavior.h5"
    with h5py.File(neural, "w") as f:
        f.attrs["volume_rate_hz"] = 1.1
        for name in ("F", "Fneu", "dff", "spks"):
            f[f"neurons/{name}"] = rng.random((N_NEURONS, N_VOLUMES)).astype(np.float32)
        f["neurons/plane"] = plane
        f["neurons/roi"] = np.array([0, 2, 5, 0, 1, 3, 4])
        f["neurons/centroid_px"] = rng.uniform(0, 100, (N_NEURONS, 2)).astype(np.float32)
        f["neurons/position_um"] = rng.uniform(0, 60, (N_NEURONS, 3)).astype(np.float32)
        f["neurons/iscell_prob"] = rng.random(N_NEURONS)
        f["neurons/region"] = np.array(["Pt", "Hb", "Pt", "Hb", "Pt", "unassigned", "Hb"], dtype=object)
        f["time/frame_times_s"] = np.arange(N_VOLUMES)[None, :] / 1.1 + np.arange(N_PLANES)[:, None] * 0.45
    with h5py.File(behavior, "w") as f:
        f["tail/theta"] = rng.normal(0, 0.2, (N_VOLUMES, 6))
        valid = np.ones(N_VOLUMES, bool)
        valid[[4, 17]] = False
        f["tail/valid"] = valid
        f["time/volume_start_s"] = np.arange(N_VOLUMES) / 1.1 - 0.2
        f["time/volume_end_s"] = np.arange(N_VOLUMES) / 1.1 + 0.7
    return neural, behavior


def test_export_round_trips(fish_files, tmp_path):
    from pynwb import NWBHDF5IO

    neural, behavior = fish_files
    start = dt.datetime(2024, 5, 1, 10, 0, tzinfo=dt.timezone.utc)
    export_fish_nwb(neural, behavior, tmp_path / "f.nwb", "f1", session_start_time=start)
    with h5py.File(neural) as n, h5py.File(behavior) as b, NWBHDF5IO(str(tmp_path / "f.nwb"), "r") as io:
        nwb = io.read()
        assert nwb.session_start_time == start
        ophys = nwb.processing["ophys"]
        for plane in range(N_PLANES):
            rows = np.flatnonzero(n["neurons/plane"][()] == plane)
            table = ophys["ImageSegmentation"][f"plane{plane}"].to_dataframe()
            np.testing.assert_array_equal(table["neuron"], rows)
            np.testing.assert_array_equal(table["roi"], n["neurons/roi"][rows])
            np.testing.assert_allclose(table[["x_um", "y_um", "z_um"]], n["neurons/position_um"][rows])
            np.testing.assert_allclose(table[["centroid_y_px", "centroid_x_px"]], n["neurons/centroid_px"][rows])
            assert list(table["region"]) == list(n["neurons/region"].asstr()[rows])
            for container, name, key in (("Fluorescence", f"plane{plane}", "F"),
                                         ("Fluorescence", f"plane{plane}_neuropil", "Fneu"),
                                         ("DfOverF", f"plane{plane}", "dff"), ("Deconvolved", f"plane{plane}", "spks")):
                series = ophys[container][name]
                np.testing.assert_array_equal(series.data[()].T, n[f"neurons/{key}"][rows])
                np.testing.assert_array_equal(series.timestamps[()], n["time/frame_times_s"][plane])
                assert list(series.rois.data[()]) == list(range(rows.size))
        tail = nwb.processing["behavior"]["BehavioralTimeSeries"]
        np.testing.assert_array_equal(tail["tail_angles"].data[()], b["tail/theta"][()])
        np.testing.assert_array_equal(tail["tail_valid"].data[()].astype(bool), b["tail/valid"][()])
        np.testing.assert_allclose(tail["tail_angles"].timestamps[()],
                                   (b["time/volume_start_s"][()] + b["time/volume_end_s"][()]) / 2)


def test_volume_count_mismatch_is_refused(fish_files, tmp_path):
    neural, behavior = fish_files
    with h5py.File(behavior, "a") as f:
        del f["tail/theta"]
        f["tail/theta"] = np.zeros((N_VOLUMES - 1, 6))
    with pytest.raises(InputDataError, match="39 volumes but"):
        export_fish_nwb(neural, behavior, tmp_path / "f.nwb", "f1")
    assert not (tmp_path / "f.nwb").exists()
