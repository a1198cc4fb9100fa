"""Motion correction with suite2p 1.1's own rigid + non-rigid block registration, as an
alternative backend to :mod:`pipeline.imaging.normcorre` (config ``motion_correction.method:
suite2p``). Writes the same registered-plane file (layout in docs/architecture.md).

The raw stack is streamed into a suite2p int16 binary in a scratch folder next to the
output, registered by ``suite2p.registration.registration_wrapper`` from that binary into
a second one, and copied chunk by chunk into the HDF5 output; the movie is never held in
memory. Shifts are reported as content displacements (the synthetic truth's sign
convention): suite2p registers with frame(y + offset), so its offsets are already that.
Suite2P's rigid shifts are whole pixels; its block shifts are subpixel.
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

import h5py
import numpy as np

from pipeline.imaging.config import Suite2pRegistrationParams
from pipeline.imaging.extraction import _Movie, _movie_scale, _to_int16, import_suite2p
from pipeline.imaging.registration_quality import frame_correlations, write_quality
from pipeline.io.atomic import atomic_paths
from pipeline.io.h5 import write_dataset

log = logging.getLogger(__name__)


def register_with_suite2p(stack_path, out_path, params: Suite2pRegistrationParams | None = None) -> dict:
    """Register one plane's raw stack with suite2p; write ``out_path`` (HDF5); return metrics."""
    params = params or Suite2pRegistrationParams()
    out_path = Path(out_path)
    suite2p = import_suite2p()
    import torch
    from suite2p.registration import nonrigid, registration_wrapper

    settings = suite2p.default_settings()["registration"]
    settings.update(nonrigid=params.nonrigid, block_size=[params.block_size_px, params.block_size_px],
                    maxregshift=params.max_rigid_shift_fraction, maxregshiftNR=params.max_block_shift_px)
    with _Movie(Path(stack_path), "registered") as movie:
        n_frames, ly, lx = movie.shape
        scale, mean_raw, _ = _movie_scale(movie, params.batch_frames)
        out_path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=f".{out_path.name}.s2p-", dir=out_path.parent) as scratch, \
                atomic_paths(out_path) as (tmp,):
            raw_file, reg_file = os.path.join(scratch, "raw.bin"), os.path.join(scratch, "reg.bin")
            with suite2p.io.BinaryFile(Ly=ly, Lx=lx, filename=raw_file, n_frames=n_frames, write=True) as f_raw, \
                    suite2p.io.BinaryFile(Ly=ly, Lx=lx, filename=reg_file, n_frames=n_frames, write=True) as f_reg:
                for start, block in movie.batches(params.batch_frames):
                    f_raw[start:start + len(block)] = _to_int16(block, scale)
                result = registration_wrapper(f_reg, f_raw=f_raw, settings=settings, device=torch.device("cpu"))
                template = np.asarray(result["refImg"], dtype=np.float32) / scale
                rigid = np.stack([result["yoff"], result["xoff"]], axis=1).astype(np.float32)
                with h5py.File(tmp, "w") as f:
                    registered = f.create_dataset("registered", (n_frames, ly, lx), np.float32, chunks=(1, ly, lx))
                    corr_before, corr_after = np.empty(n_frames), np.empty(n_frames)
                    mean_registered = np.zeros((ly, lx))
                    for start, block in movie.batches(params.batch_frames):
                        stop = start + len(block)
                        frames = np.asarray(f_reg[start:stop], dtype=np.float32) / scale
                        registered[start:stop] = frames
                        mean_registered += frames.sum(axis=0)
                        corr_before[start:stop] = frame_correlations(np.asarray(block, np.float32), template)
                        corr_after[start:stop] = frame_correlations(frames, template)
                    mean_registered /= n_frames
                    write_dataset(f, "rigid_shift_px", rigid, "px", "rigid (dy, dx) content displacement (whole px)")
                    if params.nonrigid:
                        yblock, xblock, n_blocks = nonrigid.make_blocks(ly, lx, settings["block_size"])[:3]
                        bounds = np.array([[y[0], y[1], x[0], x[1]] for y, x in zip(yblock, xblock)]).reshape(*n_blocks, 4)
                        residual = np.stack([result["yoff1"], result["xoff1"]], axis=-1).reshape(n_frames, *n_blocks, 2)
                        write_dataset(f, "patch_shift_px", rigid[:, None, None, :] + residual, "px",
                                      "per-block (dy, dx) displacement incl. the rigid shift")
                        write_dataset(f, "patch_bounds_px", bounds, "px", "block bounds (y0, y1, x0, x1), half-open")
                    metrics = write_quality(f, template=template, mean_raw=mean_raw, mean_registered=mean_registered,
                                            corr_before=corr_before, corr_after=corr_after, algorithm="suite2p",
                                            algorithm_version=suite2p.version, params=params.to_dict(),
                                            source_path=str(stack_path), n_frames=n_frames)
    log.info("suite2p registration of %s: corr to template %.3f -> %.3f", stack_path,
             metrics["mean_corr_to_template_before"], metrics["mean_corr_to_template_after"])
    return metrics
