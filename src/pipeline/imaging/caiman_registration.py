"""Motion correction through CaImAn's NoRMCorre (``caiman.motion_correction.MotionCorrect``),
the implementation the NLP4Neuro paper used (config ``motion_correction.method: caiman``).

CaImAn is distributed through conda only (the PyPI name ``caiman`` is another package):
``snakemake --sdm conda`` gives this rule ``envs/caiman.yaml``. Where CaImAn is not
importable the backend raises a clear error, and its test is skipped saying so.

Writes the registered-plane layout of :mod:`pipeline.imaging.normcorre` (registered movie,
rigid shifts, template, metrics; CaImAn's per-patch shifts as ``patch_shift_px``
(frames, patches, 2) in CaImAn's patch order with its patch coordinates). CaImAn reports
the shift it APPLIES to register a frame; the file stores content displacements (the
synthetic truth's convention), i.e. minus CaImAn's shifts. Rows come first in both.

NOTE: this backend could not be run where it was written (no conda); its ground-truth
test (tests/imaging/test_caiman_registration.py) runs wherever CaImAn is installed.
"""

from __future__ import annotations

import logging
from pathlib import Path

import h5py
import numpy as np

from pipeline.imaging.config import CaimanParams
from pipeline.imaging.registration_quality import frame_correlations, write_quality
from pipeline.io.atomic import atomic_paths
from pipeline.io.h5 import write_dataset

log = logging.getLogger(__name__)


def import_caiman():
    """Import CaImAn, or raise RuntimeError explaining how to get it."""
    try:
        import caiman
        from caiman.motion_correction import MotionCorrect  # noqa: F401  (checks it is CaImAn)
    except ImportError as err:
        raise RuntimeError(
            "motion_correction.method caiman needs CaImAn, which is conda-only (the PyPI 'caiman' is an "
            "unrelated package): run with `snakemake --sdm conda` (envs/caiman.yaml) or "
            f"`conda install -c conda-forge caiman` ({err})"
        ) from None
    return caiman


def _as_list(value) -> list:
    if value is None:
        return []
    return [value] if isinstance(value, (str, Path)) else list(value)


def register_with_caiman(stack_path, out_path, params: CaimanParams | None = None) -> dict:
    """Register one plane's raw stack with CaImAn; write ``out_path`` (HDF5); return metrics."""
    import tifffile

    params = params or CaimanParams()
    caiman = import_caiman()
    from caiman.motion_correction import MotionCorrect

    mc = MotionCorrect(
        [str(stack_path)], dview=None, max_shifts=(params.max_shift_px,) * 2, strides=(params.stride_px,) * 2,
        overlaps=(params.overlap_px,) * 2, max_deviation_rigid=params.max_deviation_px,
        upsample_factor_grid=params.upsample_factor_grid, pw_rigid=params.nonrigid, shifts_opencv=True,
        border_nan="copy",
    )
    mc.motion_correct(save_movie=True)
    mmap_file = mc.mmap_file[0] if isinstance(mc.mmap_file, (list, tuple)) else mc.mmap_file
    pixels_by_frame, dims, n_frames = caiman.load_memmap(mmap_file)  # (Ly * Lx, frames), Fortran order
    ly, lx = int(dims[0]), int(dims[1])
    rigid = -np.asarray(mc.shifts_rig, dtype=np.float32).reshape(n_frames, 2)
    template = np.asarray(mc.total_template_els if params.nonrigid else mc.total_template_rig, dtype=np.float32)
    with tifffile.TiffFile(stack_path) as tif, atomic_paths(out_path) as (tmp,):
        with h5py.File(tmp, "w") as f:
            registered = f.create_dataset("registered", (n_frames, ly, lx), np.float32, chunks=(1, ly, lx))
            corr_before, corr_after = np.empty(n_frames), np.empty(n_frames)
            mean_raw, mean_registered = np.zeros((ly, lx)), np.zeros((ly, lx))
            for start in range(0, n_frames, params.batch_frames):
                stop = min(start + params.batch_frames, n_frames)
                frames = np.asarray(pixels_by_frame[:, start:stop]).T.reshape(stop - start, lx, ly).transpose(0, 2, 1)
                raw = tif.asarray(key=range(start, stop)).reshape(stop - start, ly, lx).astype(np.float32)
                registered[start:stop] = frames
                mean_raw += raw.sum(axis=0)
                mean_registered += frames.sum(axis=0)
                corr_before[start:stop] = frame_correlations(raw, template)
                corr_after[start:stop] = frame_correlations(frames, template)
            mean_raw /= n_frames
            mean_registered /= n_frames
            write_dataset(f, "rigid_shift_px", rigid, "px", "rigid (dy, dx) content displacement (= -CaImAn shifts_rig)")
            if params.nonrigid:
                patch = -np.stack([np.asarray(mc.x_shifts_els), np.asarray(mc.y_shifts_els)], axis=-1)
                write_dataset(f, "patch_shift_px", patch.astype(np.float32), "px",
                              "per-patch (dy, dx) content displacement, CaImAn patch order (frames, patches, 2)")
                write_dataset(f, "patch_coords_caiman", np.asarray(mc.coord_shifts_els, dtype=float), "px",
                              "CaImAn coord_shifts_els: the patch coordinates of patch_shift_px")
            metrics = write_quality(f, template=template, mean_raw=mean_raw, mean_registered=mean_registered,
                                    corr_before=corr_before, corr_after=corr_after, algorithm="caiman",
                                    algorithm_version=str(getattr(caiman, "__version__", "")), params=params.to_dict(),
                                    source_path=str(stack_path), n_frames=n_frames)
    for path in {mmap_file, *_as_list(getattr(mc, "fname_tot_els", None)), *_as_list(getattr(mc, "fname_tot_rig", None))}:
        Path(path).unlink(missing_ok=True)  # CaImAn's own memmaps, written next to the input
    log.info("CaImAn registration of %s: corr to template %.3f -> %.3f", stack_path,
             metrics["mean_corr_to_template_before"], metrics["mean_corr_to_template_after"])
    return metrics
