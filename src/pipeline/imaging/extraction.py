"""Suite2P cell detection, trace extraction, deconvolution and classification of one
registered imaging plane, and a reader of Suite2P plane folders.

Two ways into the rest of the pipeline, both ending in a Suite2P *plane folder*
(``F.npy``, ``Fneu.npy``, ``spks.npy``, ``stat.npy``, ``iscell.npy``, ``ops.npy``):

* :func:`extract_plane` runs suite2p 1.1 on a motion-corrected single-plane movie (HDF5
  dataset or multipage TIFF, frames x Ly x Lx). Suite2P's own registration is off (the
  movie is already registered); detection (``sparsery`` by default), extraction of the ROI
  and neuropil traces, OASIS deconvolution and the built-in ROI classifier run on the CPU
  unless ``ExtractionParams.device`` says otherwise.
* :func:`read_suite2p_plane` reads such a folder, whether written by :func:`extract_plane`
  or by a lab's own Suite2P run (0.x flat ``ops`` or 1.x nested settings), validates it
  and returns a :class:`Suite2pPlane`.

Every problem with an input file raises :class:`~pipeline.io.errors.InputDataError`
naming the file; a plane where Suite2P finds no cells is such a problem. Outputs are
written atomically (a failed run leaves no plane folder behind).

Units: ``F``/``Fneu`` are in the movie's intensity units times ``ops["movie_scale"]``
(the factor used to fit the movie into Suite2P's int16 binary; 1.0 whenever the movie
already fits, e.g. raw ADU up to 32766), *including* any detector offset; frames are at
the plane's frame rate ``ops["fs"]`` (Hz); ``stat[i]["med"]`` and ``centroid_px`` are
(y, x) pixel indices of the registered frame.

Performance note: suite2p and torch allocate and free many large buffers; on glibc,
starting the Python process with ::

    GLIBC_TUNABLES=glibc.malloc.mmap_threshold=4294967296:glibc.malloc.trim_threshold=4294967296

avoids returning memory to the OS after every batch and made Suite2P processing about
2x faster here. It must be in the environment *before* the process starts (set it in the
Snakemake rule's shell command or the job's environment; setting ``os.environ`` from
Python is too late).
"""

from __future__ import annotations

import copy
import logging
import math
import os
import tempfile
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from pipeline.imaging.config import ExtractionParams
from pipeline.io.atomic import atomic_paths
from pipeline.io.errors import InputDataError
from pipeline.torch_compat import register_missing_torchvision_ops

log = logging.getLogger(__name__)

#: Files that make up a Suite2P plane folder (the ones this pipeline reads and writes).
PLANE_FILES = ("F.npy", "Fneu.npy", "spks.npy", "stat.npy", "iscell.npy", "ops.npy")
#: Fewest frames accepted for extraction (Suite2P itself refuses < 10 and warns < 200).
MIN_FRAMES = 50
#: Largest value written to Suite2P's int16 binary (suite2p clips at 2**15 - 2).
_INT16_MAX = 32766.0
_HDF5_SUFFIXES = (".h5", ".hdf5", ".hdf")
_TIFF_SUFFIXES = (".tif", ".tiff")


# --------------------------------------------------------------------------- suite2p import


def import_suite2p():
    """Import and return the ``suite2p`` package (after
    :func:`pipeline.torch_compat.register_missing_torchvision_ops`)."""
    register_missing_torchvision_ops()
    import suite2p

    return suite2p


# --------------------------------------------------------------------------- parameters


# --------------------------------------------------------------------------- movie input


