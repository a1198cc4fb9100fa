"""dF/F with the detector offset removed and a smoothed baseline (pipeline.imaging.dff),
scored on the realistic synthetic preset (dense nuclei, z-drift, bleaching) for a positive
and a negative (int16) detector offset. Traces are taken with the true footprints from a
still movie (tests/oracle_traces.py), so that only the dF/F step is tested."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
from oracle_traces import oracle_traces

from pipeline.imaging.dff import dark_level, delta_f_over_f
from pipeline.io.errors import InputDataError
from pipeline.synth.config import ZebrafishSynthParams
from pipeline.synth.zebrafish import axial_weight, generate_fish

STILL = dict(rigid_drift_sd_px=0.0, rigid_jump_rate_hz=0.0, bout_motion_px=0.0, nonrigid_sd_px=0.0,
             bout_shake_px=0.0, bout_jump_px=0.0, bidi_phase_px=0.0, bidi_phase_drift_px=0.0)
FS = 1.1
BASELINE = dict(frame_rate_hz=FS, baseline_window_s=60.0, baseline_percentile=8.0, baseline_smoothing_s=3.0)


def _traces(root: Path, offset: float):
    """Oracle F, Fneu, mean image, true dF/F and the neurons in focus and active, of a
    realistic still fish with detector offset ``offset``."""
    params = ZebrafishSynthParams.from_mapping({
        "preset": "realistic", "n_volumes": 200, "static_duration_s": 3.0, "moving_duration_s": 5.0,
        "adu_offset": offset, "stack_dtype": "int16" if offset < 0 else "uint16", **STILL})
    generate_fish(root / "raw", root / "truth.h5", params, volume_rate_hz=FS, n_planes=1, pixel_size_um=1.2,
                  plane_spacing_um=7.0, tail_rate_hz=200.0, seed=21, progress=False)
    with h5py.File(root / "truth.h5", "r") as f:
        true = f["calcium/dff"][()]
        focus = axial_weight(f["neurons/z_offset_um"][()] - f["motion/z_drift_um"][0].mean(), params.axial_fwhm_um)
    F, Fneu, mean_image = oracle_traces(root / "raw", root / "truth.h5", 0)
    scored = (focus >= 0.5) & (true.std(axis=1) >= 0.1)
    return F, Fneu, mean_image, true, scored


@pytest.fixture(scope="module", params=[250.0, -250.0], ids=["positive_offset", "negative_offset"])
def traces(request, tmp_path_factory):
    return request.param, _traces(tmp_path_factory.mktemp("dff"), request.param)


def _slope_and_corr(dff, true):
    slopes = [np.polyfit(t, m, 1)[0] for m, t in zip(dff, true)]
    corr = [np.corrcoef(t, m)[0, 1] for m, t in zip(dff, true)]
    return float(np.median(slopes)), float(np.median(corr))


def test_dff_unbiased_for_either_offset_sign(traces):
    offset, (F, Fneu, mean_image, true, scored) = traces
    assert scored.sum() >= 50
    d = dark_level("movie", mean_image=mean_image, percentile=0.5, offset_adu=0.0, movie_scale=1.0, source="movie")
    assert abs(d - offset) < 5.0  # pixels outside the brain are at the dark level
    dff, baseline = delta_f_over_f(F[scored], Fneu[scored], neucoeff=0.7, dark=d, **BASELINE)
    slope, corr = _slope_and_corr(dff, true[scored])
    assert 0.8 <= slope <= 1.25, slope
    assert corr >= 0.85, corr
    assert dff.dtype == np.float32 and baseline.shape == dff.shape
    # without the offset removed, 0.3 x offset sits in (or is missing from) the baseline
    raw, _ = delta_f_over_f(F[scored], Fneu[scored], neucoeff=0.7, dark=0.0, **BASELINE)
    biased, _ = _slope_and_corr(raw, true[scored])
    assert (biased < 0.8) if offset > 0 else (biased > 1.25 or not np.isfinite(biased))


def test_dff_of_a_transient_on_a_bleaching_baseline():
    frames = np.arange(600)
    baseline = 1000.0 * np.exp(-frames / 2000)  # slow bleaching
    transient = np.where((frames >= 300) & (frames < 310), 500.0, 0.0)
    F = (baseline + transient)[None, :]
    dff, _ = delta_f_over_f(F, np.zeros_like(F), neucoeff=0.7, dark=0.0, **BASELINE)
    # the running percentile follows bleaching to within the decay over one window (~3 %)
    assert np.abs(dff[0, (frames < 250) | (frames > 360)]).max() < 0.02
    np.testing.assert_allclose(dff[0, 300:310], 500.0 / baseline[300:310], rtol=0.1)


def test_dark_level_methods():
    img = np.full((8, 8), 300.0)
    img[0, :] = -120.0
    assert dark_level("movie", mean_image=img, percentile=1.0, offset_adu=0, movie_scale=1, source="x") == -120.0
    assert dark_level("config", mean_image=None, percentile=1.0, offset_adu=100, movie_scale=0.5, source="x") == 50.0
    assert dark_level("none", mean_image=None, percentile=1.0, offset_adu=100, movie_scale=1, source="x") == 0.0
    with pytest.raises(InputDataError, match="ops.npy.*offset_method"):
        dark_level("movie", mean_image=None, percentile=1.0, offset_adu=0, movie_scale=1, source="plane0/ops.npy")
