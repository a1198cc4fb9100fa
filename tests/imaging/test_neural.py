"""The neural file: Suite2P planes merged with positions, regions, dF/F and frame times."""

from __future__ import annotations

import json
import shutil

import h5py
import numpy as np
import pandas as pd
import pytest

from pipeline.imaging.config import ExtractionParams, NeuralFileConfig
from pipeline.imaging.duplicates import CrossPlaneDuplicates
from pipeline.imaging.extraction import extract_plane
from pipeline.imaging.neural import write_neural_file
from pipeline.io.errors import InputDataError
from pipeline.synth.config import ZebrafishSynthParams
from pipeline.synth.zebrafish import generate_fish

META = dict(volume_rate_hz=1.1, n_planes=2, pixel_size_um=1.2, plane_spacing_um=7.0, tail_rate_hz=200.0)
SYNTH = dict(  # as tests/imaging/test_extraction.py: no motion, extractable brightness
    n_volumes=200, frame_height_px=96, frame_width_px=96, neurons_per_plane=30,
    rigid_drift_sd_px=0.0, rigid_jump_rate_hz=0.0, bout_motion_px=0.0, nonrigid_sd_px=0.0,
    neuron_f0_photons=30.0, noise_rate_hz=0.15,
)


@pytest.fixture(scope="module")
def fish(tmp_path_factory):
    root = tmp_path_factory.mktemp("neural_fish")
    generate_fish(root / "raw", root / "truth.h5", ZebrafishSynthParams(**SYNTH), seed=3, progress=False, **META)
    folders = []
    for plane in range(META["n_planes"]):
        folder = root / "suite2p" / f"plane{plane}"
        extract_plane(root / "raw" / f"plane{plane}.tif", folder, ExtractionParams(),
                      frame_rate_hz=META["volume_rate_hz"], pixel_size_um=META["pixel_size_um"])
        folders.append(folder)
    row = {"fish_id": "f", "frame_times": str(root / "raw" / "frame_times.csv"),
           "region_table": str(root / "raw" / "region_mask.tif"), **META}
    return row, folders, root


def test_neural_file_against_ground_truth(fish):
    row, folders, root = fish
    out = root / "neural.h5"
    write_neural_file(row, folders, out, NeuralFileConfig())
    with h5py.File(out) as f, h5py.File(root / "truth.h5") as truth:
        n = f["neurons/plane"].shape[0]
        assert f["neurons/dff"].shape == (n, SYNTH["n_volumes"]) and f["time/frame_times_s"].shape == (2, 200)
        frame_times = pd.read_csv(row["frame_times"]).sort_values(["plane", "volume"])["t"].to_numpy()
        np.testing.assert_allclose(f["time/frame_times_s"][()].ravel(), frame_times)
        # each extracted neuron vs the nearest true neuron of its plane
        t_plane, t_pos = truth["neurons/plane"][()], truth["neurons/position_um"][()]
        t_region, t_dff = truth["neurons/region"].asstr()[()], truth["calcium/dff"][()]
        pos, plane, region, dff = (f["neurons/position_um"][()], f["neurons/plane"][()],
                                   f["neurons/region"].asstr()[()], f["neurons/dff"][()])
        matched, same_region, corr = 0, 0, []
        for i in range(n):
            candidates = np.flatnonzero(t_plane == plane[i])
            d = np.linalg.norm(t_pos[candidates] - pos[i], axis=1)
            if d.min() <= 4 * META["pixel_size_um"]:
                j = candidates[d.argmin()]
                matched += 1
                same_region += region[i] == t_region[j]
                corr.append(np.corrcoef(dff[i], t_dff[j])[0, 1])
        assert matched >= 0.9 * n
        assert same_region >= 0.95 * matched
        assert np.median(corr) >= 0.9
        np.testing.assert_array_equal(np.unique(pos[:, 2]), [0.0, 7.0])  # z = plane * spacing


def test_planes_with_different_frame_counts_are_an_error(fish, tmp_path):
    row, folders, root = fish
    shorter = tmp_path / "plane1"
    shutil.copytree(folders[1], shorter)
    for name in ["F", "Fneu", "spks"]:
        np.save(shorter / f"{name}.npy", np.load(shorter / f"{name}.npy")[:, :-1])
    ops = np.load(shorter / "ops.npy", allow_pickle=True).item()
    ops["nframes"] = 199
    np.save(shorter / "ops.npy", ops, allow_pickle=True)
    out = tmp_path / "neural.h5"
    with pytest.raises(InputDataError, match="199 frames but .* lists 200") as excinfo:
        write_neural_file(row, [folders[0], shorter], out, NeuralFileConfig())
    assert str(shorter) in str(excinfo.value) and not out.exists()


def test_duplicates_recorded_or_merged(fish, tmp_path):
    """record keeps every ROI and writes the pairs; merge leaves each pair's partner out of /neurons."""
    row, folders, _ = fish
    files = {}
    for mode in ("record", "merge", "off"):
        # a loose setting so that this sparse two-plane fish has pairs to record
        config = NeuralFileConfig(duplicates=mode, duplicate_max_distance_um=10.0, duplicate_min_posterior=0.0)
        write_neural_file(row, folders, tmp_path / f"{mode}.h5", config)
        files[mode] = h5py.File(tmp_path / f"{mode}.h5")
    try:
        rec, mer, off = files["record"], files["merge"], files["off"]
        assert "duplicates" not in off
        n_pairs = rec["duplicates/kept_plane"].shape[0]
        assert n_pairs > 0 and rec["duplicates"].attrs["mode"] == "record"
        assert json.loads(rec["duplicates"].attrs["settings_json"])["duplicate_max_distance_um"] == 10.0
        np.testing.assert_array_equal(rec["neurons/F"][()], off["neurons/F"][()])
        assert mer["neurons/plane"].shape[0] == off["neurons/plane"].shape[0] - n_pairs
        rows = set(zip(mer["neurons/plane"][()].tolist(), mer["neurons/roi"][()].tolist()))
        partners = set(zip(rec["duplicates/partner_plane"][()].tolist(), rec["duplicates/partner_roi"][()].tolist()))
        kept = set(zip(rec["duplicates/kept_plane"][()].tolist(), rec["duplicates/kept_roi"][()].tolist()))
        assert not rows & partners and kept <= rows
        assert np.all(rec["duplicates/distance_um"][()] <= 10.0)
        assert np.all(np.abs(rec["duplicates/kept_plane"][()] - rec["duplicates/partner_plane"][()]) == 1)
        assert rec["duplicates/posterior"].shape == (n_pairs,) and rec["duplicates/model"].shape == (1, 6)
        assert list(rec["duplicates/model"].attrs["columns"]) == list(CrossPlaneDuplicates.MODEL_COLUMNS)
    finally:
        for f in files.values():
            f.close()