class _Movie:
    """Read-only, batch-wise access to a (frames, Ly, Lx) movie in HDF5 or multipage TIFF."""

    def __init__(self, path: Path, dataset: str):
        self.path = path
        self._stack = None
        suffix = path.suffix.lower()
        if not path.is_file():
            raise InputDataError(path, "movie file not found")
        try:
            if suffix in _HDF5_SUFFIXES:
                self._open_hdf5(dataset)
            elif suffix in _TIFF_SUFFIXES:
                self._open_tiff()
            else:
                raise InputDataError(
                    path, f"unsupported movie format {path.suffix!r} (expected one of "
                          f"{', '.join(_HDF5_SUFFIXES + _TIFF_SUFFIXES)})")
        except InputDataError:
            self.close()
            raise
        except Exception as e:  # unreadable / corrupt container
            self.close()
            raise InputDataError(path, f"cannot read movie: {type(e).__name__}: {e}") from e
        n, ly, lx = self.shape
        if n < MIN_FRAMES:
            self.close()
            raise InputDataError(path, f"movie has {n} frames; Suite2P extraction needs at least {MIN_FRAMES}")
        if ly < 8 or lx < 8:
            self.close()
            raise InputDataError(path, f"frames of {ly}x{lx} px are too small for cell detection")
        if not (np.issubdtype(self.dtype, np.integer) or np.issubdtype(self.dtype, np.floating)):
            self.close()
            raise InputDataError(path, f"movie dtype {self.dtype} is not numeric")

    def _open_hdf5(self, dataset: str) -> None:
        import h5py

        self._h5 = h5py.File(self.path, "r")
        if dataset not in self._h5:
            raise InputDataError(self.path, f"no dataset {dataset!r} (has: {', '.join(self._h5.keys()) or 'nothing'})")
        ds = self._h5[dataset]
        if not isinstance(ds, h5py.Dataset) or ds.ndim != 3:
            raise InputDataError(self.path, f"dataset {dataset!r} must be 3-D (frames, Ly, Lx), got "
                                            f"shape {getattr(ds, 'shape', None)}")
        self._ds = ds
        # registration quality written by pipeline.imaging.normcorre, when present
        self.bad_frames = self._h5["bad_frame"][()].astype(bool) if "bad_frame" in self._h5 else None
        self.valid_region = self._h5["valid_region"][()].astype(bool) if "valid_region" in self._h5 else None
        self.rigid_shift = self._h5["rigid_shift_px"][()] if "rigid_shift_px" in self._h5 else None
        self.shape = tuple(int(s) for s in ds.shape)
        self.dtype = ds.dtype
        self._read = lambda a, b: ds[a:b]

    bad_frames: np.ndarray | None = None  # (frames,) bool, from the registered file
    valid_region: np.ndarray | None = None  # (Ly, Lx) bool, from the registered file
    rigid_shift: np.ndarray | None = None  # (frames, 2) (dy, dx) px registration applied -shift, from the registered file

    def _open_tiff(self) -> None:
        import tifffile

        self._tif = tifffile.TiffFile(self.path)
        series = self._tif.series[0]
        shape = tuple(int(s) for s in series.shape)
        if len(shape) != 3:
            raise InputDataError(self.path, f"TIFF must hold a (frames, Ly, Lx) stack, got shape {shape}")
        self.shape, self.dtype = shape, np.dtype(series.dtype)
        pages = series.pages
        if len(pages) == shape[0] and all(p is not None for p in (pages[0], pages[-1])) \
                and tuple(pages[0].shape) == shape[1:]:
            # one page per frame (ScanImage, the synthetic generator): read pages lazily
            self._read = lambda a, b: np.stack([pages[i].asarray() for i in range(a, b)])
        else:
            # other layouts (e.g. ImageJ hyperstacks): tifffile reads the series at once
            self._stack = series.asarray()
            self._read = lambda a, b: self._stack[a:b]

    def batches(self, batch: int) -> Iterator[tuple[int, np.ndarray]]:
        n = self.shape[0]
        for a in range(0, n, batch):
            b = min(a + batch, n)
            try:
                block = np.asarray(self._read(a, b))
            except Exception as e:
                raise InputDataError(self.path, f"cannot read frames {a}-{b - 1}: {type(e).__name__}: {e}") from e
            if block.shape != (b - a, *self.shape[1:]):
                raise InputDataError(self.path, f"frames {a}-{b - 1} have shape {block.shape[1:]}, "
                                                f"expected {self.shape[1:]}")
            yield a, block

    def close(self) -> None:
        for name in ("_h5", "_tif"):
            handle = getattr(self, name, None)
            if handle is not None:
                handle.close()
                setattr(self, name, None)
        self._stack = None

    def __enter__(self) -> "_Movie":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _movie_scale(movie: _Movie, batch: int) -> tuple[float, np.ndarray, np.ndarray]:
    """First pass over the movie: check values are finite; return the factor ``scale``
    that maps it into Suite2P's int16 binary (binary = round(movie * scale)), the mean
    image and the half difference of the even and odd frames' mean images (both (Ly, Lx),
    movie units). The half difference has the mean image's noise (variance sigma^2 / frames
    per pixel) without its structure: slow change (drift, bleaching) is common to both
    halves and cancels.

    ``scale`` is 1 whenever the movie fits (|values| <= 32766) and rounding to integers
    is harmless: always for integer movies; for float movies when the temporal noise sd
    (estimated from frame-to-frame differences) is >= 4 units, so rounding adds < 0.5 %
    noise variance. Otherwise it is a power of two (exact in floating point): < 1 shrinks
    too large ranges (uint16 above 32766 -> 0.5, like suite2p's own TIFF conversion), > 1
    keeps the precision of small-valued float movies (e.g. normalised to [0, 1]).
    """
    lo, hi = np.inf, -np.inf
    total = np.zeros(movie.shape[1:], np.float64)
    total_odd = np.zeros(movie.shape[1:], np.float64)  # sum of the odd-numbered frames
    sq_diff, n_diff = 0.0, 0
    integer = np.issubdtype(movie.dtype, np.integer)
    for a, block in movie.batches(batch):
        if not integer and not np.all(np.isfinite(block)):
            bad = a + int(np.flatnonzero(~np.isfinite(block).reshape(len(block), -1).all(1))[0])
            raise InputDataError(movie.path, f"frame {bad} contains NaN or infinite values")
        lo, hi = min(lo, float(block.min())), max(hi, float(block.max()))
        total += block.sum(0, dtype=np.float64)
        total_odd += block[(a + np.arange(len(block))) % 2 == 1].sum(0, dtype=np.float64)
        if not integer and len(block) > 1:
            d = np.diff(block.astype(np.float32), axis=0)
            sq_diff += float(np.square(d, dtype=np.float64).sum())
            n_diff += d.size
    mean_img = (total / movie.shape[0]).astype(np.float32)
    n_odd = movie.shape[0] // 2
    half_difference = ((total_odd / n_odd - (total - total_odd) / (movie.shape[0] - n_odd)) / 2).astype(np.float32)
    maxabs = max(abs(lo), abs(hi))
    if maxabs == 0.0:
        return 1.0, mean_img, half_difference
    fit = 2.0 ** math.floor(math.log2(_INT16_MAX / maxabs))  # largest power of two that fits
    if integer:
        return (1.0 if maxabs <= _INT16_MAX else fit), mean_img, half_difference
    noise_sd = math.sqrt(sq_diff / max(n_diff, 1) / 2.0)
    wanted = 1.0 if noise_sd >= 4.0 or noise_sd == 0.0 else 2.0 ** math.ceil(math.log2(4.0 / noise_sd))
    return float(min(fit, max(1.0, wanted))), mean_img, half_difference


