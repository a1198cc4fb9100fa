"""ScanImage acquisitions written as ScanImage lays them out, with tifffile: SI.* static
metadata in every page's Software tag (ScanImage 2016+ repeats its header there), a frame
header (frameNumbers, frameTimestamps_sec, epoch) in every page's ImageDescription, pages
interleaved channel-fastest, then slices, then flyback frames, then volumes; BigTIFF."""

from __future__ import annotations

import numpy as np
import tifffile

SLICES, FLYBACK, CHANNELS, VOLUMES, LY, LX = 3, 1, (1, 2), 7, 12, 10
FRAME_RATE_HZ = 30.0


def static_metadata(slices=SLICES, flyback=FLYBACK, channels=CHANNELS) -> str:
    """The SI.* text ScanImage 2020+ writes (here in the Software tag of every page)."""
    saved = f"[{';'.join(str(c) for c in channels)}]" if len(channels) > 1 else str(channels[0])
    return "\n".join([
        "SI.VERSION_MAJOR = 2021", "SI.VERSION_MINOR = 1",
        f"SI.hChannels.channelSave = {saved}",
        "SI.hStackManager.enable = true", "SI.hFastZ.enable = true",
        f"SI.hStackManager.actualNumSlices = {slices}", f"SI.hStackManager.numSlices = {slices}",
        "SI.hStackManager.framesPerSlice = 1",
        f"SI.hStackManager.numFramesPerVolume = {slices}",
        f"SI.hStackManager.numFramesPerVolumeWithFlyback = {slices + flyback}",
        f"SI.hRoiManager.scanFrameRate = {FRAME_RATE_HZ}",
    ])


def frame_header(number: int, t: float, epoch: str) -> str:
    return (f"frameNumbers = {number}\nacquisitionNumbers = 1\nframeNumberAcquisition = {number}\n"
            f"frameTimestamps_sec = {t:.6f}\nacqTriggerTimestamps_sec = \nnextFileMarkerTimestamps_sec = \n"
            f"endOfAcquisition = 0\nendOfAcquisitionMode = 0\ndcOverVoltage = 0\nepoch = {epoch}\n"
            "auxTrigger0 = []\nauxTrigger1 = []\nI2CData = {{1.5, [255]}}")


def truth_movie(volumes=VOLUMES, slices=SLICES, flyback=FLYBACK, channels=CHANNELS, seed=0):
    """(volumes, slices + flyback, channels, Ly, Lx) uint16, every frame distinct."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 60000, (volumes, slices + flyback, len(channels), LY, LX), dtype=np.uint16)


def write_acquisition(folder, movie, pages_per_file, *, stem="fish_00001", epoch="[2024 5 1 10 0 0]",
                      first_number=1, meta=None, drop_last_pages=0, bigtiff=True, frame_starts_s=None):
    """Interleave ``movie`` page by page into ``stem_0000k.tif`` files as ScanImage does;
    frame k starts at ``frame_starts_s[k]`` (default k / FRAME_RATE_HZ)."""
    meta = meta or static_metadata(movie.shape[1] - FLYBACK, FLYBACK, CHANNELS[: movie.shape[2]])
    volumes, frames_per_volume, n_channels = movie.shape[:3]
    pages = movie.reshape(-1, LY, LX)[: volumes * frames_per_volume * n_channels - drop_last_pages]
    paths = []
    base = stem.rsplit("_", 1)[0]
    for start in range(0, len(pages), pages_per_file):
        path = folder / f"{base}_{len(paths) + 1:05d}.tif"
        with tifffile.TiffWriter(path, bigtiff=bigtiff) as writer:
            for g in range(start, min(start + pages_per_file, len(pages))):
                frame = g // n_channels
                t = frame / FRAME_RATE_HZ if frame_starts_s is None else frame_starts_s[frame]
                writer.write(pages[g], software=meta, metadata=None,
                             description=frame_header(first_number + frame, t, epoch))
        paths.append(str(path))
    return paths
