"""Tests of the synthetic larval-zebrafish generator (tiny sizes, a few seconds in total)."""

from __future__ import annotations

import json
import math
from dataclasses import fields
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import tifffile

from pipeline.synth import zebrafish as zf
from pipeline.synth.config import REALISTIC_PRESET, ZebrafishSynthParams
from pipeline.synth.zebrafish import calcium_kernel, displacement_field, generate_fish, patch_mean_shift

META = dict(volume_rate_hz=1.1, n_planes=2, pixel_size_um=1.0, plane_spacing_um=7.0, tail_rate_hz=200.0)
TINY = dict(
    n_volumes=80, frame_height_px=48, frame_width_px=48, neurons_per_plane=20,
    static_duration_s=3.0, moving_duration_s=5.0, neuron_f0_photons=20.0, background_photons=6.0,
)
THETAS = [f"theta_{k:02d}" for k in range(6)]


def _make(root: Path, seed: int = 7, meta: dict | None = None, **overrides):
    params = ZebrafishSynthParams(**{**TINY, **overrides})
    out, truth = root / "fish" / "raw", root / "truth" / "fish.h5"
    generate_fish(out, truth, params, seed=seed, progress=False, **(meta or META))
    return out, truth, params


@pytest.fixture(scope="module")
def fish(tmp_path_factory):
    return _make(tmp_path_factory.mktemp("zf_base"))


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


# ---------------------------------------------------------------- params


def test_params_from_mapping_and_unknown_key():
    d = {"n_volumes": 10, "static_duration_s": 30, "moving_duration_s": 10, "shuffle_directions": True}
    p = ZebrafishSynthParams.from_mapping(d)
    assert p.n_volumes == 10 and p.static_duration_s == 30.0 and isinstance(p.static_duration_s, float)
    assert ZebrafishSynthParams(**d) == p
    with pytest.raises(ValueError, match="n_volumez"):
        ZebrafishSynthParams.from_mapping({"n_volumez": 3})
    with pytest.raises(ValueError):
        ZebrafishSynthParams(n_volumes=0)
    with pytest.raises(ValueError):
        ZebrafishSynthParams(calcium_rise_tau_s=2.0, calcium_decay_tau_s=1.0)
    # every field documented with a default: constructing with no args works and is JSON-able
    json.dumps(ZebrafishSynthParams().to_dict())


# ---------------------------------------------------------------- determinism


def test_deterministic_same_seed_and_differs_with_seed(fish, tmp_path):
    out, _, _ = fish
    out2, _, _ = _make(tmp_path / "same")
    out3, _, _ = _make(tmp_path / "other", seed=8)
    a, b, c = _files(out), _files(out2), _files(out3)
    assert sorted(a) == ["frame_times.csv", "plane0.tif", "plane1.tif", "region_mask.tif", "stimulus_log.csv",
                         "tail_log.csv"]
    assert a == b
    for name in ("plane0.tif", "plane1.tif", "tail_log.csv", "frame_times.csv"):
        assert a[name] != c[name], name


def test_streams_are_independent(fish, tmp_path):
    """Changing only the motion parameters changes the movies but not neurons or the tail."""
    out, truth, _ = fish
    out2, truth2, _ = _make(tmp_path / "motion", rigid_drift_sd_px=2.0, nonrigid_sd_px=0.1)
    assert (out / "tail_log.csv").read_bytes() == (out2 / "tail_log.csv").read_bytes()
    assert (out / "plane0.tif").read_bytes() != (out2 / "plane0.tif").read_bytes()
    with h5py.File(truth) as f, h5py.File(truth2) as g:
        np.testing.assert_array_equal(f["calcium/dff"][()], g["calcium/dff"][()])
        np.testing.assert_array_equal(f["neurons/centroid_px"][()], g["neurons/centroid_px"][()])
        assert not np.array_equal(f["motion/rigid_shift_px"][()], g["motion/rigid_shift_px"][()])


# ---------------------------------------------------------------- shapes and timing