# --------------------------------------------------------------------------- extraction


def _torch_device(name: str):
    import torch

    if name == "cpu":
        return torch.device("cpu")
    try:
        dev = torch.device(name)
        torch.zeros(1).to(dev)
        return dev
    except Exception:  # noqa: BLE001 - any failure means the device is unusable
        log.warning("torch device %r not available; running Suite2P on the CPU", name)
        return torch.device("cpu")


def _suite2p_settings(suite2p, params: ExtractionParams, frame_rate_hz: float, diameter_px: float) -> dict:
    s = suite2p.default_settings()
    s["torch_device"] = params.device
    s["fs"] = float(frame_rate_hz)
    s["tau"] = params.tau_s
    s["diameter"] = [diameter_px, diameter_px]
    s["run"]["do_registration"] = 0
    s["run"]["do_regmetrics"] = False
    s["run"]["do_detection"] = True
    s["run"]["do_deconvolution"] = True
    s["io"]["save_mat"] = s["io"]["save_NWB"] = s["io"]["combined"] = False
    det = s["detection"]
    det["algorithm"] = params.detection_algorithm
    det["threshold_scaling"] = params.threshold_scaling
    det["highpass_time"] = params.highpass_time
    det["max_overlap"] = params.max_overlap
    det["sparsery_settings"]["spatial_scale"] = params.spatial_scale
    ext = s["extraction"]
    ext["neuropil_coefficient"] = params.neucoeff
    ext["snr_threshold"] = params.snr_threshold
    ext["inner_neuropil_radius"] = params.inner_neuropil_radius
    ext["min_neuropil_pixels"] = params.min_neuropil_pixels
    ext["batch_size"] = params.batch_frames
    cls = s["classification"]
    cls["use_builtin_classifier"] = params.classifier != "file"  # never the user's ~/.suite2p classifier
    cls["classifier_path"] = params.classifier_path
    return s


