"""Tests of the NoRMCorre motion correction against the synthetic zebrafish ground truth.

Offset removal: shifts are estimated relative to the template, which is built from the data
(mean of registered frames), so it is displaced from the generator's unmoved reference by a
constant. For the rigid shift that constant is one (dy, dx) vector. For patch shifts the
template also carries the time-averaged non-rigid deformation of the sampled frames, which
varies across the frame, so the natural offset is one vector PER PATCH; we assert the RMSE
after per-patch offset removal and, as a stricter check, after removing one global offset.
"""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import tifffile
import torch

from pipeline.imaging import normcorre as nc
from pipeline.imaging.config import NormcorreParams
from pipeline.imaging.normcorre import crispness, motion_correct, patch_starts
from pipeline.io.errors import InputDataError
from pipeline.synth.config import ZebrafishSynthParams
from pipeline.synth.zebrafish import displacement_field, generate_fish, patch_mean_shift

META = dict(volume_rate_hz=1.1, n_planes=1, pixel_size_um=1.0, plane_spacing_um=7.0, tail_rate_hz=200.0)
FISH = dict(
    n_volumes=150, frame_height_px=128, frame_width_px=128, neurons_per_plane=60,
    static_duration_s=3.0, moving_duration_s=5.0, neuron_f0_photons=20.0, background_photons=6.0,
    # more motion than the defaults so that the test is meaningful: drift of a few px,
    # frequent jumps, non-rigid field of 0.4 px sd changing within the movie
    rigid_drift_sd_px=3.0, rigid_drift_tau_s=20.0, rigid_jump_rate_hz=0.05, rigid_jump_px=2.0,
    nonrigid_sd_px=0.4, nonrigid_tau_s=10.0,
)
PARAMS = dict(patch_size_px=64, patch_overlap_px=32, template_frames=100, batch_frames=64, device="cpu")


@pytest.fixture(scope="module")
def fish(tmp_path_factory):
    root = tmp_path_factory.mktemp("nc_fish")
    p = ZebrafishSynthParams(**FISH)
    generate_fish(root / "raw", root / "truth.h5", p, seed=3, progress=False, **META)
    stack, truth = root / "raw" / "plane0.tif", root / "truth.h5"
    fields = np.stack([displacement_field(truth, 0, v) for v in range(p.n_volumes)])  # (T, Ly, Lx, 2)
    return stack, truth, fields


@pytest.fixture(scope="module")
def result(fish, tmp_path_factory):
    stack, _, _ = fish
    out = tmp_path_factory.mktemp("nc_out") / "reg.h5"
    metrics = motion_correct(stack, out, NormcorreParams(**PARAMS), progress=False)
    return out, metrics


def _rmse(err: np.ndarray) -> float:
    """Root mean squared Euclidean error of (..., 2) shift errors (px)."""
    return float(np.sqrt(np.mean(np.sum(err**2, axis=-1))))


# ---------------------------------------------------------------- params and helpers


def test_params_from_mapping_and_validation():
    p = NormcorreParams.from_mapping({"patch_size_px": 64, "max_rigid_shift_px": 10, "nonrigid": False})
    assert p.patch_size_px == 64 and p.max_rigid_shift_px == 10.0 and isinstance(p.max_rigid_shift_px, float)
    assert NormcorreParams.from_mapping(None) == NormcorreParams()
    with pytest.raises(ValueError, match="patch_sise_px"):
        NormcorreParams.from_mapping({"patch_sise_px": 3})
    for bad in (dict(patch_overlap_px=128), dict(batch_frames=0), dict(device="tpu"),
                dict(interpolation="nearest"), dict(nonrigid=1), dict(upsample_factor=2.5)):
        with pytest.raises(ValueError):
            NormcorreParams(**bad)
    json.dumps(NormcorreParams().to_dict())


def test_patch_starts_cover_the_frame():
    assert patch_starts(128, 64, 32).tolist() == [0, 32, 64]
    assert patch_starts(100, 64, 16).tolist() == [0, 36]  # last patch aligned with the edge
    assert patch_starts(50, 64, 16).tolist() == [0]


