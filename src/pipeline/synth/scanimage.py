"""A synthetic fish recorded the way a ScanImage rig delivers it (input type ``scanimage``).

Takes the rendered per-plane stacks and mid-frame times of :mod:`pipeline.synth.zebrafish`
(tail clock) and writes what the rig's two computers would hand over:

- ``<fish>_00001.tif, <fish>_00002.tif``: one ScanImage acquisition split in two BigTIFF
  files (the split falls inside a volume), pages interleaved channel-fastest then plane,
  two saved channels (``FUNCTIONAL_CHANNEL`` = the rendered movie; the other a static
  anatomy image: the plane's first frame), SI.* static metadata in every page's Software tag
  and a frame header (``frameNumbers``, ``frameTimestamps_sec``, ``epoch``) per page; the
  acquisition is stopped one page before the end, so the last volume is incomplete;
- frame timestamps on an imaging clock: zero at the acquisition trigger
  (``ACQUISITION_LEAD_S`` before the first frame), running ``IMAGING_CLOCK_DRIFT_PPM`` slow;
- ``frame_trigger.csv``: the frame clock (one pulse per frame start) logged on the
  behaviour computer (tail clock) with ``TRIGGER_JITTER_S`` jitter.

No flyback frames: the generator's planes fill the whole volume period, leaving no time for
one (flyback is covered by the ScanImage reader's tests).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import tifffile
from tqdm import tqdm

from pipeline.behavior.clock import read_frame_times
from pipeline.io.atomic import atomic_paths
from pipeline.seeding import rng_for

log = logging.getLogger(__name__)

SAVED_CHANNELS = (1, 2)
FUNCTIONAL_CHANNEL = 2
ACQUISITION_LEAD_S = 0.25  # acquisition trigger before the first frame starts (s)
IMAGING_CLOCK_DRIFT_PPM = -30.0  # imaging clock rate error relative to the tail clock (ppm)
TRIGGER_JITTER_S = 1e-4  # sd of the logged frame-trigger edges (s)
EPOCH = "[2026 1 1 12 0 0.000]"


def static_metadata(n_planes: int, frame_rate_hz: float) -> str:
    """SI.* static metadata (ScanImage 2021 key names) of a fast-z acquisition without flyback."""
    return "\n".join([
        "SI.VERSION_MAJOR = 2021", "SI.VERSION_MINOR = 1",
        f"SI.hChannels.channelSave = [{';'.join(str(c) for c in SAVED_CHANNELS)}]",
        "SI.hStackManager.enable = true", "SI.hFastZ.enable = true",
        f"SI.hStackManager.actualNumSlices = {n_planes}", f"SI.hStackManager.numSlices = {n_planes}",
        "SI.hStackManager.framesPerSlice = 1",
        f"SI.hStackManager.numFramesPerVolume = {n_planes}",
        f"SI.hStackManager.numFramesPerVolumeWithFlyback = {n_planes}",
        f"SI.hRoiManager.scanFrameRate = {frame_rate_hz!r}",
    ])


def write_scanimage_recording(plane_stacks: Sequence[str | Path], frame_times_path: str | Path,
                              acquisition_paths: Sequence[str | Path], trigger_path: str | Path, *,
                              volume_rate_hz: float, seed: int) -> None:
    """Interleave ``plane_stacks`` (one rendered TIFF per plane) into ``acquisition_paths``
    (ScanImage files, in order) and write the frame trigger (see the module docstring).
    Streams one volume at a time; outputs are written atomically."""
    n_planes = len(plane_stacks)
    mid_times = read_frame_times(frame_times_path, n_planes)  # (planes, volumes) s, tail clock
    n_volumes = mid_times.shape[1]
    frame_rate = volume_rate_hz * n_planes
    starts = (mid_times - 0.5 / frame_rate).T.ravel()  # acquisition order (volume, plane)
    t_trigger = starts[0] - ACQUISITION_LEAD_S
    header_times = (starts - t_trigger) * (1.0 + IMAGING_CLOCK_DRIFT_PPM * 1e-6)
    rng = rng_for(seed, "scanimage", "trigger")
    pulses = starts + TRIGGER_JITTER_S * rng.standard_normal(starts.size)

    n_channels = len(SAVED_CHANNELS)
    n_pages = n_volumes * n_planes * n_channels - 1  # stopped one page early: last volume incomplete
    split = (n_pages + 1) // len(acquisition_paths) | 1  # odd: the split falls inside a volume
    meta = static_metadata(n_planes, frame_rate)
    stacks = [tifffile.TiffFile(p) for p in plane_stacks]
    try:
        anatomy = [s.pages[0].asarray() for s in stacks]
        with atomic_paths(*acquisition_paths, trigger_path) as tmps:
            writers = [tifffile.TiffWriter(tmp, bigtiff=True) for tmp in tmps[:-1]]
            try:
                page = 0
                for volume in tqdm(range(n_volumes), desc="ScanImage pages", mininterval=5):
                    for plane in range(n_planes):
                        frame = stacks[plane].pages[volume].asarray()
                        number = volume * n_planes + plane
                        for channel in SAVED_CHANNELS:
                            if page == n_pages:
                                break
                            data = frame if channel == FUNCTIONAL_CHANNEL else anatomy[plane]
                            header = (f"frameNumbers = {number + 1}\nacquisitionNumbers = 1\n"
                                      f"frameNumberAcquisition = {number + 1}\n"
                                      f"frameTimestamps_sec = {header_times[number]:.6f}\n"
                                      f"epoch = {EPOCH}\nendOfAcquisition = {int(page == n_pages - 1)}")
                            writers[min(page // split, len(writers) - 1)].write(
                                data, software=meta, description=header, metadata=None)
                            page += 1
            finally:
                for writer in writers:
                    writer.close()
            pd.DataFrame({"t": pulses}).to_csv(tmps[-1], index=False, float_format="%.6f")
    finally:
        for stack in stacks:
            stack.close()
    log.info("ScanImage acquisition of %d volumes x %d planes x %d channels in %d files (last volume incomplete); "
             "%d frame-trigger pulses", n_volumes, n_planes, n_channels, len(acquisition_paths), pulses.size)
