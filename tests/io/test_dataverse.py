"""A fish in the NLP4Neuro paper's published layout (raw_data_fK/plane_N/{F.npy, stat.npy,
tail_df.h5 written by pandas}) is read as it is: the behaviour file equals the paper's
groupby(frame).mean, the neural file holds every published ROI, the inventory checks the
planes, and a plane whose F.npy and tail_df.h5 disagree is refused."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest

from pipeline.behavior.config import TailAlignmentConfig
from pipeline.behavior.tail import align_behavior
from pipeline.imaging.config import NeuralFileConfig
from pipeline.imaging.neural import write_neural_file
from pipeline.io.errors import InputDataError
from pipeline.io.inventory import inventory_fish

N_PLANES, N_FRAMES, RATE_HZ, TAIL_HZ = 2, 90, 1.1, 50.0
THETAS = [f"theta_{k:02d}" for k in range(6)]


def write_plane(folder, plane, rng, n_frames=N_FRAMES):
    folder.mkdir(parents=True)
    n_rois = 4 + plane
    np.save(folder / "F.npy", (100 + 10 * rng.random((n_rois, n_frames))).astype(np.float32))
    stat = np.array([{"med": [5 + i, 7 + 2 * i], "npix": 20} for i in range(n_rois)], dtype=object)
    np.save(folder / "stat.npy", stat, allow_pickle=True)
    # the tail camera at 50 Hz; frame = this plane's imaging frame of each sample
    t = np.arange(0, n_frames / RATE_HZ, 1 / TAIL_HZ) + 0.003
    frame = np.floor(t * RATE_HZ - plane / N_PLANES).clip(0).astype(np.int64)
    tail = pd.DataFrame({name: 0.1 * (k + 1) * np.sin(t + k) + 0.01 * rng.standard_normal(t.size)
                         for k, name in enumerate(THETAS)})
    tail.loc[rng.random(t.size) < 0.05, "theta_05"] = np.nan  # the tip lost now and then
    tail["t"], tail["frame"] = t, frame
    tail["extra_column"] = 0.0  # the published tables hold more columns
    tail.to_hdf(folder / "tail_df.h5", key="tail")
    (folder / "stimulus_df.tab").write_text("not read\n")
    return tail


@pytest.fixture
def dataverse_fish(tmp_path):
    rng = np.random.default_rng(0)
    root = tmp_path / "raw_data_f10"
    tails = [write_plane(root / f"plane_{p}", p, rng) for p in range(N_PLANES)]
    row = {"fish_id": "f10", "input_type": "nlp4neuro_dataverse", "dataverse_dir": str(root), "n_planes": N_PLANES,
           "volume_rate_hz": RATE_HZ, "tail_rate_hz": TAIL_HZ, "pixel_size_um": 0.6, "plane_spacing_um": 7.0}
    return row, tails


def test_behaviour_equals_the_papers_groupby_frame_mean(dataverse_fish, tmp_path):
    row, tails = dataverse_fish
    align_behavior(row, tmp_path / "b.h5", TailAlignmentConfig())
    paper = tails[0].groupby("frame")[THETAS].mean().to_numpy()  # make_groundtruth.py, plane 0
    with h5py.File(tmp_path / "b.h5") as f:
        np.testing.assert_allclose(f["tail/theta"][()], paper, atol=1e-12)
        per_plane = f["tail/theta_per_plane_frame"][()]
        assert f["tail/valid"][()].all() and f.attrs["clock_sync"] == "frame_column"
        assert "stimulus" not in f and f.attrs["stimulus"].startswith("no stimulus log")
    np.testing.assert_allclose(per_plane[1], tails[1].groupby("frame")[THETAS].mean().to_numpy(), atol=1e-12)


def test_neural_file_holds_every_published_roi(dataverse_fish, tmp_path):
    row, _ = dataverse_fish
    folders = [f"{row['dataverse_dir']}/plane_{p}" for p in range(N_PLANES)]
    write_neural_file(row, folders, tmp_path / "n.h5", NeuralFileConfig())
    F = np.concatenate([np.load(f"{folder}/F.npy") for folder in folders])
    with h5py.File(tmp_path / "n.h5") as f:
        np.testing.assert_array_equal(f["neurons/F"][()], F)
        np.testing.assert_array_equal(f["neurons/Fneu"][()], 0)  # no neuropil published: no correction
        assert np.isnan(f["neurons/spks"][()]).all() and np.isnan(f["neurons/iscell_prob"][()]).all()
        np.testing.assert_array_equal(f["neurons/centroid_px"][:2], [[5, 7], [6, 9]])
        assert f["time/frame_times_s"].shape == (N_PLANES, N_FRAMES)


def test_inventory_checks_every_plane(dataverse_fish):
    row, _ = dataverse_fish
    inventory = inventory_fish(row)
    assert [p["n_frames"] for p in inventory["planes"]] == [N_FRAMES] * N_PLANES
    assert [p["n_rois"] for p in inventory["planes"]] == [4, 5]
    assert inventory["tail_log"]["measured_rate_hz"] == pytest.approx(TAIL_HZ)


def test_plane_whose_f_and_tail_frame_counts_disagree_is_refused(dataverse_fish, tmp_path):
    row, _ = dataverse_fish
    plane1 = tmp_path / "raw_data_f10" / "plane_1"
    np.save(plane1 / "F.npy", np.load(plane1 / "F.npy")[:, :-3])
    for run in (lambda: inventory_fish(row), lambda: align_behavior(row, tmp_path / "b.h5", TailAlignmentConfig())):
        with pytest.raises(InputDataError, match="frame column spans 90 imaging frames but .*F.npy has 87") as err:
            run()
        assert err.value.path.endswith("plane_1/tail_df.h5")
    assert not (tmp_path / "b.h5").exists()