def test_tiff_shapes_and_frame_times(fish):
    out, truth, p = fish
    for pl in range(META["n_planes"]):
        with tifffile.TiffFile(out / f"plane{pl}.tif") as tf:
            assert len(tf.pages) == p.n_volumes
            page = tf.pages[0]
            assert page.dtype == np.uint16 and page.shape == (p.frame_height_px, p.frame_width_px)
            movie = tf.asarray()
        assert movie.shape == (p.n_volumes, p.frame_height_px, p.frame_width_px)
        assert movie.std() > 1.0 and movie.min() < movie.max()
    ft = pd.read_csv(out / "frame_times.csv")
    assert list(ft.columns) == ["volume", "plane", "t"]
    assert len(ft) == p.n_volumes * META["n_planes"]
    t = ft.pivot(index="plane", columns="volume", values="t").to_numpy()
    assert np.all(np.diff(t, axis=1) > 0)
    period = 1 / META["volume_rate_hz"]
    assert np.median(np.diff(t[0])) == pytest.approx(period, abs=2e-3)
    offset = np.median(t[1] - t[0])
    assert offset == pytest.approx(period / META["n_planes"], abs=3e-3)
    assert abs(t.min()) < 0.1  # imaging starts near t = 0
    with h5py.File(truth) as f:
        np.testing.assert_allclose(f["timing/frame_times"][()], t, atol=2e-6)


def test_tail_log(fish):
    out, _, _ = fish
    tail = pd.read_csv(out / "tail_log.csv")
    ft = pd.read_csv(out / "frame_times.csv")
    assert list(tail.columns) == ["t", "frame", *THETAS]
    assert pd.api.types.is_integer_dtype(tail["frame"])
    t = tail.t.to_numpy()
    assert np.all(np.diff(t) > 0)
    assert np.median(np.diff(t)) == pytest.approx(1 / META["tail_rate_hz"], rel=0.01)
    assert t[0] < ft.t.min() and t[-1] > ft.t.max() + 1 / META["volume_rate_hz"] / META["n_planes"]
    gaps = np.diff(tail.frame.to_numpy())
    assert np.all(gaps >= 1) and np.any(gaps > 1)  # a few dropped camera frames
    big = np.flatnonzero(gaps > 1)
    assert np.all(np.diff(t)[big] > 1.5 / META["tail_rate_hz"])
    th = tail[THETAS].to_numpy()
    # near zero at rest, bouts reach large amplitudes, amplitude grows rostral -> caudal
    assert np.median(np.abs(th[:, -1])) < 0.05
    assert np.abs(th[:, -1]).max() > 0.3
    q = np.percentile(np.abs(th), 99.5, axis=0)
    assert np.all(np.diff(q) > 0)


def test_stimulus_schedule(fish):
    out, _, p = fish
    st = pd.read_csv(out / "stimulus_log.csv")
    assert list(st.columns) == ["t_start", "t_end", "epoch", "direction_deg"]
    assert set(st.epoch) <= {"static", "moving"}
    np.testing.assert_allclose(st.t_start.to_numpy()[1:], st.t_end.to_numpy()[:-1])
    full = st.iloc[:16]
    assert list(full.epoch) == ["static", "moving"] * 8
    assert sorted(full.direction_deg[full.epoch == "moving"]) == list(range(0, 360, 45))
    assert np.all(full.direction_deg.to_numpy()[0::2] == full.direction_deg.to_numpy()[1::2])
    dur = (full.t_end - full.t_start).to_numpy()
    np.testing.assert_allclose(dur[0::2], p.static_duration_s)
    np.testing.assert_allclose(dur[1::2], p.moving_duration_s)


# ---------------------------------------------------------------- truth file