def extract_plane(movie_path, out_dir, params: ExtractionParams | None = None, *, frame_rate_hz: float,
                  pixel_size_um: float, dataset: str = "registered", scratch_dir=None) -> None:
    """Run Suite2P detection, extraction, deconvolution and classification on one
    registered plane and write a Suite2P plane folder ``out_dir`` atomically.

    Parameters
    ----------
    movie_path
        Registered movie, (frames, Ly, Lx): an HDF5 file (``.h5``/``.hdf5``) with dataset
        ``dataset``, or a multipage TIFF (``.tif``/``.tiff``, one page per frame). Any
        integer or float dtype; it is streamed in ``params.batch_frames`` batches into
        Suite2P's int16 binary (scaled by ``ops["movie_scale"]`` if it does not fit). An
        HDF5 file's ``bad_frame`` (frames,) and ``valid_region`` (Ly, Lx) datasets, when
        present, become Suite2P's ``badframes`` and detection window ``yrange``/``xrange``.
    out_dir
        Plane folder to create, e.g. ``.../suite2p/plane0``; receives ``F.npy``,
        ``Fneu.npy``, ``spks.npy`` (rois x frames, float32), ``stat.npy`` (ROI dicts with
        ``ypix``, ``xpix``, ``lam``, ``med`` ...), ``iscell.npy`` (rois x 2: is-cell flag
        by ``params.classifier``, classifier probability) and ``ops.npy``
        (suite2p settings + detection outputs + ``meanImg``, ``movie_path``,
        ``movie_scale``, ``pixel_size_um``, ``extraction_params``). Replaced if present.
    frame_rate_hz
        Frame rate of this plane (Hz) = the volume rate for volumetric recordings.
    pixel_size_um
        Pixel size (um/px); converts ``params.cell_diameter_um`` to pixels.
    scratch_dir
        Where Suite2P's temporary binary goes (frames x Ly x Lx x 2 bytes; deleted at the
        end); default: next to ``out_dir``.

    Raises
    ------
    InputDataError
        The movie is missing, unreadable, of the wrong shape, has too few frames or
        non-finite values, or Suite2P finds no cells (no ROIs, or fewer than
        ``params.min_cells`` classified as cells). Nothing is written then.
    """
    params = params if params is not None else ExtractionParams()
    if not isinstance(params, ExtractionParams):
        raise TypeError("params must be an ExtractionParams")
    for name, v in (("frame_rate_hz", frame_rate_hz), ("pixel_size_um", pixel_size_um)):
        if isinstance(v, bool) or not isinstance(v, (int, float, np.number)) or not (math.isfinite(v) and v > 0):
            raise ValueError(f"{name} must be a positive finite number, got {v!r}")
    movie_path, out_dir = Path(movie_path), Path(out_dir)
    if params.classifier == "file" and not Path(params.classifier_path).is_file():
        raise InputDataError(params.classifier_path, "Suite2P classifier file not found")
    diameter_px = params.cell_diameter_um / float(pixel_size_um)
    t_start = time.time()

    with _Movie(movie_path, dataset) as movie:
        n_frames, ly, lx = movie.shape
        scale, mean_img, half_difference = _movie_scale(movie, params.batch_frames)
        suite2p = import_suite2p()
        settings = _suite2p_settings(suite2p, params, frame_rate_hz, diameter_px)
        device = _torch_device(params.device)
        with atomic_paths(out_dir) as (tmp_out,):
            tmp_out.mkdir()
            scratch_parent = Path(scratch_dir) if scratch_dir is not None else out_dir.parent
            scratch_parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory(prefix=f".{out_dir.name}.s2p-scratch-", dir=scratch_parent) as scratch:
                reg_file = os.path.join(scratch, "data.bin")
                with suite2p.io.BinaryFile(Ly=ly, Lx=lx, filename=reg_file, n_frames=n_frames, write=True) as fb:
                    for a, block in movie.batches(params.batch_frames):
                        fb[a:a + len(block)] = _to_int16(block, scale)
                t_copy = time.time() - t_start
                log.info("extraction: copied %s (%d frames of %dx%d, scale %g) into the Suite2P binary in %.1f s",
                         movie_path, n_frames, ly, lx, scale, t_copy)
                bad_frames, yrange, xrange = _registration_quality(movie, n_frames, ly, lx,
                                                                   params.detection_min_valid_fraction)
                np.save(os.path.join(scratch, "reg_outputs.npy"),  # read by suite2p.pipeline without registration
                        {"yrange": yrange, "xrange": xrange, "badframes": bad_frames.copy()}, allow_pickle=True)
                added = []  # ROIs of mean_image_nuclei (stat dicts), filled during detection

                def add_mean_image_nuclei(stat):
                    added.extend(mean_image_nuclei(mean_img, half_difference, [s["med"] for s in stat], diameter_px,
                                                   params.nucleus_min_snr, yrange, xrange))
                    if not added:
                        return stat
                    det = settings["detection"]
                    return suite2p.detection.stats.roi_stats(
                        np.array(list(stat) + added, dtype=object), ly, lx, diameter=settings["diameter"],
                        max_overlap=det["max_overlap"], do_soma_crop=det["soma_crop"],
                        npix_norm_min=det["npix_norm_min"], npix_norm_max=det["npix_norm_max"])

                outputs = _run_pipeline(suite2p, movie_path, scratch, reg_file, ly, lx, n_frames,
                                        copy.deepcopy(settings), device, bad_frames,
                                        add_mean_image_nuclei if params.mean_image_nuclei else None)
            reg_outputs, detect_outputs, stat, F, Fneu, spks, iscell, plane_times = outputs
            n_added = sum(bool(s.get("mean_image_nucleus", False)) for s in stat)
            log.info("extraction: %d of %d ROIs are mean-image nuclei (%d proposed)", n_added, len(stat), len(added))
            iscell = np.asarray(iscell, dtype=np.float64).reshape(len(stat), 2)
            iscell[:, 0] = 1.0 if params.classifier == "none" else (iscell[:, 1] > params.iscell_threshold)
            n_cells = int(iscell[:, 0].sum())
            if n_cells < max(params.min_cells, 1):
                raise InputDataError(
                    movie_path, f"no cells: Suite2P detected {len(stat)} ROI(s) but only {n_cells} passed the "
                                f"classifier (probability > {params.iscell_threshold}); need at least "
                                f"{max(params.min_cells, 1)}")
            plane_times["copy_to_binary"] = t_copy
            ops = {
                # Suite2P 1.x layout: db-like keys + settings + registration/detection outputs
                "data_path": [str(movie_path.parent)], "save_path": str(out_dir), "nplanes": 1, "nchannels": 1,
                "nframes": n_frames, "Ly": ly, "Lx": lx, "reg_file": None,
                **settings, **(reg_outputs or {}), **(detect_outputs or {}),
                "plane_times": plane_times,
                # flat aliases read by Suite2P-0.x-style consumers
                "neucoeff": params.neucoeff, "meanImg": mean_img * scale,
                # provenance of this pipeline
                "movie_path": str(movie_path), "movie_dataset": dataset if movie_path.suffix.lower()
                in _HDF5_SUFFIXES else None, "movie_scale": scale, "pixel_size_um": float(pixel_size_um),
                "extraction_params": params.to_dict(), "suite2p_version": str(suite2p.version),
                "n_mean_image_nuclei": n_added,
            }
            np.save(tmp_out / "F.npy", np.asarray(F, np.float32))
            np.save(tmp_out / "Fneu.npy", np.asarray(Fneu, np.float32))
            np.save(tmp_out / "spks.npy", np.asarray(spks, np.float32))
            np.save(tmp_out / "stat.npy", np.asarray(stat, dtype=object), allow_pickle=True)
            np.save(tmp_out / "iscell.npy", iscell)
            np.save(tmp_out / "ops.npy", np.array(ops, dtype=object), allow_pickle=True)
    log.info("extraction: %s -> %s: %d ROIs, %d cells, %.1f s", movie_path, out_dir, len(stat), n_cells,
             time.time() - t_start)


