"""Bidirectional phase estimation and correction (pipeline.imaging.bidi), scored on the
realistic synthetic fish against its /motion/bidi_phase_px."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import tifffile

from pipeline.imaging.bidi import correct_bidi_phase, estimate_bidi_phase
from pipeline.synth.config import ZebrafishSynthParams
from pipeline.synth.zebrafish import generate_fish


@pytest.fixture(scope="module")
def realistic_plane(tmp_path_factory):
    root = tmp_path_factory.mktemp("bidi")
    params = ZebrafishSynthParams.from_mapping(
        {"preset": "realistic", "n_volumes": 40, "static_duration_s": 3.0, "moving_duration_s": 5.0,
         "bidi_phase_px": -1.3})
    generate_fish(root / "raw", root / "truth.h5", params, volume_rate_hz=1.1, n_planes=1, pixel_size_um=1.2,
                  plane_spacing_um=7.0, tail_rate_hz=200.0, seed=11, progress=False)
    with h5py.File(root / "truth.h5", "r") as f:
        phase = f["motion/bidi_phase_px"][0]
    return tifffile.imread(root / "raw" / "plane0.tif").astype(np.float32), phase


def test_estimate_recovers_the_true_subpixel_phase(realistic_plane):
    frames, phase = realistic_plane
    assert abs(estimate_bidi_phase(frames.mean(0)) - phase.mean()) < 0.1


def test_correction_removes_the_phase(realistic_plane):
    frames, phase = realistic_plane
    corrected = correct_bidi_phase(frames, phase)
    assert corrected.dtype == np.float32 and corrected.shape == frames.shape
    np.testing.assert_array_equal(corrected[:, 0::2], frames[:, 0::2])  # even rows untouched
    assert abs(estimate_bidi_phase(corrected.mean(0))) < 0.05


def test_too_small_image_is_refused():
    with pytest.raises(ValueError, match="too small"):
        estimate_bidi_phase(np.zeros((2, 32)))


def test_correction_equals_scipy_shift_of_the_odd_rows():
    """The 1-D correction is ndimage.shift(odd rows, (0, -phase), order=3, mode='nearest')
    per frame, for fractional, negative, large and zero/NaN (untouched) phases."""
    from scipy import ndimage

    rng = np.random.default_rng(4)
    frames = rng.gamma(2.0, 50.0, (6, 21, 40)).astype(np.float32)
    phases = np.array([0.37, -0.81, 2.6, 0.0, np.nan, -3.0])
    corrected = correct_bidi_phase(frames, phases)
    for t, s in enumerate(phases):
        expected = frames[t].copy()
        if s != 0 and np.isfinite(s):
            expected[1::2] = ndimage.shift(frames[t, 1::2], (0.0, -s), order=3, mode="nearest")
        np.testing.assert_allclose(corrected[t], expected, rtol=1e-6, atol=1e-4)