def test_truth_file_contents(fish):
    out, truth, p = fish
    with h5py.File(truth) as f:
        assert f.attrs["seed"] == 7 and f.attrs["generator"] == "pipeline.synth.zebrafish"
        assert json.loads(f.attrs["params_json"]) == p.to_dict()
        assert f.attrs["volume_rate_hz"] == META["volume_rate_hz"] and f.attrs["n_planes"] == 2
        for name in ("neurons/plane", "neurons/centroid_px", "neurons/position_um", "neurons/region",
                     "neurons/side", "neurons/role", "neurons/f0_photons", "neurons/footprint_indptr",
                     "neurons/footprint_pixel_index", "neurons/footprint_weight", "calcium/dff",
                     "calcium/event_times_s", "calcium/event_indptr", "motion/rigid_shift_px",
                     "motion/nonrigid_grid_px", "motion/grid_y_px", "motion/grid_x_px",
                     "tail/drive_left_hz", "tail/drive_right_hz", "tail/bout_onset_s",
                     "tail/bout_duration_s", "tail/bout_side", "tail/driver_neuron_index"):
            assert "units" in f[name].attrs and "description" in f[name].attrs, name
        assert "(y - dy, x - dx)" in f["motion"].attrs["sign_convention"]
        n = 2 * p.neurons_per_plane
        region = f["neurons/region"].asstr()[()]
        role = f["neurons/role"].asstr()[()]
        side = f["neurons/side"].asstr()[()]
        cen = f["neurons/centroid_px"][()]
        plane = f["neurons/plane"][()]
        pos = f["neurons/position_um"][()]
        assert len(region) == len(role) == n and f["calcium/dff"].shape == (n, p.n_volumes)
        assert set(region) <= {"Pt", "nMLF", "Hb", "other"}
        assert set(role) <= {"driver_left", "driver_right", "stimulus", "noise"}
        assert {"stimulus", "noise"} <= set(role)
        assert np.sum(role == "driver_left") == np.sum(role == "driver_right") == p.n_drivers_per_side
        assert np.all(side[role == "driver_left"] == "left") and np.all(side[role == "driver_right"] == "right")
        mid = f["neurons"].attrs["midline_x_px"]
        assert np.all((cen[:, 1] < mid) == (side == "left"))
        np.testing.assert_allclose(pos[:, 2], plane * META["plane_spacing_um"])
        drv = f["tail/driver_neuron_index"][()]
        assert set(role[drv]) == {"driver_left", "driver_right"}
        # Pt rostral of Hb
        if np.any(region == "Pt") and np.any(region == "Hb"):
            assert cen[region == "Pt", 0].mean() < cen[region == "Hb", 0].mean()
        # footprints: compact blobs of about the nominal diameter, centred on the centroid
        ip = f["neurons/footprint_indptr"][()]
        pix = f["neurons/footprint_pixel_index"][()]
        wts = f["neurons/footprint_weight"][()]
        assert ip[0] == 0 and ip[-1] == len(pix) == len(wts) and np.all(np.diff(ip) > 0)
        lx = p.frame_width_px
        for i in range(0, n, 7):
            yy, xx = np.divmod(pix[ip[i]:ip[i + 1]], lx)
            w = wts[ip[i]:ip[i + 1]]
            assert np.average(yy, weights=w) == pytest.approx(cen[i, 0], abs=0.5)
            assert np.average(xx, weights=w) == pytest.approx(cen[i, 1], abs=0.5)
            area_um2 = w.sum() * META["pixel_size_um"] ** 2
            assert 0.5 * math.pi * 9 < area_um2 < 2.0 * math.pi * 9  # ~6 um diameter disk
        ref = f["images/reference"][()]
        assert ref.shape == (2, p.frame_height_px, p.frame_width_px)


# ---------------------------------------------------------------- calcium


def test_calcium_kernel_shape():
    rise, decay = 0.1, 1.5
    t = np.linspace(0, 8, 8001)
    k = calcium_kernel(t, rise, decay)
    assert k[0] == 0 and k.max() == pytest.approx(1.0, abs=1e-6)
    t_peak = t[np.argmax(k)]
    assert 0.1 < t_peak < 0.5
    sel = (t > 1.0) & (t < 6.0)
    slope = np.polyfit(t[sel], np.log(k[sel]), 1)[0]
    assert -1 / slope == pytest.approx(decay, rel=0.05)
    # 10-90 % rise time of order the rise constant
    up = t[: np.argmax(k)]
    kk = k[: np.argmax(k)]
    rise_time = up[np.searchsorted(kk, 0.9)] - up[np.searchsorted(kk, 0.1)]
    assert 0.05 < rise_time < 0.5