def _to_int16(block: np.ndarray, scale: float) -> np.ndarray:
    x = block.astype(np.float32) if scale != 1.0 or not np.issubdtype(block.dtype, np.integer) else block
    if scale != 1.0:
        x = x * np.float32(scale)
    if np.issubdtype(x.dtype, np.floating):
        x = np.rint(x)
    return np.clip(x, -_INT16_MAX, _INT16_MAX).astype(np.int16)


def _registration_quality(movie: _Movie, n_frames: int, ly: int, lx: int,
                          min_valid_fraction: float) -> tuple[np.ndarray, list, list]:
    """Bad frames (frames,) and the detection window (yrange, xrange) for suite2p from the
    registered file (:mod:`pipeline.imaging.badframes`). With ``min_valid_fraction`` < 1 and
    the file's ``rigid_shift_px``: the rows (columns) that the rigid shift kept inside the
    field of view in at least that fraction of the good frames (registered(y) = frame(y + dy));
    else from ``valid_region`` (inside in every good frame): the rows (columns) of which at
    least half the pixels are valid. All frames good and the whole frame without them."""
    bad = movie.bad_frames if movie.bad_frames is not None else np.zeros(n_frames, bool)
    if bad.shape != (n_frames,):
        raise InputDataError(movie.path, f"bad_frame has shape {bad.shape}, expected ({n_frames},)")
    if bad.all():
        raise InputDataError(movie.path, "every frame is marked bad (bad_frame)")
    valid = movie.valid_region
    if min_valid_fraction < 1 and movie.rigid_shift is not None:
        shift = np.asarray(movie.rigid_shift, dtype=np.float64)
        if shift.shape != (n_frames, 2):
            raise InputDataError(movie.path, f"rigid_shift_px has shape {shift.shape}, expected ({n_frames}, 2)")
        good = shift[~bad]
        inside = [((np.arange(n)[None, :] + good[:, axis, None] >= 0) & (np.arange(n)[None, :] + good[:, axis, None]
                                                                      <= n - 1)).mean(axis=0)
                  for axis, n in ((0, ly), (1, lx))]
        rows, cols = (np.flatnonzero(f >= min_valid_fraction) for f in inside)
        source = f"rigid_shift_px (inside in >= {min_valid_fraction:g} of the good frames)"
    elif valid is not None:
        if valid.shape != (ly, lx):
            raise InputDataError(movie.path, f"valid_region has shape {valid.shape}, expected ({ly}, {lx})")
        rows, cols = np.flatnonzero(valid.mean(axis=1) >= 0.5), np.flatnonzero(valid.mean(axis=0) >= 0.5)
        source = "valid_region"
    else:
        return bad, [0, ly], [0, lx]
    if rows.size < 8 or cols.size < 8:
        raise InputDataError(movie.path, f"{source} leaves {rows.size} x {cols.size} px for detection")
    return bad, [int(rows[0]), int(rows[-1]) + 1], [int(cols[0]), int(cols[-1]) + 1]


