"""The suite2p registration backend against the synthetic motion ground truth."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from pipeline.imaging.motion import MotionCorrectionConfig, correct_motion
from pipeline.synth.config import ZebrafishSynthParams
from pipeline.synth.zebrafish import generate_fish, patch_mean_shift

N_FRAMES = 150


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    root = tmp_path_factory.mktemp("s2p_registration")
    params = ZebrafishSynthParams(n_volumes=N_FRAMES, frame_height_px=128, frame_width_px=128,
                                  rigid_drift_sd_px=3.0, nonrigid_sd_px=0.4)
    generate_fish(root / "raw", root / "truth.h5", params, seed=5, progress=False, volume_rate_hz=1.1,
                  n_planes=1, pixel_size_um=1.2, plane_spacing_um=7.0, tail_rate_hz=200.0)
    metrics = correct_motion("suite2p", root / "raw" / "plane0.tif", root / "registered.h5", {"block_size_px": 64})
    return root, metrics


def _rmse(estimate, truth):
    error = estimate - truth
    error -= error.mean(axis=0)  # the template is not the unmoved reference: drop the constant offset
    return float(np.sqrt((error**2).sum(axis=1).mean()))


def test_shifts_match_the_ground_truth(registered):
    root, metrics = registered
    truth = root / "truth.h5"
    with h5py.File(root / "registered.h5") as f:
        rigid, patch, bounds = f["rigid_shift_px"][()], f["patch_shift_px"][()], f["patch_bounds_px"][()]
        assert f["registered"].shape == (N_FRAMES, 128, 128)
        assert f.attrs["algorithm"] == "suite2p"
    frame_truth = np.array([patch_mean_shift(truth, 0, v, 0, 128, 0, 128) for v in range(N_FRAMES)])
    assert _rmse(rigid, frame_truth) <= 0.6  # suite2p's rigid shifts are whole pixels
    errors = []
    for iy in range(bounds.shape[0]):
        for ix in range(bounds.shape[1]):
            y0, y1, x0, x1 = bounds[iy, ix]
            patch_truth = np.array([patch_mean_shift(truth, 0, v, y0, y1, x0, x1) for v in range(N_FRAMES)])
            errors.append(_rmse(patch[:, iy, ix], patch_truth))
    assert np.sqrt(np.mean(np.square(errors))) <= 0.3
    assert metrics["mean_corr_to_template_after"] > metrics["mean_corr_to_template_before"] + 0.2
    assert metrics["crispness_after"] > 1.5 * metrics["crispness_before"]


def test_unknown_method_is_rejected():
    with pytest.raises(ValueError, match="method must be one of"):
        MotionCorrectionConfig(method="caiman2")