def test_true_dff_matches_events_and_decay(fish):
    _, truth, p = fish
    with h5py.File(truth) as f:
        dff = f["calcium/dff"][()]
        ft = f["timing/frame_times"][()]
        plane = f["neurons/plane"][()]
        ip = f["calcium/event_indptr"][()]
        et = f["calcium/event_times_s"][()]
        ea = f["calcium/event_amplitude_dff"][()]
        role = f["neurons/role"].asstr()[()]
    # dF/F equals the kernel sum of the stored events at that neuron's plane frame times
    for i in range(0, len(plane), 5):
        t = ft[plane[i]]
        ev, amp = et[ip[i]:ip[i + 1]], ea[ip[i]:ip[i + 1]]
        expect = (amp[None, :] * calcium_kernel(t[:, None] - ev[None, :], p.calcium_rise_tau_s,
                                                 p.calcium_decay_tau_s)).sum(1)
        np.testing.assert_allclose(dff[i], expect, rtol=1e-4, atol=1e-5)
    # decay time constant measured on isolated events of noise neurons
    taus = []
    tau = p.calcium_decay_tau_s
    for i in np.flatnonzero(role == "noise"):
        ev = et[ip[i]:ip[i + 1]]
        t = ft[plane[i]]
        for k, te in enumerate(ev):
            others = np.delete(ev, k)
            if np.any(np.abs(others - te) < 8 * tau):
                continue
            sel = (t - te > 0.5) & (t - te < 4 * tau)
            if sel.sum() < 4:
                continue
            slope = np.polyfit(t[sel] - te, np.log(dff[i, sel]), 1)[0]
            taus.append(-1 / slope)
    assert len(taus) >= 3
    assert np.median(taus) == pytest.approx(tau, rel=0.2)


# ---------------------------------------------------------------- motion