def mean_image_nuclei(mean_img: np.ndarray, half_difference: np.ndarray, taken_yx, diameter_px: float,
                      min_snr: float, yrange, xrange) -> list[dict]:
    """Bright nuclei of the mean image that no functional ROI has, as Suite2P ROI dicts.

    With nuclear labelling (H2B-GCaMP) every nucleus is bright at rest, but functional
    detection (sparsery) finds only the nuclei with events in the recording: quiet nuclei are
    missed, the more so the shorter the recording. The mean image (Ly, Lx) is band-passed at
    the nucleus scale (difference of Gaussians: sd = diameter / (2 sqrt 2), the scale of a disc
    of that diameter, minus 3x that sd, which removes the local background). A nucleus is a
    local maximum of it over a window of 0.8 diameter that is at least ``min_snr`` robust sds
    (1.4826 x MAD) of the band-passed ``half_difference`` (the mean image's own noise, from
    :func:`_movie_scale`) above zero, inside the detection window ``yrange`` x ``xrange``
    ([start, stop) px), and farther than 0.75 diameter from every (y, x) centre in ``taken_yx``
    (px) and from the nuclei accepted before it (brightest first). Its footprint: the pixels
    within diameter / 2 of the peak where the band-pass is positive, weighted by it. Each dict
    has ``ypix``, ``xpix`` (int), ``lam`` (float32), ``med`` [y, x] and ``mean_image_nucleus`` True.

    Sharper band-passes find more of the quiet nuclei but also more of their quiet copies in
    the adjacent plane, which no activity can pair (realistic preset, 200 volumes; in-focus
    nuclei matched / true pairs merged): this one 92.8/88.9 % (seed 5), 89.0/98.5 % (seed 8);
    sd diameter / (2 sqrt 2) with a 2x surround and a 0.6-diameter window 94.8/85.7 %,
    91.0/98.6 %; sd diameter / 4, 2x surround, 0.6 diameter 97.3/83.1 %, 94.8/97.4 %.
    """
    from scipy import ndimage

    sd = diameter_px / (2 * math.sqrt(2))
    band = (ndimage.gaussian_filter(mean_img.astype(np.float64), sd)
            - ndimage.gaussian_filter(mean_img.astype(np.float64), 3 * sd))
    noise = (ndimage.gaussian_filter(half_difference.astype(np.float64), sd)
             - ndimage.gaussian_filter(half_difference.astype(np.float64), 3 * sd))
    noise_sd = 1.4826 * float(np.median(np.abs(noise - np.median(noise))))
    window = int(round(0.8 * diameter_px)) | 1
    peak = (band == ndimage.maximum_filter(band, size=window)) & (band > max(min_snr * noise_sd, 0.0))
    inside = np.zeros_like(peak)
    inside[yrange[0]:yrange[1], xrange[0]:xrange[1]] = True
    ys, xs = np.nonzero(peak & inside)
    order = np.argsort(-band[ys, xs], kind="stable")
    centres = [np.asarray(c, float) for c in taken_yx]
    min_distance = 0.75 * diameter_px
    radius = diameter_px / 2
    ly, lx = mean_img.shape
    out = []
    for y, x in zip(ys[order], xs[order]):
        if centres and np.min(np.hypot(*(np.asarray(centres) - (y, x)).T)) <= min_distance:
            continue
        centres.append(np.array([y, x], float))
        r = int(math.ceil(radius))
        yy, xx = np.mgrid[max(y - r, 0):min(y + r + 1, ly), max(x - r, 0):min(x + r + 1, lx)]
        keep = (np.hypot(yy - y, xx - x) <= radius) & (band[yy, xx] > 0)
        out.append({"ypix": yy[keep].astype(int), "xpix": xx[keep].astype(int),
                    "lam": band[yy, xx][keep].astype(np.float32), "med": [int(y), int(x)],
                    "mean_image_nucleus": True})
    return out


def _run_pipeline(suite2p, movie_path: Path, save_path: str, reg_file: str, ly: int, lx: int, n_frames: int,
                  settings: dict, device, bad_frames: np.ndarray, add_rois=None):
    """suite2p.pipeline without registration; returns the pieces we keep. ``add_rois`` (stat
    array -> stat array), when given, runs between Suite2P's detection and its extraction:
    Suite2P's pipeline has no such step, so its ``detection.detection_wrapper`` is wrapped for
    the duration of the call."""
    detection = suite2p.detection
    detect = detection.detection_wrapper

    def detect_then_add(*args, **kwargs):
        detect_outputs, stat, redcell = detect(*args, **kwargs)
        return detect_outputs, add_rois(stat), redcell

    if add_rois is not None:
        detection.detection_wrapper = detect_then_add
    try:
        return _run_suite2p(suite2p, movie_path, save_path, reg_file, ly, lx, n_frames, settings, device, bad_frames)
    finally:
        detection.detection_wrapper = detect


def _run_suite2p(suite2p, movie_path: Path, save_path: str, reg_file: str, ly: int, lx: int, n_frames: int,
                 settings: dict, device, bad_frames: np.ndarray):
    with warnings.catch_warnings():
        # torch's beta-feature notices from suite2p's sparse neuropil masks
        warnings.filterwarnings("ignore", message="Sparse (invariant checks|CSR tensor support)", category=UserWarning)
        with suite2p.io.BinaryFile(Ly=ly, Lx=lx, filename=reg_file, n_frames=n_frames, write=True) as f_reg:
            try:
                out = suite2p.pipeline(save_path, f_reg, run_registration=False, settings=settings,
                                       badframes=bad_frames, device=device)
            except ValueError as e:
                if "no ROIs" in str(e):
                    raise InputDataError(movie_path, f"no cells: Suite2P detected no ROIs in this plane ({e})") from e
                raise
    reg_outputs, detect_outputs, stat, F, Fneu, _, _, spks, iscell, _, _, plane_times = out
    if stat is None or len(stat) == 0 or F is None:
        raise InputDataError(movie_path, "no cells: no Suite2P ROI survived the overlap / size criteria")
    return reg_outputs, detect_outputs, stat, F, Fneu, spks, iscell, plane_times


# --------------------------------------------------------------------------- reading plane folders


