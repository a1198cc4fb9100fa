"""Benchmark: peak memory of reading + registering one plane of an interleaved ScanImage
acquisition (``pipeline.io.scanimage`` streaming de-interleave, then NoRMCorre) against
reading the acquisition whole with ``tifffile.imread`` (the peer), at two acquisition lengths.

For each number of volumes it writes one acquisition (``--size``² px, 5 planes, 2 saved
channels, no flyback, split into files of ``--pages-per-file`` pages, ScanImage metadata as in
``tests/scanimage_files.py``), then in fresh processes:

* ``ours``: :func:`read_acquisition` (headers only), :func:`write_plane_stack` of plane 2 of
  channel 2 (page by page) and :func:`pipeline.imaging.normcorre.motion_correct` on it;
* ``peer``: ``tifffile.imread`` of every file into memory, reshaped to (volumes, planes,
  channels, Ly, Lx), and plane 2 of channel 2 copied out (reading only, no registration).

Reports wall time and peak RSS (VmHWM) of each process. Reproduce from the repository root:

    PYTHONPATH=$PWD/src .venv/bin/python bench/scanimage_streaming.py [--workdir /tmp/si_bench] \\
        [--size 256] [--volumes 300 1200]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from pipeline.memory import peak_rss_mb

PLANES, CHANNELS, PLANE, CHANNEL, FRAME_RATE_HZ = 5, (1, 2), 2, 2, 30.0


def write_acquisition(folder: Path, size: int, volumes: int, pages_per_file: int) -> list[str]:
    """Random uint16 frames, interleaved channel-fastest then plane, streamed to disk."""
    import tifffile

    meta = "\n".join([
        "SI.VERSION_MAJOR = 2021", "SI.VERSION_MINOR = 1", "SI.hChannels.channelSave = [1;2]",
        "SI.hStackManager.enable = true", "SI.hFastZ.enable = true",
        f"SI.hStackManager.actualNumSlices = {PLANES}", "SI.hStackManager.framesPerSlice = 1",
        f"SI.hStackManager.numFramesPerVolume = {PLANES}", f"SI.hStackManager.numFramesPerVolumeWithFlyback = {PLANES}",
        f"SI.hRoiManager.scanFrameRate = {FRAME_RATE_HZ}",
    ])
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    base = rng.integers(0, 4000, (PLANES, size, size), dtype=np.uint16)  # a fixed anatomy per plane
    n_pages, files, writer = volumes * PLANES * len(CHANNELS), [], None
    for page in range(n_pages):
        if page % pages_per_file == 0:
            if writer is not None:
                writer.close()
            files.append(str(folder / f"bench_{len(files) + 1:05d}.tif"))
            writer = tifffile.TiffWriter(files[-1], bigtiff=True)
        frame = page // len(CHANNELS)
        shift = int(rng.integers(-3, 4))  # a little motion to register
        data = np.roll(base[frame % PLANES], shift, axis=1) + rng.integers(0, 200, (size, size), dtype=np.uint16)
        writer.write(data, software=meta, metadata=None,
                     description=f"frameNumbers = {frame + 1}\nframeTimestamps_sec = {frame / FRAME_RATE_HZ:.6f}\n"
                                 "epoch = [2026 1 1 0 0 0]")
    writer.close()
    return files


def worker(mode: str, files: list[str], out_dir: Path) -> dict:
    started = time.perf_counter()
    if mode == "ours":
        import torch

        from pipeline.imaging.config import NormcorreParams
        from pipeline.imaging.normcorre import motion_correct
        from pipeline.io.scanimage import read_acquisition, write_plane_stack

        torch.set_num_threads(1)
        layout, _, _ = read_acquisition(files, CHANNEL, PLANES)
        write_plane_stack(layout, PLANE, out_dir / "raw.tif")
        motion_correct(out_dir / "raw.tif", out_dir / "registered.h5", NormcorreParams(device="cpu"))
        volumes = layout.n_volumes
    else:
        import tifffile

        whole = np.concatenate([tifffile.imread(f) for f in files])
        volumes = whole.shape[0] // (PLANES * len(CHANNELS))
        plane = np.ascontiguousarray(whole.reshape(volumes, PLANES, len(CHANNELS), *whole.shape[1:])[:, PLANE, 1])
        assert plane.shape[0] == volumes
    return {"mode": mode, "volumes": volumes, "seconds": time.perf_counter() - started, "peak_rss_mb": peak_rss_mb()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/si_bench"))
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--volumes", type=int, nargs="+", default=[300, 1200])
    parser.add_argument("--pages-per-file", type=int, default=2000)
    parser.add_argument("--worker", choices=["ours", "peer"])
    parser.add_argument("--files", nargs="*")
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(worker(args.worker, args.files, args.workdir)))
        return
    rows = []
    for volumes in args.volumes:
        folder = args.workdir / f"v{volumes}"
        shutil.rmtree(folder, ignore_errors=True)
        files = write_acquisition(folder / "acquisition", args.size, volumes, args.pages_per_file)
        size_mb = sum(Path(f).stat().st_size for f in files) / 1e6
        for mode in ("ours", "peer"):
            out = subprocess.run([sys.executable, __file__, "--worker", mode, "--workdir", str(folder), "--files", *files],
                                 check=True, capture_output=True, text=True)
            rows.append({**json.loads(out.stdout.strip().splitlines()[-1]), "acquisition_mb": round(size_mb)})
            print(rows[-1], flush=True)
        shutil.rmtree(folder, ignore_errors=True)
    print("| volumes | acquisition MB | method | seconds | peak RSS MB |\n|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['volumes']} | {r['acquisition_mb']} | {r['mode']} | {r['seconds']:.1f} | {r['peak_rss_mb']:.0f} |")


if __name__ == "__main__":
    main()