def test_subpixel_phase_correlation_on_a_known_shift():
    """Sign and subpixel accuracy on a smooth random image shifted by a known amount."""
    from scipy import ndimage

    rng = np.random.default_rng(0)
    ref = ndimage.gaussian_filter(rng.normal(size=(96, 96)), 2.0) * 100 + 500
    p = NormcorreParams(nonrigid=False)
    reg = nc._Registrar(ref.astype(np.float32), p, torch.device("cpu"))
    true = np.array([[2.3, -1.7], [-4.55, 0.25], [0.0, 7.1]])
    # observed(y) = ref(y - d): ndimage.shift moves content by +d
    frames = np.stack([ndimage.shift(ref, d, order=3, mode="nearest") for d in true]).astype(np.float32)
    rigid, _ = reg.estimate(torch.as_tensor(frames), nonrigid=False)
    np.testing.assert_allclose(rigid.numpy(), true, atol=0.15)
    back = reg.apply(torch.as_tensor(frames), rigid, None).numpy()
    c = slice(12, -12)
    assert np.abs(back[:, c, c] - ref[c, c]).max() < 0.05 * np.ptp(ref)


@pytest.mark.parametrize("mode", ["bicubic", "bilinear"])
def test_cpu_fast_paths_equal_the_torch_paths(monkeypatch, mode):
    """The CPU paths (separable rigid resampling, slice-copy patch gather, numpy whitening,
    numpy frame sums) give what the torch paths (grid_sample, 5-D index, torch whitening,
    torch float64 sum) give, for shifts inside, at and beyond the frame edges."""
    rng = np.random.default_rng(3)
    x = torch.as_tensor(rng.gamma(2.0, 50.0, (9, 40, 56)).astype(np.float32))
    p = NormcorreParams(patch_size_px=24, patch_overlap_px=8, interpolation=mode, device="cpu")
    reg = nc._Registrar(x.mean(0).numpy(), p, torch.device("cpu"))
    d = torch.as_tensor([[0.0, 0.0], [0.3, -0.7], [-2.5, 3.25], [7.9, -11.2], [-19.6, 30.1], [1.0, -2.0],
                         [-0.999, 0.001], [12.5, 0.5], [-3.0, 25.75]], dtype=torch.float64)
    fast = reg.apply(x, d, None)
    monkeypatch.setattr(nc, "_SEPARABLE", ())
    slow = reg.apply(x, d, None)
    np.testing.assert_allclose(fast.numpy(), slow.numpy(), rtol=1e-5, atol=2e-3)

    di = torch.round(d).to(torch.long)
    fast_p = reg._patches(x, di)
    b = x.shape[0]
    iy = (reg.iy[None] + di[:, 0, None, None]).clamp(0, reg.ly - 1)
    ix = (reg.ix[None] + di[:, 1, None, None]).clamp(0, reg.lx - 1)
    ar = torch.arange(b)[:, None, None, None, None]
    np.testing.assert_array_equal(fast_p.numpy(), x[ar, iy[:, :, None, :, None], ix[:, None, :, None, :]].numpy())

    for cor, inp in ((reg.rigid, x), (reg.patch, fast_p)):
        got = cor.cross_power(inp.clone())
        c = inp - inp.mean(dim=(-2, -1), keepdim=True)
        f = torch.fft.rfft2(c * cor.win)
        a = f.abs()
        a += 1e-6 * a.amax(dim=(-2, -1), keepdim=True) + 1e-30
        want = (f * cor.cref / a).reshape(got.shape)
        np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-4, atol=1e-6 * float(want.abs().max()))
    np.testing.assert_allclose(nc._sum_frames(x).numpy(), x.double().sum(0).numpy(), rtol=1e-12)


# ---------------------------------------------------------------- output file


