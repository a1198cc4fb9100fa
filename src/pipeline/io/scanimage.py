"""ScanImage acquisitions (input type ``scanimage``), read with tifffile's ScanImage support.

ScanImage (Vidrio) writes one acquisition as a BigTIFF series, often split into
``<stem>_00001.tif, <stem>_00002.tif, ...``. Pages are interleaved: saved channels vary
fastest, then slices (planes) of a volume, then the volume's flyback frames, then volumes:

    page = volume * C * (S + B) + slice * C + channel_position

with C saved channels (``SI.hChannels.channelSave``), S slices and B flyback frames per
volume. Read from ScanImage's metadata, never guessed from page counts:

- static metadata (``SI.*`` keys): :func:`tifffile.read_scanimage_metadata` (the
  BigTIFF header ScanImage 2016+ writes) or, where a file has no such header, the ``SI.*`` text
  of the first page's Software tag (ScanImage repeats it there), both parsed by
  :func:`tifffile.matlabstr2py`;
- volumetric layout: ``SI.hStackManager.enable`` or ``SI.hFastZ.enable``; slices =
  ``SI.hStackManager.actualNumSlices`` (else ``numSlices``); flyback frames =
  ``numFramesPerVolumeWithFlyback - numFramesPerVolume`` (else
  ``SI.hFastZ.numDiscardFlybackFrames``); ``framesPerSlice`` must be 1;
- per page (ImageDescription, parsed by :func:`tifffile.matlabstr2py`):
  ``frameNumbers`` (1-based, shared by the channels of one frame; must continue from one
  file to the next), ``frameTimestamps_sec`` (s since the acquisition trigger, start of
  the frame) and ``epoch`` (acquisition start, identical in every file of one acquisition).

Frame times returned here are frame *starts* (``frameTimestamps_sec``), per plane and for
every acquired frame (flyback and incomplete-volume frames included: the frame clock
pulses for those too). An incomplete last volume (the acquisition was stopped
mid-volume) is dropped and reported (``n_dropped_pages``). Pixels are read page by page:
:func:`iter_plane_frames` holds one frame in memory, whatever the acquisition's length.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np
import tifffile
from tqdm import tqdm

from pipeline.io.atomic import atomic_paths
from pipeline.io.errors import InputDataError

log = logging.getLogger(__name__)

#: Static keys that define the page layout; they must agree between the files of one acquisition.
LAYOUT_KEYS = (
    "SI.hChannels.channelSave",
    "SI.hStackManager.enable",
    "SI.hFastZ.enable",
    "SI.hStackManager.actualNumSlices",
    "SI.hStackManager.numSlices",
    "SI.hStackManager.framesPerSlice",
    "SI.hStackManager.numFramesPerVolume",
    "SI.hStackManager.numFramesPerVolumeWithFlyback",
    "SI.hFastZ.numDiscardFlybackFrames",
    "SI.hRoiManager.scanFrameRate",
)
SLICE_KEYS = LAYOUT_KEYS[3:5]
#: Per-page (ImageDescription) keys read
FRAME_HEADER_KEYS = ("frameNumbers", "frameTimestamps_sec", "epoch")


@dataclass(frozen=True)
class ScanImageLayout:
    """Page layout of one acquisition (its files in order) and the functional channel."""

    files: tuple[str, ...]
    pages_per_file: tuple[int, ...]
    frame_shape_px: tuple[int, int]  # (Ly, Lx)
    dtype: str
    saved_channels: tuple[int, ...]  # ScanImage channel ids (1-based), in page order
    channel: int  # the functional channel (one of saved_channels)
    n_slices: int  # planes per volume
    n_flyback: int  # flyback frames per volume (saved, discarded here)
    n_volumes: int  # complete volumes
    n_dropped_pages: int  # pages of the incomplete last volume
    frame_period_s: float  # 1 / SI.hRoiManager.scanFrameRate
    scanimage_version: str

    @property
    def pages_per_volume(self) -> int:
        return len(self.saved_channels) * (self.n_slices + self.n_flyback)

    def page_index(self, volume: np.ndarray | int, plane: int) -> np.ndarray | int:
        """Global page index (over all files) of ``plane`` of ``volume`` in the functional channel."""
        channel_position = self.saved_channels.index(self.channel)
        return volume * self.pages_per_volume + plane * len(self.saved_channels) + channel_position

    def describe(self) -> dict[str, Any]:
        """JSON-ready provenance (inventory, stage logs)."""
        return {**asdict(self), "pages_per_volume": self.pages_per_volume}


def _flat_ints(value: Any) -> list[int]:
    if isinstance(value, (list, tuple)):
        return [i for item in value for i in _flat_ints(item)]
    return [int(value)]


def _open(path: str) -> tifffile.TiffFile:
    """Open a TIFF with plain page access. tifffile's own ScanImage mode is turned off
    (``is_scanimage=False``) because for classic (non-Big) TIFFs it replaces pages by
    virtual frames without their ImageDescription, which holds the frame headers read here."""
    if not Path(path).is_file():
        raise InputDataError(path, "ScanImage file not found")
    try:
        return tifffile.TiffFile(path, is_scanimage=False)
    except (tifffile.TiffFileError, ValueError, OSError) as err:
        raise InputDataError(path, f"not a readable TIFF ({err})") from None


def _static_metadata(tif: tifffile.TiffFile, path: str) -> dict[str, Any]:
    """The ``SI.*`` static metadata of an open file, or an error saying what the file is."""
    if tif.pages.first.is_scanimage:
        try:
            frame_data = tifffile.read_scanimage_metadata(tif.filehandle)[0]  # BigTIFF header of SI 2016+
        except ValueError:
            frame_data = None
        if frame_data:
            return frame_data
        software = tif.pages.first.software
        if software.startswith("SI."):
            return tifffile.matlabstr2py(software)
    if tif.is_imagej:
        n_images = (tif.imagej_metadata or {}).get("images", len(tif.pages))
        raise InputDataError(
            path, f"an ImageJ/Fiji file ({n_images} images in {len(tif.pages)} IFD(s)), not a ScanImage file: "
            "re-saving in Fiji drops the ScanImage metadata (channels, slices, flyback, frame times); "
            "give the files ScanImage wrote, or use input_type tiff with one stack per plane",
        )
    raise InputDataError(path, "not a ScanImage TIFF (no SI.* metadata in the header or Software tag)")


def _layout_from_metadata(meta: dict[str, Any], path: str) -> tuple[tuple[int, ...], int, int, float]:
    """(saved channels, slices, flyback frames, frame period s) from static metadata."""
    if "SI.hChannels.channelSave" not in meta:
        raise InputDataError(path, "ScanImage metadata lack SI.hChannels.channelSave (saved channels)")
    channels = tuple(_flat_ints(meta["SI.hChannels.channelSave"]))
    volumetric = bool(meta.get("SI.hStackManager.enable", False)) or bool(meta.get("SI.hFastZ.enable", False))
    if not volumetric:
        slices, flyback = 1, 0
    else:
        slices = meta.get("SI.hStackManager.actualNumSlices", meta.get("SI.hStackManager.numSlices"))
        if slices is None:
            raise InputDataError(path, "volumetric ScanImage file without SI.hStackManager.(actual)NumSlices")
        slices = int(slices)
        frames_per_slice = int(meta.get("SI.hStackManager.framesPerSlice", 1))
        if frames_per_slice != 1:
            raise InputDataError(
                path, f"SI.hStackManager.framesPerSlice = {frames_per_slice}: several frames per slice "
                "(slow stacks) are not a volumetric time series this pipeline decodes",
            )
        with_flyback = meta.get("SI.hStackManager.numFramesPerVolumeWithFlyback")
        without = meta.get("SI.hStackManager.numFramesPerVolume")
        if with_flyback is not None and without is not None:
            flyback = int(with_flyback) - int(without)
            if int(without) != slices:
                raise InputDataError(path, f"numFramesPerVolume = {without} but {slices} slices")
        else:
            flyback = int(meta.get("SI.hFastZ.numDiscardFlybackFrames", 0))
    if flyback < 0:
        raise InputDataError(path, f"negative flyback frame count {flyback}")
    rate = meta.get("SI.hRoiManager.scanFrameRate")
    if rate is None or not float(rate) > 0:
        raise InputDataError(path, "ScanImage metadata lack a positive SI.hRoiManager.scanFrameRate")
    return channels, slices, flyback, 1.0 / float(rate)


def _page_records(tif: tifffile.TiffFile, path: str) -> tuple[np.ndarray, np.ndarray, str]:
    """(frameNumbers, frameTimestamps_sec, epoch of the first page) of every page."""
    numbers, stamps, epoch = [], [], None
    for index, page in enumerate(tif.pages):
        try:  # parse only the lines used: other values (I2C packets, aux triggers) vary between versions
            desc = tifffile.matlabstr2py("\n".join(
                line for line in page.description.splitlines() if line.split("=")[0].strip() in FRAME_HEADER_KEYS))
            numbers.append(int(desc["frameNumbers"]))
            stamps.append(float(desc["frameTimestamps_sec"]))
        except (KeyError, TypeError, ValueError) as err:
            raise InputDataError(path, f"page {index}: no ScanImage frame header "
                                       f"(frameNumbers, frameTimestamps_sec): {err}") from None
        if epoch is None:
            epoch = str(desc.get("epoch", ""))
    return np.asarray(numbers, np.int64), np.asarray(stamps, float), epoch or ""


def read_acquisition(files: Sequence[str], channel: int | None,
                     n_planes: int) -> tuple[ScanImageLayout, np.ndarray, np.ndarray]:
    """Read and check the metadata of one acquisition (no pixel data).

    Returns (layout, frame start times of the complete volumes (n_planes, n_volumes), start
    times of every frame in the files in acquisition order (flyback frames and those of an
    incomplete last volume included: the frame clock pulsed for each)), in s since the
    acquisition trigger on the imaging computer's clock. Errors (InputDataError naming the file): not a ScanImage
    file; layout keys that differ between files (``inconsistent slice counts`` when the
    slice count differs); files of different acquisitions (``epoch`` differs, or frame
    numbers do not continue from one file to the next); the channel was not saved; slices
    differ from the table's ``n_planes``; frame shapes or dtypes differ; not one complete volume.
    """
    files = [str(f) for f in files]
    reference: dict[str, Any] | None = None
    pages_per_file, numbers, stamps = [], [], []
    shape = dtype = epoch = version = None
    for path in files:
        with _open(path) as tif:
            meta = _static_metadata(tif, path)
            layout_meta = {key: meta.get(key) for key in LAYOUT_KEYS}
            if reference is None:
                reference, first_path = layout_meta, path
                version = f"{meta.get('SI.VERSION_MAJOR', '?')}.{meta.get('SI.VERSION_MINOR', '?')}"
            elif layout_meta != reference:
                differing = [k for k in LAYOUT_KEYS if layout_meta[k] != reference[k]]
                what = "inconsistent slice counts" if set(differing) & set(SLICE_KEYS) else "different acquisition settings"
                raise InputDataError(path, f"{what} between files of one acquisition: "
                                           + ", ".join(f"{k} = {layout_meta[k]} here, {reference[k]} in {first_path}"
                                                       for k in differing))
            page = tif.pages.first
            if shape is not None and (tuple(page.shape) != shape or str(page.dtype) != dtype):
                raise InputDataError(path, f"frames of {page.shape} {page.dtype}, {files[0]} has {shape} {dtype}")
            if len(page.shape) != 2:
                raise InputDataError(path, f"pages must be 2-D frames, found shape {page.shape}")
            shape, dtype = tuple(int(s) for s in page.shape), str(page.dtype)
            file_numbers, file_stamps, file_epoch = _page_records(tif, path)
        if epoch is None:
            epoch = file_epoch
        elif file_epoch != epoch:
            raise InputDataError(path, f"files of different acquisitions: acquisition start (epoch) {file_epoch} "
                                       f"here, {epoch} in {files[0]}")
        pages_per_file.append(len(file_numbers))
        numbers.append(file_numbers)
        stamps.append(file_stamps)

    channels, slices, flyback, frame_period = _layout_from_metadata(reference, files[0])
    if channel is None:
        if len(channels) > 1:
            raise InputDataError(files[0], f"saves channels {list(channels)}: set the fish table's 'channel' "
                                           "column to the functional one")
        channel = channels[0]
    if channel not in channels:
        raise InputDataError(files[0], f"channel {channel} was not saved (saved channels: {list(channels)})")
    if slices != n_planes:
        raise InputDataError(files[0], f"{slices} slices per volume but the table declares n_planes={n_planes}")

    # one frame number per saved frame, continuing across files
    n_channels = len(channels)
    all_numbers = np.concatenate(numbers)
    expected = np.repeat(np.arange(all_numbers.size // n_channels + 1), n_channels)[: all_numbers.size] + all_numbers[0]
    broken = np.flatnonzero(all_numbers != expected)
    if broken.size:
        file_index = int(np.searchsorted(np.cumsum(pages_per_file), broken[0], side="right"))
        raise InputDataError(
            files[file_index], f"frame numbers do not continue the acquisition (page {broken[0]} of the series has "
            f"frame {all_numbers[broken[0]]}, expected {expected[broken[0]]}): files of different acquisitions "
            "mixed, or a file missing",
        )

    pages_per_volume = n_channels * (slices + flyback)
    total = int(all_numbers.size)
    n_volumes, dropped = divmod(total, pages_per_volume)
    if n_volumes == 0:
        raise InputDataError(files[0], f"{total} pages: not one complete volume of {pages_per_volume} pages")
    layout = ScanImageLayout(
        files=tuple(files), pages_per_file=tuple(pages_per_file), frame_shape_px=shape, dtype=dtype,
        saved_channels=channels, channel=int(channel), n_slices=slices, n_flyback=flyback,
        n_volumes=n_volumes, n_dropped_pages=dropped, frame_period_s=frame_period,
        scanimage_version=version,
    )
    if dropped:
        log.warning("%s: last volume incomplete (%d of %d pages): dropped; %d complete volumes kept",
                    files[-1], dropped, pages_per_volume, n_volumes)
    frame_starts = np.concatenate(stamps)[::n_channels]  # every frame in the files, the incomplete volume's too
    if np.any(np.diff(frame_starts) <= 0):
        raise InputDataError(files[0], "frameTimestamps_sec do not increase from frame to frame")
    plane_starts = frame_starts[: n_volumes * (slices + flyback)].reshape(n_volumes, slices + flyback)[:, :slices].T
    return layout, plane_starts, frame_starts


def iter_plane_frames(layout: ScanImageLayout, plane: int) -> Iterator[np.ndarray]:
    """Frames (Ly, Lx) of ``plane`` in the functional channel, volume by volume, read page
    by page across the files (one frame in memory; complete volumes only)."""
    starts = np.concatenate([[0], np.cumsum(layout.pages_per_file)])
    pages = layout.page_index(np.arange(layout.n_volumes), plane)
    file_of_page = np.searchsorted(starts, pages, side="right") - 1
    for file_index, path in enumerate(layout.files):
        local = pages[file_of_page == file_index] - starts[file_index]
        if local.size == 0:
            continue
        with _open(path) as tif:
            for i in local:
                frame = tif.pages[int(i)].asarray()
                if frame.shape != layout.frame_shape_px:
                    raise InputDataError(path, f"page {int(i)} has shape {frame.shape}, expected {layout.frame_shape_px}")
                yield frame


def write_plane_stack(layout: ScanImageLayout, plane: int, out_path: str | Path) -> None:
    """Write one plane of the functional channel as a multipage BigTIFF (one page per
    volume, the ``tiff`` input layout that motion correction reads), streamed, atomically."""
    with atomic_paths(out_path) as (tmp,):
        with tifffile.TiffWriter(tmp, bigtiff=True) as writer:
            frames = iter_plane_frames(layout, plane)
            for frame in tqdm(frames, total=layout.n_volumes, desc=f"plane {plane}", mininterval=5):
                writer.write(frame, contiguous=True, software=False, metadata=None)
    log.info("plane %d of channel %d: %d frames of %s written to %s (%d pages of an incomplete last volume dropped)",
             plane, layout.channel, layout.n_volumes, layout.frame_shape_px, out_path, layout.n_dropped_pages)
