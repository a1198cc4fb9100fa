"""Benchmark: NoRMCorre motion correction (ours, ``pipeline.imaging.normcorre``) vs suite2p's
registration on the same synthetic zebrafish movie, in the same run, each in a fresh process.

For every preset and frame size (default ``ideal`` at 256² and 512², 400 frames, one plane) it
generates a movie with :mod:`pipeline.synth.zebrafish`: ``ideal`` = drift of a few px, jumps, a
0.4 px sd non-rigid field; ``realistic`` = its realistic preset (bidirectional phase, bout
frames sheared by per-line motion, bout jumps of several px, z-drift, dense nuclei; frequent
bouts as in config/config.yaml). Then it runs in separate subprocesses:

* ``ours``: ``motion_correct`` end to end (TIFF read in chunks, template, rigid + piecewise
  rigid, HDF5 write), default :class:`NormcorreParams`;
* ``suite2p``: suite2p 1.1.0 ``registration.registration_wrapper`` (reference image from
  ``nimg_init`` frames, rigid + non-rigid block registration, default settings; with
  ``do_bidiphase`` on for the realistic preset, its integer bidirectional phase) on the movie
  read with ``tifffile.imread`` into an int16 array, registered into an in-memory array (this
  favours suite2p: no disk I/O during registration, the TIFF read is included in its time).

Reported per method: wall time and frames/s, peak RSS, and shift RMSE vs the ground truth
(after removing the constant offset of the template): frame level (our rigid shift; suite2p's
integer rigid shift, and the mean of its block shifts) against the frame-mean displacement,
and per patch/block against the mean displacement over that patch's bounds (offset removed
per patch). On the realistic preset the errors are over the frames whose true intra-frame
shear is <= 1 px (a sheared frame has no single shift per patch; both methods are scored on
the same frames), and our bidirectional phase error is reported. Finally the peak RSS of ours
on a long 512² movie (the 400 frames repeated, default 5,000 frames) and on a 1,000-frame one,
to show it is flat in movie length.

Reproduce (from the repository root; ~5 min on 2 cores, needs suite2p, see bench/README.md):

    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=4294967296 \\
        .venv/bin/python bench/motion_correction.py [--workdir /tmp/mc_bench] [--sizes 256 512] \\
        [--frames 400] [--long-frames 5000] [--repeats 2] [--presets ideal realistic]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from pipeline.memory import peak_rss_mb

GLIBC = "glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=4294967296"
META = dict(volume_rate_hz=1.1, n_planes=1, pixel_size_um=1.0, plane_spacing_um=7.0, tail_rate_hz=200.0)


LARGE_SHEAR_PX = 1.0  # realistic preset: frames with more true intra-frame shear are not scored


def fish_params(size: int, frames: int, preset: str = "ideal"):
    from pipeline.synth.config import ZebrafishSynthParams

    if preset == "realistic":
        return ZebrafishSynthParams.from_mapping(dict(
            preset="realistic", n_volumes=frames, frame_height_px=size, frame_width_px=size,
            neurons_per_plane=int(200 * (size / 128) ** 2), static_duration_s=3.0, moving_duration_s=5.0,
            n_drivers_per_side=8, driver_latent_mean=0.5, bout_rate_gain_hz=3.0,
        ))
    return ZebrafishSynthParams(
        n_volumes=frames, frame_height_px=size, frame_width_px=size,
        neurons_per_plane=int(60 * (size / 128) ** 2), neuron_f0_photons=20.0, background_photons=6.0,
        static_duration_s=3.0, moving_duration_s=5.0,
        rigid_drift_sd_px=3.0, rigid_drift_tau_s=20.0, rigid_jump_rate_hz=0.05, rigid_jump_px=2.0,
        nonrigid_sd_px=0.4, nonrigid_tau_s=10.0,
    )


def make_movie(workdir: Path, size: int, frames: int, preset: str = "ideal") -> Path:
    from pipeline.synth.zebrafish import generate_fish

    root = workdir / (f"fish_{size}_{frames}" if preset == "ideal" else f"fish_{preset}_{size}_{frames}")
    if not (root / "raw" / "plane0.tif").exists():
        generate_fish(root / "raw", root / "truth.h5", fish_params(size, frames, preset), seed=11, progress=False,
                      **META)
    return root


def make_long_movie(src: Path, dst: Path, frames: int) -> Path:
    """Repeat the frames of ``src`` cyclically into a ``frames``-page TIFF (written page by page)."""
    import tifffile

    if dst.exists():
        return dst
    tmp = dst.with_suffix(".tmp.tif")
    with tifffile.TiffFile(src) as tf, tifffile.TiffWriter(tmp, bigtiff=True) as w:
        n = len(tf.pages)
        for i in range(frames):
            w.write(tf.pages[i % n].asarray(), photometric="minisblack", contiguous=True)
    os.replace(tmp, dst)
    return dst


# --------------------------------------------------------------------------------------
# workers (fresh processes)
# --------------------------------------------------------------------------------------


def worker_ours(stack: Path, out: Path, shifts: Path) -> dict:
    import h5py

    from pipeline.imaging.config import NormcorreParams
    from pipeline.imaging.normcorre import motion_correct

    rss0 = peak_rss_mb()
    start, start_cpu = time.perf_counter(), time.process_time()
    m = motion_correct(stack, out, NormcorreParams(device="cpu"), progress=False)
    elapsed, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    with h5py.File(out) as f:
        np.savez(shifts, rigid=f["rigid_shift_px"][()], patch=f["patch_shift_px"][()],
                 bounds=f["patch_bounds_px"][()], bidi=f["bidi_phase_px"][()])
    out.unlink()
    return {"seconds": elapsed, "cpu_seconds": cpu, "peak_rss_mb": peak_rss_mb(), "rss_after_import_mb": rss0,
            "crispness_before": m["crispness_before"], "crispness_after": m["crispness_after"]}


def _import_suite2p():
    import torch

    from pipeline.imaging.extraction import import_suite2p  # defines the missing torchvision ops first

    suite2p = import_suite2p()
    from suite2p import registration

    return suite2p, registration, torch


def worker_suite2p(stack: Path, shifts: Path, preset: str = "ideal") -> dict:
    import tifffile

    suite2p, registration, torch = _import_suite2p()
    from suite2p.registration import nonrigid

    rss0 = peak_rss_mb()
    settings = suite2p.default_settings()["registration"]
    settings["do_bidiphase"] = preset == "realistic"
    start, start_cpu = time.perf_counter(), time.process_time()
    raw = tifffile.imread(stack).astype(np.int16)  # suite2p's binaries are int16
    # f_raw=None: registers in place (suite2p tests `not f_raw`, meant for its BinaryFile)
    out = registration.registration_wrapper(raw, settings=settings, device=torch.device("cpu"))
    elapsed, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    n, ly, lx = raw.shape
    yblock, xblock, nblocks = nonrigid.make_blocks(ly, lx, settings["block_size"])[:3]
    bounds = np.array([[y[0], y[1], x[0], x[1]] for y, x in zip(yblock, xblock)]).reshape(*nblocks, 4)
    rigid = np.stack([out["yoff"], out["xoff"]], axis=1).astype(float)  # integer px
    # block shift = rigid + residual block shift; suite2p registers with frame(y + shift),
    # i.e. its offsets are the content displacement, the sign convention of our truth
    patch = rigid[:, None, None, :] + np.stack([out["yoff1"], out["xoff1"]], axis=-1).reshape(n, *nblocks, 2)
    # suite2p's integer bidiphase is minus our phase (its shift moves odd rows by bidiphase to correct)
    np.savez(shifts, rigid=rigid, patch=patch, bounds=bounds, bidi=np.full(n, -float(out.get("bidiphase", 0))))
    return {"seconds": elapsed, "cpu_seconds": cpu, "peak_rss_mb": peak_rss_mb(), "rss_after_import_mb": rss0}


# --------------------------------------------------------------------------------------
# driver
# --------------------------------------------------------------------------------------


def run_worker(args: list[str]) -> dict:
    env = {**os.environ, "GLIBC_TUNABLES": os.environ.get("GLIBC_TUNABLES", GLIBC)}
    proc = subprocess.run([sys.executable, __file__, "--worker", *args], env=env, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if proc.returncode != 0:
        raise RuntimeError(f"worker {args[0]} failed:\n{proc.stderr[-4000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def truth_fields(truth: Path, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Displacement fields (n, Ly, Lx, 2), scored frames (n,) (true shear <= LARGE_SHEAR_PX)
    and the true bidirectional phase (n,) px."""
    import h5py

    from pipeline.synth.zebrafish import displacement_field

    with h5py.File(truth) as f:
        shear, bidi = f["motion/intra_frame_shear_px"][0], f["motion/bidi_phase_px"][0]
    fields = np.stack([displacement_field(truth, 0, v) for v in range(n)]).astype(np.float32)
    return fields, shear <= LARGE_SHEAR_PX, bidi