@dataclass(frozen=True)
class Suite2pPlane:
    """One Suite2P plane folder, validated. ROI order is Suite2P's (all ROIs, cells or not)."""

    folder: Path
    F: np.ndarray  # ROI fluorescence (rois, frames), float32, movie units (x ops movie_scale)
    Fneu: np.ndarray  # neuropil fluorescence (rois, frames), float32
    spks: np.ndarray  # deconvolved activity (rois, frames), float32, arbitrary units
    iscell: np.ndarray  # (rois, 2): [is-cell flag 0/1, classifier probability]
    centroid_px: np.ndarray  # (rois, 2) ROI centre (y, x) in px, from stat "med"
    footprint_indptr: np.ndarray  # (rois + 1,) CSR row pointer into the two arrays below
    footprint_pixel_index: np.ndarray  # flat pixel index y * Lx + x of each ROI pixel
    footprint_weight: np.ndarray  # Suite2P "lam" weight of each ROI pixel
    Ly: int  # frame height (px)
    Lx: int  # frame width (px)
    frame_rate_hz: float | None  # ops "fs" (Hz); Suite2P's default 10 if the lab never set it
    neucoeff: float  # neuropil coefficient recorded in ops (0.7 if absent)
    ops: dict = field(repr=False)  # subset of ops: fs, tau, neucoeff, nframes, Ly, Lx, diameter, meanImg, ...
    neucoeff_in_ops: bool = False  # whether ops records the coefficient (else ``neucoeff`` is the 0.7 default)

    @property
    def n_rois(self) -> int:
        return int(self.F.shape[0])

    @property
    def n_frames(self) -> int:
        return int(self.F.shape[1])

    @property
    def is_cell(self) -> np.ndarray:
        """Boolean (rois,) mask of ROIs classified as cells."""
        return self.iscell[:, 0] > 0.5

    @property
    def weighted_centroid_px(self) -> np.ndarray:
        """(rois, 2) ROI centre (y, x) in px as the ``lam``-weighted mean of its pixels: sub-pixel,
        unlike ``med`` (on the realistic synthetic preset 0.54 px median error vs 1.04 px)."""
        rows = np.repeat(np.arange(self.n_rois), np.diff(self.footprint_indptr))
        w = np.bincount(rows, self.footprint_weight, minlength=self.n_rois)
        y, x = np.divmod(self.footprint_pixel_index, self.Lx)
        sums = np.column_stack([np.bincount(rows, self.footprint_weight * y, minlength=self.n_rois),
                                np.bincount(rows, self.footprint_weight * x, minlength=self.n_rois)])
        weighted = sums / np.where(w > 0, w, 1.0)[:, None]
        return np.where((w > 0)[:, None], weighted, self.centroid_px)  # all-zero weights: the median pixel

    def neuropil_corrected(self, neucoeff: float | None = None) -> np.ndarray:
        """F - r * Fneu (rois, frames), r = ``neucoeff`` or the folder's coefficient."""
        r = self.neucoeff if neucoeff is None else float(neucoeff)
        return self.F - np.float32(r) * self.Fneu


_OPS_SUBSET = ("fs", "tau", "nframes", "Ly", "Lx", "diameter", "meanImg", "movie_scale", "pixel_size_um",
               "movie_path", "suite2p_version", "version", "neucoeff")


def _load_npy(path: Path, *, pickle: bool) -> Any:
    if not path.is_file():
        raise InputDataError(path, "missing Suite2P file")
    try:
        return np.load(path, allow_pickle=pickle)
    except Exception as e:
        raise InputDataError(path, f"cannot read Suite2P file: {type(e).__name__}: {e}") from e


def _float_matrix(path: Path, arr: Any, shape: tuple[int, ...] | None = None) -> np.ndarray:
    if not isinstance(arr, np.ndarray) or arr.ndim != 2 or not (
            np.issubdtype(arr.dtype, np.floating) or np.issubdtype(arr.dtype, np.integer)):
        raise InputDataError(path, f"expected a 2-D numeric array, got "
                                   f"{getattr(arr, 'dtype', type(arr).__name__)} {getattr(arr, 'shape', '')}")
    if shape is not None and arr.shape != shape:
        raise InputDataError(path, f"shape {arr.shape} does not match F.npy {shape}")
    if not np.all(np.isfinite(arr)):
        raise InputDataError(path, "contains NaN or infinite values")
    return arr