def test_output_datasets_and_attrs(fish, result):
    stack, _, fields = fish
    out, metrics = result
    n, ly, lx = fields.shape[:3]
    with h5py.File(out) as f:
        assert f["registered"].shape == (n, ly, lx) and f["registered"].dtype == np.float32
        assert f["registered"].chunks == (1, ly, lx)
        assert f["rigid_shift_px"].shape == (n, 2)
        assert f["patch_shift_px"].shape == (n, 3, 3, 2)
        assert f["patch_bounds_px"].shape == (3, 3, 4) and f["patch_center_px"].shape == (3, 3, 2)
        assert f["patch_bounds_px"][0, 0].tolist() == [0, 64, 0, 64]
        assert f["patch_bounds_px"][2, 1].tolist() == [64, 128, 32, 96]
        assert f["patch_center_px"][2, 1].tolist() == [95.5, 63.5]
        for name in ("template", "mean_raw", "mean_registered"):
            assert f[name].shape == (ly, lx)
        assert f["corr_to_template_before"].shape == f["corr_to_template_after"].shape == (n,)
        for name in f:
            assert "units" in f[name].attrs and "description" in f[name].attrs, name
        assert json.loads(f.attrs["params_json"]) == NormcorreParams(**PARAMS).to_dict()
        assert f.attrs["source_path"] == str(stack)
        assert f.attrs["device"] == "cpu"
        assert "(y - dy, x - dx)" in f.attrs["sign_convention"]
        for k in ("crispness_before", "crispness_after"):
            assert f.attrs[k] == pytest.approx(metrics[k])
    assert metrics["n_frames"] == n and metrics["device"] == "cpu"


# ---------------------------------------------------------------- accuracy vs truth


def test_rigid_shift_rmse(fish, result):
    _, _, fields = fish
    out, _ = result
    with h5py.File(out) as f:
        est = f["rigid_shift_px"][()]
    true = fields.mean(axis=(1, 2))  # frame-mean displacement = rigid + mean non-rigid
    assert true.std(axis=0).min() > 1.0  # there is real motion to recover
    err = est - true
    err -= err.mean(axis=0)  # constant template offset
    assert _rmse(err) <= 0.3, _rmse(err)
    # the whole frame-mean truth is also what patch_mean_shift returns over the full frame
    _, truth, _ = fish
    np.testing.assert_allclose(patch_mean_shift(truth, 0, 5, 0, 128, 0, 128), true[5], atol=1e-9)


def test_patch_shift_rmse(fish, result):
    _, _, fields = fish
    out, _ = result
    with h5py.File(out) as f:
        est = f["patch_shift_px"][()]
        bounds = f["patch_bounds_px"][()]
    true = np.zeros_like(est)
    for i in range(bounds.shape[0]):
        for j in range(bounds.shape[1]):
            y0, y1, x0, x1 = bounds[i, j]
            true[:, i, j] = fields[:, y0:y1, x0:x1].mean(axis=(1, 2))
    err = est - true
    per_patch = _rmse(err - err.mean(axis=0, keepdims=True))
    global_offset = _rmse(err - err.mean(axis=(0, 1, 2)))
    assert per_patch <= 0.3, per_patch
    assert global_offset <= 0.3, global_offset
    # the non-rigid part is actually estimated: patch shifts beat the rigid shift as a predictor
    with h5py.File(out) as f:
        rigid = f["rigid_shift_px"][()]
    err_rigid = rigid[:, None, None, :] - true
    assert per_patch < _rmse(err_rigid - err_rigid.mean(axis=0, keepdims=True))


def test_registration_improves_correlation_and_crispness(result):
    out, metrics = result
    with h5py.File(out) as f:
        before, after = f["corr_to_template_before"][()], f["corr_to_template_after"][()]
        reg = f["registered"][()]
        mean_reg = f["mean_registered"][()]
        margin = int(f.attrs["metrics_margin_px"])
    assert after.mean() > before.mean() + 0.2
    assert np.mean(after > before) > 0.9
    assert metrics["crispness_after"] > 1.5 * metrics["crispness_before"]
    np.testing.assert_allclose(mean_reg, reg.mean(0), rtol=1e-4, atol=1e-2)
    assert metrics["crispness_after"] == pytest.approx(crispness(reg.mean(0), margin), rel=1e-4)