def _phase_corr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Shift d such that a(y) ~ b(y - d), subpixel by parabolic peak fit."""
    win = np.outer(np.hanning(a.shape[0]), np.hanning(a.shape[1]))
    fa, fb = np.fft.fft2((a - a.mean()) * win), np.fft.fft2((b - b.mean()) * win)
    r = fa * np.conj(fb)
    c = np.real(np.fft.ifft2(r / (np.abs(r) + 1e-9)))
    c = np.fft.fftshift(c)
    py, px = np.unravel_index(np.argmax(c), c.shape)
    out = []
    for axis, p0 in ((0, py), (1, px)):
        idx = [py, px]
        vals = []
        for dp in (-1, 0, 1):
            idx[axis] = p0 + dp
            vals.append(c[tuple(idx)])
        den = vals[0] - 2 * vals[1] + vals[2]
        frac = 0.5 * (vals[0] - vals[2]) / den if den != 0 else 0.0
        out.append(p0 + frac - c.shape[axis] // 2)
    return np.array(out)


def test_motion_in_tiff_matches_truth(fish):
    out, truth, p = fish
    with h5py.File(truth) as f:
        ref = f["images/reference"][0]
        rigid = f["motion/rigid_shift_px"][0]
    assert np.abs(rigid).max() > 0.5  # there is motion to detect
    with tifffile.TiffFile(out / "plane0.tif") as tf:
        movie = tf.asarray().astype(float)
    errs = []
    for v in range(0, p.n_volumes, 8):
        est = _refine_shift(movie[v], ref, _phase_corr(movie[v], ref))
        true = np.array(patch_mean_shift(truth, 0, v, 0, p.frame_height_px, 0, p.frame_width_px))
        errs.append(np.abs(est - true))
    errs = np.array(errs)
    assert np.median(errs) < 0.2 and errs.max() < 0.5, errs


def _refine_shift(frame: np.ndarray, ref: np.ndarray, start: np.ndarray) -> np.ndarray:
    """Subpixel shift d maximising corr(frame, ref(y - d)) on a central crop (grid search)."""
    from scipy import ndimage

    c = (slice(6, -6), slice(6, -6))
    best = np.round(start)
    for step, half in ((0.25, 6), (0.05, 5)):
        cands = [best + step * np.array([i, j]) for i in range(-half, half + 1) for j in range(-half, half + 1)]
        scores = [np.corrcoef(frame[c].ravel(), ndimage.shift(ref, d, order=3, mode="nearest")[c].ravel())[0, 1]
                  for d in cands]
        best = cands[int(np.argmax(scores))]
    return best


def test_displacement_field_helpers(fish):
    _, truth, p = fish
    field = displacement_field(truth, 1, 5)
    assert field.shape == (p.frame_height_px, p.frame_width_px, 2)
    nonrigid = displacement_field(truth, 1, 5, include_rigid=False)
    with h5py.File(truth) as f:
        rigid = f["motion/rigid_shift_px"][1, 5]
        grid = f["motion/nonrigid_grid_px"][1, 5]
        gy, gx = f["motion/grid_y_px"][()], f["motion/grid_x_px"][()]
    np.testing.assert_allclose(field - nonrigid, np.broadcast_to(rigid, field.shape), atol=1e-12)
    # the field interpolates the control nodes (corner nodes sit exactly on pixels) and equals
    # the documented cubic spline at fractional node index
    for a in (0, -1):
        for b in (0, -1):
            np.testing.assert_allclose(nonrigid[int(round(gy[a])), int(round(gx[b]))], grid[a, b], atol=1e-9)
    from scipy import ndimage

    yy, xx = np.mgrid[0:p.frame_height_px, 0:p.frame_width_px]
    u = yy * (len(gy) - 1) / (p.frame_height_px - 1)
    w = xx * (len(gx) - 1) / (p.frame_width_px - 1)
    for c in range(2):
        ref = ndimage.map_coordinates(grid[..., c], [u, w], order=3, mode="nearest")
        np.testing.assert_allclose(nonrigid[..., c], ref, atol=1e-9)
    assert np.abs(nonrigid).max() < 3.0
    dy, dx = patch_mean_shift(truth, 1, 5, 0, 16, 8, 24)
    assert dy == pytest.approx(field[0:16, 8:24, 0].mean()) and dx == pytest.approx(field[0:16, 8:24, 1].mean())


# ---------------------------------------------------------------- behaviour is decodable


def test_frame_averaged_tail_tracks_delayed_drivers(tmp_path):
    meta = {**META, "n_planes": 1, "pixel_size_um": 2.0}
    out, truth, p = _make(tmp_path, seed=3, meta=meta, n_volumes=400, frame_height_px=24,
                          frame_width_px=24, neurons_per_plane=12, static_duration_s=10.0)
    tail = pd.read_csv(out / "tail_log.csv")
    ft = pd.read_csv(out / "frame_times.csv").t.to_numpy()
    st = pd.read_csv(out / "stimulus_log.csv")
    with h5py.File(truth) as f:
        role = f["neurons/role"].asstr()[()]
        dff = f["calcium/dff"][()]
        d_t = f["tail/drive_t"][()]
        d_diff = f["tail/drive_right_hz"][()] - f["tail/drive_left_hz"][()]
        delay = f["tail"].attrs["motor_delay_s"]
        onsets = f["tail/bout_onset_s"][()]
    edges = np.append(ft, ft[-1] + 1 / meta["volume_rate_hz"])
    tt = tail.t.to_numpy()
    b = np.searchsorted(edges, tt, "right") - 1
    ok = (b >= 0) & (b < len(ft))

    def frame_mean(x):
        return np.bincount(b[ok], x[ok], len(ft)) / np.bincount(b[ok], minlength=len(ft))

    tail_sum = frame_mean(tail[THETAS].to_numpy().sum(1))  # positive = rightward
    drive = frame_mean(np.interp(tt - delay, d_t, d_diff))
    drivers = dff[role == "driver_right"].mean(0) - dff[role == "driver_left"].mean(0)
    noise = dff[role == "noise"]
    assert np.corrcoef(tail_sum, drive)[0, 1] > 0.25
    assert np.corrcoef(tail_sum, drivers)[0, 1] > 0.15
    assert all(abs(np.corrcoef(tail_sum, x)[0, 1]) < 0.25 for x in noise if x.std() > 0)
    # not a deterministic function of the stimulus: bouts also occur in static epochs
    static = st[st.epoch == "static"]
    in_static = ((onsets[:, None] >= static.t_start.to_numpy()) & (onsets[:, None] < static.t_end.to_numpy())).any(1)
    assert in_static.sum() >= 3 and (~in_static).sum() >= 3


# ---------------------------------------------------------------- atomicity


def test_failure_leaves_nothing(tmp_path, monkeypatch):
    calls = {"n": 0}
    real = zf._apply_noise

    def boom(*a, **k):
        calls["n"] += 1
        if calls["n"] > 5:
            raise RuntimeError("simulated crash mid-way")
        return real(*a, **k)

    monkeypatch.setattr(zf, "_apply_noise", boom)
    with pytest.raises(RuntimeError, match="simulated crash"):
        _make(tmp_path)
    assert calls["n"] == 6
    leftovers = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert leftovers == []
    assert not (tmp_path / "fish" / "raw").exists() and not (tmp_path / "truth" / "fish.h5").exists()


# ---------------------------------------------------------------- two-step API (Snakemake jobs)


def test_simulate_then_render_each_plane_equals_generate_fish(fish, tmp_path):
    out, _, params = fish
    logs = {name: tmp_path / name for name in ["tail_log.csv", "stimulus_log.csv", "frame_times.csv", "region_mask.tif"]}
    truth = tmp_path / "truth.h5"
    zf.simulate_fish(logs["tail_log.csv"], logs["stimulus_log.csv"], logs["frame_times.csv"], logs["region_mask.tif"],
                     truth, params, seed=7, **META)
    for plane in reversed(range(META["n_planes"])):  # order of plane jobs must not matter
        zf.render_plane(truth, plane, tmp_path / f"plane{plane}.tif", progress=False)
    expected = _files(out)
    assert sorted(expected) == ["frame_times.csv", "plane0.tif", "plane1.tif", "region_mask.tif", "stimulus_log.csv",
                                "tail_log.csv"]
    for name, content in expected.items():
        assert (tmp_path / name).read_bytes() == content, name


def test_render_plane_rejects_a_plane_the_fish_does_not_have(fish, tmp_path):
    _, truth, _ = fish
    with pytest.raises(ValueError, match="plane 2 out of range"):
        zf.render_plane(truth, 2, tmp_path / "plane2.tif", progress=False)
    assert not (tmp_path / "plane2.tif").exists()


def test_region_mask_agrees_with_the_neuron_labels(fish):
    from pipeline.io.region_mask import read_region_mask, region_at

    out, truth, _ = fish
    labels, names = read_region_mask(out / "region_mask.tif")
    assert labels.shape == (META["n_planes"], TINY["frame_height_px"], TINY["frame_width_px"])
    assert set(names.values()) == set(zf.REGIONS)
    with h5py.File(truth) as f:
        plane = f["neurons/plane"][()]
        centroids = f["neurons/centroid_px"][()]
        regions = f["neurons/region"].asstr()[()]
    assert (region_at(labels, names, plane, centroids) == regions).mean() > 0.95  # centroids near borders may round across


# ---------------------------------------------------------------- realistic preset

# a strong z-drift (200 um/h: ~3 um in these 55 s; the preset's 4 um/h would be 0.06 um, below its wander) so that the
# drift is there to see
REALISTIC = dict(n_volumes=60, static_duration_s=3.0, moving_duration_s=5.0, preset="realistic",
                 z_drift_um_per_hour=200.0)
META_REAL = dict(volume_rate_hz=1.1, n_planes=2, pixel_size_um=1.2, plane_spacing_um=7.0, tail_rate_hz=200.0)


def _make_realistic(root: Path, **overrides):
    params = ZebrafishSynthParams.from_mapping({**REALISTIC, **overrides})
    out, truth = root / "raw", root / "truth.h5"
    generate_fish(out, truth, params, seed=5, progress=False, **META_REAL)
    return out, truth, params


@pytest.fixture(scope="module")
def realistic(tmp_path_factory):
    return _make_realistic(tmp_path_factory.mktemp("zf_realistic"))


def test_preset_fills_unset_fields_and_explicit_values_win():
    p = ZebrafishSynthParams.from_mapping({"preset": "realistic", "bout_jump_px": 1.5})
    assert p.bout_jump_px == 1.5 and p.bidi_phase_px == REALISTIC_PRESET["bidi_phase_px"]
    assert ZebrafishSynthParams.from_mapping(p.to_dict()) == p  # the resolved dict round-trips
    ideal = ZebrafishSynthParams.from_mapping({})
    assert ideal == ZebrafishSynthParams() and ideal.bidi_phase_px == 0 and ideal.axial_fwhm_um == 0
    with pytest.raises(ValueError, match="preset"):
        ZebrafishSynthParams.from_mapping({"preset": "noisy"})
    with pytest.raises(ValueError, match="int16"):
        ZebrafishSynthParams(adu_offset=-50.0)
    assert set(REALISTIC_PRESET) <= {f.name for f in fields(ZebrafishSynthParams)}


def test_realistic_truth_records_every_artefact(realistic):
    out, truth, p = realistic
    with h5py.File(truth, "r") as f:
        n, m = f["neurons"], f["motion"]
        plane, same, pos = n["plane"][()], n["same_cell"][()], n["position_um"][()]
        zoff = n["z_offset_um"][()]
        events = n["footprint_indptr"][()]
        shear, line = m["intra_frame_shear_px"][()], m["line_shift_px"][()]
        bidi, zdrift = m["bidi_phase_px"][()], m["z_drift_um"][()]
        rigid = m["rigid_shift_px"][()]
        t = f["timing/frame_times"][()]
        onset, dur = f["tail/bout_onset_s"][()], f["tail/bout_duration_s"][()]
        dropped, log_t = f["tail/dropped_frame"][()], f["tail/log_t"][()]
        ev_ptr = f["calcium/event_indptr"][()]
        ev_t = f["calcium/event_times_s"][()]
    assert len(events) == len(plane) + 1
    # dense labelling, and cells seen in two adjacent planes: same xy and depth, same events
    assert np.bincount(plane).min() >= p.neurons_per_plane
    pairs = np.flatnonzero(same > np.arange(len(same)))
    assert len(pairs) >= 0.1 * p.neurons_per_plane
    a, b = pairs, same[pairs]
    assert np.all(np.abs(plane[a] - plane[b]) == 1)
    np.testing.assert_allclose(pos[a], pos[b])
    for i, j in zip(a[:10], b[:10]):
        np.testing.assert_allclose(ev_t[ev_ptr[i]:ev_ptr[i + 1]], ev_t[ev_ptr[j]:ev_ptr[j + 1]])
    # each appearance is within the axial reach, including a pair's far plane
    assert np.all(zf.axial_weight(zoff, p.axial_fwhm_um) >= p.cross_plane_min_weight * 0.999)
    # intra-frame shear only around bouts; the per-line shift is zero-mean over rows
    assert np.abs(line.mean(axis=2)).max() < 1e-4
    in_bout = np.zeros(t.shape, bool)
    for o, d in zip(onset, dur):
        in_bout |= (t > o - 0.01) & (t < o + d + 0.01)
    assert shear[in_bout].max() > 1.0 and shear[~in_bout].max() < 0.1  # only the slow jump return outside
    # bout jumps of several px; slowly varying sub-pixel bidi phase; z drift over the session
    assert np.abs(rigid).max() > 2.0
    assert np.all(np.abs(bidi - p.bidi_phase_px) < 0.5) and bidi.std() > 0
    assert np.all(zdrift[:, -1] - zdrift[:, 0] > 0.5 * p.z_drift_um_per_hour * np.ptp(t) / 3600)
    # tracking dropouts: the dropped camera frames are missing from the tail log
    tail = pd.read_csv(out / "tail_log.csv")
    assert len(dropped) > 0 and not np.isin(dropped, tail.frame).any()
    assert len(log_t) == len(tail)


def test_z_drift_is_a_rate_per_hour(tmp_path):
    """The linear z-drift grows with recording time at z_drift_um_per_hour, whatever the session length."""
    _, truth, p = _make_realistic(tmp_path, n_volumes=12, z_wander_sd_um=0.0, z_drift_um_per_hour=360.0)
    with h5py.File(truth, "r") as f:
        t, zdrift = f["timing/frame_times"][()], f["motion/z_drift_um"][()]
    np.testing.assert_allclose(zdrift, 360.0 * (t - t.min()) / 3600, atol=1e-6)  # 0.1 um per s


def test_realistic_detector_offset_of_either_sign(realistic, tmp_path):
    _, truth, p = realistic
    neg_out, _, _ = _make_realistic(tmp_path, adu_offset=-250.0, stack_dtype="int16", n_volumes=12)
    pos = tifffile.imread(realistic[0] / "plane0.tif")
    neg = tifffile.imread(neg_out / "plane0.tif")
    assert pos.dtype == np.uint16 and neg.dtype == np.int16
    # dark level = offset: the darkest pixels sit at the offset (zero photons + read noise)
    assert abs(np.percentile(pos, 0.5) - 250) < 15 and abs(np.percentile(neg, 0.5) + 250) < 15