def errors(shifts: Path, fields: np.ndarray, scored: np.ndarray, bidi_true: np.ndarray) -> dict:
    s = np.load(shifts)
    rigid, patch, bounds = s["rigid"][scored], s["patch"][scored], s["bounds"]
    fields = fields[scored]
    frame_true = fields.mean(axis=(1, 2))

    def rmse(err, axis):
        err = err - err.mean(axis=axis, keepdims=True)
        return float(np.sqrt(np.mean(np.sum(err**2, axis=-1))))

    true_patch = np.zeros_like(patch)
    for i in range(bounds.shape[0]):
        for j in range(bounds.shape[1]):
            y0, y1, x0, x1 = bounds[i, j]
            true_patch[:, i, j] = fields[:, y0:y1, x0:x1].mean(axis=(1, 2))
    return {
        "rigid_rmse_px": rmse(rigid - frame_true, 0),
        "patch_mean_rmse_px": rmse(patch.mean(axis=(1, 2)) - frame_true, 0),
        "patch_rmse_px": rmse(patch - true_patch, 0),
        "n_patches": list(bounds.shape[:2]),
        "scored_frames": int(scored.sum()),
        "bidi_error_px": float(np.abs(s["bidi"] - bidi_true).mean()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", type=Path, default=Path("/tmp/mc_bench"))
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    ap.add_argument("--frames", type=int, default=400)
    ap.add_argument("--long-frames", type=int, default=5000, help="0 to skip the long-movie RSS run")
    ap.add_argument("--repeats", type=int, default=3, help="runs per method and size, alternating; medians reported")
    ap.add_argument("--presets", nargs="+", default=["ideal"], choices=["ideal", "realistic"],
                    help="synthetic presets to measure on")
    ap.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.worker:
        kind, *rest = a.worker
        res = worker_ours(*map(Path, rest)) if kind == "ours" else worker_suite2p(Path(rest[0]), Path(rest[1]), *rest[2:])
        print(json.dumps(res))
        return

    a.workdir.mkdir(parents=True, exist_ok=True)
    import torch

    rows = []
    for preset in a.presets:
        for size in a.sizes:
            root = make_movie(a.workdir, size, a.frames, preset)
            stack = root / "raw" / "plane0.tif"
            fields, scored, bidi_true = truth_fields(root / "truth.h5", a.frames)
            runs: dict[str, list[dict]] = {"ours": [], "suite2p": []}
            for _ in range(a.repeats):
                for method in ("ours", "suite2p"):
                    shifts = a.workdir / f"shifts_{method}_{preset}_{size}.npz"
                    args = [method, str(stack), str(a.workdir / f"ours_{size}.h5"), str(shifts)] if method == "ours" \
                        else [method, str(stack), str(shifts), preset]
                    r = run_worker(args)
                    r.update(errors(shifts, fields, scored, bidi_true), method=method, size=size, preset=preset,
                             frames=a.frames, frames_per_s=a.frames / r["seconds"], load_average=os.getloadavg())
                    print(json.dumps(r), flush=True)
                    runs[method].append(r)
            for method, method_runs in runs.items():  # the median run by wall time, with the median CPU time
                median_run = sorted(method_runs, key=lambda r: r["seconds"])[(len(method_runs) - 1) // 2]
                rows.append({**median_run, "seconds": float(np.median([r["seconds"] for r in method_runs])),
                             "cpu_seconds": float(np.median([r["cpu_seconds"] for r in method_runs])),
                             "frames_per_s": a.frames / float(np.median([r["seconds"] for r in method_runs]))})

    long_rows = []
    if a.long_frames and 512 in a.sizes:
        src = a.workdir / f"fish_512_{a.frames}" / "raw" / "plane0.tif"
        for n in sorted({min(1000, a.long_frames), a.long_frames}):
            stack = make_long_movie(src, a.workdir / f"long_512_{n}.tif", n)
            r = run_worker(["ours", str(stack), str(a.workdir / "long.h5"), str(a.workdir / "long.npz")])
            r.update(frames=n, frames_per_s=n / r["seconds"])
            long_rows.append(r)
            print(json.dumps(r), flush=True)

    print()
    print(f"machine: {os.cpu_count()} CPUs, torch {torch.__version__} ({torch.get_num_threads()} threads), CPU only; "
          f"load average at the end {os.getloadavg()}")
    print("| preset | size | method | frames (scored) | wall s | CPU s | frames/s | peak RSS MB | rigid RMSE px | "
          "mean-of-patches RMSE px | patch RMSE px | patches | bidi error px |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['preset']} | {r['size']}² | {r['method']} | {r['frames']} ({r['scored_frames']}) | "
              f"{r['seconds']:.1f} | {r['cpu_seconds']:.1f} | {r['frames_per_s']:.1f} | {r['peak_rss_mb']:.0f} | {r['rigid_rmse_px']:.3f} | "
              f"{r['patch_mean_rmse_px']:.3f} | {r['patch_rmse_px']:.3f} | {r['n_patches'][0]}x{r['n_patches'][1]} | "
              f"{r['bidi_error_px']:.3f} |")
    for preset in a.presets:
        for size in a.sizes:
            o = next(r for r in rows if (r["preset"], r["size"], r["method"]) == (preset, size, "ours"))
            s = next(r for r in rows if (r["preset"], r["size"], r["method"]) == (preset, size, "suite2p"))
            print(f"{preset} {size}²: throughput ours / suite2p = {o['frames_per_s'] / s['frames_per_s']:.2f}x wall, "
                  f"{s['cpu_seconds'] / o['cpu_seconds']:.2f}x CPU time (medians of {a.repeats})")
    for r in long_rows:
        print(f"ours, 512² x {r['frames']} frames: {r['seconds']:.1f} s, {r['frames_per_s']:.1f} frames/s, "
              f"peak RSS {r['peak_rss_mb']:.0f} MB (after imports {r['rss_after_import_mb']:.0f} MB)")
    print("\nreproduce: GLIBC_TUNABLES=" + GLIBC + " .venv/bin/python bench/motion_correction.py "
          f"--workdir {a.workdir} --sizes {' '.join(map(str, a.sizes))} --frames {a.frames} "
          f"--long-frames {a.long_frames} --repeats {a.repeats} --presets {' '.join(a.presets)}")


if __name__ == "__main__":
    main()