def test_rigid_only_mode(fish, tmp_path):
    stack, _, fields = fish
    out = tmp_path / "rigid.h5"
    motion_correct(stack, out, NormcorreParams(**{**PARAMS, "nonrigid": False, "output_dtype": "uint16"}),
                   progress=False)
    with h5py.File(out) as f:
        rigid, patch = f["rigid_shift_px"][()], f["patch_shift_px"][()]
        assert f["registered"].dtype == np.uint16
        assert f.attrs["crispness_after"] > f.attrs["crispness_before"]
    np.testing.assert_array_equal(patch, np.broadcast_to(rigid[:, None, None, :], patch.shape))
    err = rigid - fields.mean(axis=(1, 2))
    assert _rmse(err - err.mean(axis=0)) <= 0.3


# ---------------------------------------------------------------- determinism and streaming


def test_deterministic(fish, result, tmp_path):
    stack, _, _ = fish
    out, _ = result
    again = tmp_path / "again.h5"
    motion_correct(stack, again, NormcorreParams(**PARAMS), progress=False)
    with h5py.File(out) as f, h5py.File(again) as g:
        for name in f:
            np.testing.assert_array_equal(f[name][()], g[name][()], err_msg=name)


def test_streaming_chunk_size_does_not_matter(fish, result, tmp_path, monkeypatch):
    stack, _, fields = fish
    out, _ = result
    reads: list[int] = []
    real_read = nc._Stack.read

    def spy(self, idx):
        idx = list(idx)
        reads.append(len(idx))
        return real_read(self, idx)

    monkeypatch.setattr(nc._Stack, "read", spy)
    small = tmp_path / "small.h5"
    motion_correct(stack, small, NormcorreParams(**{**PARAMS, "batch_frames": 7, "template_frames": 100}),
                   progress=False)
    n = fields.shape[0]
    # never the whole movie: the template sample (100 frames) once, then chunks of <= 7 frames
    assert reads[0] == 100 and max(reads[1:]) == 7 and sum(reads[1:]) == n
    with h5py.File(out) as f, h5py.File(small) as g:
        np.testing.assert_allclose(f["template"][()], g["template"][()], rtol=1e-5, atol=1e-3)
        np.testing.assert_allclose(f["rigid_shift_px"][()], g["rigid_shift_px"][()], atol=1e-3)
        np.testing.assert_allclose(f["patch_shift_px"][()], g["patch_shift_px"][()], atol=1e-3)
        np.testing.assert_allclose(f["registered"][()], g["registered"][()], rtol=1e-4, atol=0.05)


# ---------------------------------------------------------------- bad input


def _assert_nothing_written(folder: Path, keep: set[str]):
    assert sorted(p.name for p in folder.iterdir() if p.name not in keep) == []


@pytest.mark.parametrize("kind", ["garbage", "truncated", "rgb", "empty"])
def test_bad_input_raises_and_writes_nothing(fish, tmp_path, kind):
    stack, _, _ = fish
    bad = tmp_path / f"{kind}.tif"
    if kind == "garbage":
        bad.write_bytes(b"this is not a tiff" * 100)
    elif kind == "truncated":
        data = stack.read_bytes()
        bad.write_bytes(data[: len(data) // 2])
    elif kind == "rgb":
        tifffile.imwrite(bad, np.zeros((3, 32, 32, 3), np.uint16), photometric="rgb")
    else:
        bad.write_bytes(b"")
    out = tmp_path / "out" / "reg.h5"
    with pytest.raises(InputDataError) as info:
        motion_correct(bad, out, NormcorreParams(**PARAMS), progress=False)
    assert str(bad) in str(info.value)
    assert not out.exists()
    if out.parent.exists():
        _assert_nothing_written(out.parent, set())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_matches_cpu(fish, result, tmp_path):
    stack, _, _ = fish
    out, _ = result
    gpu = tmp_path / "gpu.h5"
    motion_correct(stack, gpu, NormcorreParams(**{**PARAMS, "device": "cuda"}), progress=False)
    with h5py.File(out) as f, h5py.File(gpu) as g:
        assert g.attrs["device"].startswith("cuda")
        np.testing.assert_allclose(f["rigid_shift_px"][()], g["rigid_shift_px"][()], atol=0.02)
        np.testing.assert_allclose(f["patch_shift_px"][()], g["patch_shift_px"][()], atol=0.05)