def read_suite2p_plane(folder) -> Suite2pPlane:
    """Read and validate a Suite2P plane folder (``{F,Fneu,spks,stat,iscell,ops}.npy``).

    Accepts folders written by :func:`extract_plane` and by Suite2P 0.x / 1.x itself
    (``stat.npy`` and ``ops.npy`` are pickled object arrays, so only read folders you
    trust). Raises :class:`InputDataError` naming the file for a missing, unreadable or
    inconsistent file, and naming the folder when it holds no cells (no ROIs, or no ROI
    with ``iscell`` set).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputDataError(folder, "Suite2P plane folder not found")
    paths = {name: folder / name for name in PLANE_FILES}
    for p in paths.values():  # report a missing file before reading large ones
        if not p.is_file():
            raise InputDataError(p, "missing Suite2P file")

    ops_raw = _load_npy(paths["ops.npy"], pickle=True)
    try:
        ops = ops_raw.item() if isinstance(ops_raw, np.ndarray) and ops_raw.dtype == object else None
    except ValueError:
        ops = None
    if not isinstance(ops, dict):
        raise InputDataError(paths["ops.npy"], "expected a pickled dict (Suite2P ops)")
    try:
        ly, lx = int(ops["Ly"]), int(ops["Lx"])
    except (KeyError, TypeError, ValueError):
        raise InputDataError(paths["ops.npy"], "ops has no valid frame size 'Ly' / 'Lx'") from None
    if ly <= 0 or lx <= 0:
        raise InputDataError(paths["ops.npy"], f"invalid frame size Ly={ly}, Lx={lx}")

    F = _float_matrix(paths["F.npy"], _load_npy(paths["F.npy"], pickle=False))
    n_rois, n_frames = F.shape
    nframes_ops = ops.get("nframes")
    if nframes_ops is not None and int(nframes_ops) != n_frames:
        raise InputDataError(paths["F.npy"], f"has {n_frames} frames but ops.npy says nframes={int(nframes_ops)}")
    Fneu = _float_matrix(paths["Fneu.npy"], _load_npy(paths["Fneu.npy"], pickle=False), F.shape)
    spks = _float_matrix(paths["spks.npy"], _load_npy(paths["spks.npy"], pickle=False), F.shape)

    iscell = _load_npy(paths["iscell.npy"], pickle=False)
    if not isinstance(iscell, np.ndarray) or iscell.ndim != 2 or iscell.shape[1] != 2 or iscell.shape[0] != n_rois:
        raise InputDataError(paths["iscell.npy"], f"expected shape ({n_rois}, 2) to match F.npy, "
                                                  f"got {getattr(iscell, 'shape', None)}")
    iscell = iscell.astype(np.float64)
    if not np.all(np.isfinite(iscell)) or np.any(iscell < 0) or np.any(iscell > 1):
        raise InputDataError(paths["iscell.npy"], "values must be in [0, 1] (flag, probability)")

    stat = _load_npy(paths["stat.npy"], pickle=True)
    if not isinstance(stat, np.ndarray) or stat.ndim != 1 or len(stat) != n_rois:
        raise InputDataError(paths["stat.npy"], f"expected {n_rois} ROI dicts to match F.npy, got "
                                                f"{getattr(stat, 'shape', type(stat).__name__)}")
    centroid = np.zeros((n_rois, 2), np.float64)
    indptr = np.zeros(n_rois + 1, np.int64)
    pix_parts, w_parts = [], []
    for i, s in enumerate(stat):
        if not isinstance(s, dict) or "ypix" not in s or "xpix" not in s:
            raise InputDataError(paths["stat.npy"], f"ROI {i} is not a dict with 'ypix' and 'xpix'")
        yp = np.asarray(s["ypix"]).astype(np.int64).ravel()
        xp = np.asarray(s["xpix"]).astype(np.int64).ravel()
        lam = np.asarray(s.get("lam", np.ones(len(yp))), np.float64).ravel()
        if len(yp) == 0 or len(yp) != len(xp) or len(lam) != len(yp):
            raise InputDataError(paths["stat.npy"], f"ROI {i} has empty or inconsistent ypix/xpix/lam")
        if yp.min() < 0 or xp.min() < 0 or yp.max() >= ly or xp.max() >= lx:
            raise InputDataError(paths["stat.npy"], f"ROI {i} has pixels outside the {ly}x{lx} frame of ops.npy")
        if "med" in s:
            med = np.asarray(s["med"], np.float64).ravel()
            if med.shape != (2,) or not np.all(np.isfinite(med)):
                raise InputDataError(paths["stat.npy"], f"ROI {i} has an invalid 'med' {s['med']!r}")
        else:  # as suite2p.detection.stats.median_pix
            med = np.array([np.median(yp), np.median(xp)], np.float64)
        centroid[i] = med
        indptr[i + 1] = indptr[i] + len(yp)
        pix_parts.append(yp * lx + xp)
        w_parts.append(lam)

    if n_rois == 0 or not np.any(iscell[:, 0] > 0.5):
        raise InputDataError(folder, f"no cells: {n_rois} ROI(s), none classified as a cell in iscell.npy")

    neucoeff = ops.get("neucoeff")
    if neucoeff is None:
        neucoeff = (ops.get("extraction") or {}).get("neuropil_coefficient")
    neucoeff_in_ops = neucoeff is not None
    if neucoeff is None:
        neucoeff = 0.7
    fs = ops.get("fs")
    subset = {k: ops[k] for k in _OPS_SUBSET if k in ops}
    subset["neucoeff"] = float(neucoeff)
    return Suite2pPlane(
        folder=folder,
        F=F.astype(np.float32, copy=False), Fneu=Fneu.astype(np.float32, copy=False),
        spks=spks.astype(np.float32, copy=False), iscell=iscell, centroid_px=centroid,
        footprint_indptr=indptr,
        footprint_pixel_index=np.concatenate(pix_parts) if pix_parts else np.zeros(0, np.int64),
        footprint_weight=np.concatenate(w_parts) if w_parts else np.zeros(0, np.float64),
        Ly=ly, Lx=lx, frame_rate_hz=float(fs) if fs is not None else None, neucoeff=float(neucoeff), ops=subset,
        neucoeff_in_ops=neucoeff_in_ops,
    )
