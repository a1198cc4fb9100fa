"""NoRMCorre on the realistic synthetic preset, scored against its truth: bidirectional
phase, patch shifts on good frames, bad-frame detection of sheared bout frames, valid
region (pipeline.imaging.normcorre, .bidi, .badframes)."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pandas as pd
import pytest

from pipeline.imaging.badframes import REASONS, detect_bad_frames
from pipeline.imaging.config import NormcorreParams
from pipeline.imaging.normcorre import motion_correct
from pipeline.imaging.quality_report import (
    DRIFT_COLUMNS,
    Z_CHUNK_S,
    Z_POSITION_COLUMNS,
    read_plane_quality,
    write_quality_report,
)
from pipeline.synth.config import ZebrafishSynthParams
from pipeline.synth.zebrafish import displacement_field, generate_fish

# frequent bouts (as in config/config.yaml) so that 200 volumes hold ~35 sheared frames; a strong z-drift (80 um/h: 4 um
# in these 3 minutes, 20x the preset's 4 um/h) so that the z-drift diagnostic has a drift to recover
FISH = dict(preset="realistic", n_volumes=200, static_duration_s=3.0, moving_duration_s=5.0,
            n_drivers_per_side=8, driver_latent_mean=0.5, bout_rate_gain_hz=3.0, z_drift_um_per_hour=80.0)
META = dict(volume_rate_hz=1.1, n_planes=1, pixel_size_um=1.2, plane_spacing_um=7.0, tail_rate_hz=200.0)
# a rolling template (the fixed one is covered by tests/imaging/test_normcorre.py)
PARAMS = dict(patch_size_px=64, patch_overlap_px=32, template_frames=100, batch_frames=20, device="cpu",
              template_update="rolling", template_update_frames=50)
LARGE_SHEAR_PX = 1.0  # truth intra-frame shear that registration cannot undo with patch shifts


@pytest.fixture(scope="module")
def registered(tmp_path_factory):
    root = tmp_path_factory.mktemp("realistic_reg")
    generate_fish(root / "raw", root / "truth.h5", ZebrafishSynthParams.from_mapping(FISH), seed=4,
                  progress=False, **META)
    motion_correct(root / "raw" / "plane0.tif", root / "reg.h5", NormcorreParams(**PARAMS), progress=False)
    with h5py.File(root / "truth.h5", "r") as f:
        truth = {"shear": f["motion/intra_frame_shear_px"][0], "bidi": f["motion/bidi_phase_px"][0],
                 "z_drift": f["motion/z_drift_um"][0]}
    truth["field"] = np.stack([displacement_field(root / "truth.h5", 0, v) for v in range(FISH["n_volumes"])])
    with h5py.File(root / "reg.h5", "r") as f:
        out = {name: f[name][()] for name in f if name != "registered"}
        out["last_frames"] = f["registered"][-20:]
        out["reason_attrs"] = json.loads(f["bad_frame_reason"].attrs["reasons_json"])
    out["root"] = root
    return truth, out


def test_bidirectional_phase_recovered(registered):
    truth, out = registered
    assert abs(out["bidi_phase_px"].mean() - truth["bidi"].mean()) < 0.1
    assert abs(truth["bidi"].mean()) > 0.3  # there is a phase to find


def test_patch_shifts_on_good_frames(registered):
    truth, out = registered
    est, bounds, bad = out["patch_shift_px"], out["patch_bounds_px"], out["bad_frame"]
    true = np.zeros_like(est)
    for i in range(bounds.shape[0]):
        for j in range(bounds.shape[1]):
            y0, y1, x0, x1 = bounds[i, j]
            true[:, i, j] = truth["field"][:, y0:y1, x0:x1].mean(axis=(1, 2))
    err = est[~bad] - true[~bad]
    err -= err.mean(axis=0, keepdims=True)  # constant template offset per patch
    assert np.sqrt(np.mean(np.sum(err**2, axis=-1))) <= 0.3
    assert np.ptp(true[..., 1]) > 4.0  # bout jumps of several px were there to recover


def test_bad_frames_are_the_sheared_ones(registered):
    truth, out = registered
    large = truth["shear"] > LARGE_SHEAR_PX
    bad = out["bad_frame"]
    assert large.sum() >= 15
    assert (bad & large).sum() >= 0.9 * large.sum()
    assert (bad & ~large).sum() <= 0.05 * (~large).sum()
    np.testing.assert_array_equal(bad, out["bad_frame_reason"] != 0)
    assert out["reason_attrs"] == {str(k): v for k, v in REASONS.items()}


def test_valid_region_excludes_the_replicated_border(registered):
    _, out = registered
    valid = out["valid_region"]
    assert valid.dtype == bool and valid[40:88, 40:88].all()
    assert not valid[:, 0].all() or not valid[:, -1].all()  # the x jumps bring the border into view
    assert 0.3 < valid.mean() < 1.0


def test_detect_bad_frames_each_reason():
    t, rows = 40, np.array([31.5, 63.5, 95.5])
    rigid = np.zeros((t, 2))
    patch = np.zeros((t, 3, 3, 2))
    corr = np.full(t, 0.9) + 0.001 * np.sin(np.arange(t))
    rigid[5] = (12.0, 0.0)
    patch[5] = rigid[5]
    corr[10] = 0.5
    patch[20, :, :, 1] = np.array([-0.4, 0.0, 0.4])[:, None]  # 0.8 px over 64 rows -> ~1.6 px over the frame
    reason, shear = detect_bad_frames(rigid, patch, corr, rows, 128, max_shear_px=0.9, max_shift_jump_px=10.0,
                                      corr_mads=8.0, window_frames=11)
    assert reason[5] == 1 and reason[10] == 2 and reason[20] == 4
    assert np.count_nonzero(reason) == 3
    assert shear[20] == pytest.approx(0.8 * 127 / 64)


def test_quality_page_and_z_drift_diagnostic(registered, tmp_path):
    truth, out = registered
    root = out["root"]
    times = pd.read_csv(root / "raw" / "frame_times.csv").sort_values("volume")["t"].to_numpy()[None, :]
    neural = tmp_path / "neural.h5"
    rng = np.random.default_rng(0)
    with h5py.File(neural, "w") as f:  # the datasets of a neural file the page reads
        f["neurons/centroid_px"] = rng.uniform(0, 128, (12, 2))
        f["neurons/plane"] = np.zeros(12, int)
        f.create_dataset("neurons/region", data=np.array(["Pt", "Hb", "other"] * 4, dtype=object),
                         dtype=h5py.string_dtype())
        f["neurons/dff"] = rng.standard_normal((12, times.shape[1])).astype(np.float32)
        f["time/frame_times_s"] = times
    png, table, z_table = tmp_path / "qc.png", tmp_path / "zdrift.tsv", tmp_path / "zpos.tsv"
    write_quality_report("fishR", [root / "reg.h5"], neural, png, table, z_table,
                         zstack_paths=[root / "raw" / "zstack_plane0.tif"], zstack_step_um=1.0)
    assert png.stat().st_size > 10_000
    # z position from the generator's reference z-stack vs the true z-drift, per chunk
    z = pd.read_csv(z_table, sep="\t")
    assert list(z.columns) == Z_POSITION_COLUMNS and len(z) == int(np.ceil(np.ptp(times) / Z_CHUNK_S + 1e-9))
    chunk = np.floor((times[0] - times[0, 0]) / Z_CHUNK_S).astype(int)
    good = ~out["bad_frame"]
    true_z = np.array([truth["z_drift"][(chunk == c) & good].mean() for c in np.unique(chunk)])
    print("z from stack", z.z_um.round(2).tolist(), "true", true_z.round(2).tolist())
    assert np.abs(z.z_um.to_numpy() - true_z).max() <= 1.0
    assert np.ptp(true_z) > 3.0  # there was drift to recover
    drift = pd.read_csv(table, sep="\t")
    assert list(drift.columns) == DRIFT_COLUMNS and len(drift) == 1
    assert drift.n_bad_frames[0] == out["bad_frame"].sum()
    assert drift.bidi_phase_mean_px[0] == pytest.approx(out["bidi_phase_px"].mean())
    assert drift.z_start_um[0] == pytest.approx(z.z_um.iloc[0]) and drift.z_end_um[0] == pytest.approx(z.z_um.iloc[-1])
    # 4 um of z-drift over the session: the template is the middle's image, the ends fit it worse
    assert drift.corr_drop[0] > 0
    q = read_plane_quality(root / "reg.h5", times[0])
    assert q.valid_region is not None and q.bad_frame.dtype == bool


def test_rolling_template_follows_the_z_drift(registered):
    _, out = registered
    margin = 16
    inner = (slice(None), slice(margin, -margin), slice(margin, -margin))

    def corr(frames, template):
        a = frames[inner].reshape(len(frames), -1)
        b = template[inner[1:]].ravel()
        a = a - a.mean(axis=1, keepdims=True)
        return (a @ (b - b.mean())) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b - b.mean()))

    # 4 um of z-drift: the last frames resemble the template that followed them more than the first one
    assert corr(out["last_frames"], out["template_final"]).mean() > corr(out["last_frames"], out["template"]).mean()
