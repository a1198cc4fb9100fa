"""Traces of a synthetic fish taken with its TRUE footprints (an oracle ROI set), so that
tests of later steps (dF/F, cross-plane duplicates) do not depend on Suite2P's detection."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import tifffile
from scipy import sparse


def oracle_traces(raw_dir: Path, truth_path: Path, plane: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For the truth rows of ``plane``: F = footprint-weighted mean of the raw frames,
    Fneu = mean of a 5-12 px ring outside every nucleus (as suite2p's neuropil mask), both
    (rows, frames) in raw ADU; and the plane's mean image (Ly, Lx). Valid for still movies."""
    movie = tifffile.imread(Path(raw_dir) / f"plane{plane}.tif").astype(np.float64)
    t, ly, lx = movie.shape
    with h5py.File(truth_path, "r") as f:
        rows = np.flatnonzero(f["neurons/plane"][()] == plane)
        ptr, pix = f["neurons/footprint_indptr"][()], f["neurons/footprint_pixel_index"][()]
        w, cen = f["neurons/footprint_weight"][()], f["neurons/centroid_px"][()][rows]
    lo, hi = ptr[rows[0]], ptr[rows[-1] + 1]
    counts = np.diff(ptr[rows[0]:rows[-1] + 2])
    fp = sparse.csr_matrix((w[lo:hi], (np.repeat(np.arange(len(rows)), counts), pix[lo:hi])),
                           shape=(len(rows), ly * lx))
    fp = sparse.diags(1.0 / np.asarray(fp.sum(axis=1)).ravel()) @ fp
    pixels = movie.reshape(t, -1).T
    in_nucleus = np.zeros(ly * lx, bool)
    in_nucleus[pix[lo:hi][w[lo:hi] > 0.02]] = True
    yy, xx = np.mgrid[0:ly, 0:lx]
    Fneu = np.stack([pixels[(d > 5) & (d < 12) & ~in_nucleus].mean(axis=0)
                     for d in (np.hypot(yy - c[0], xx - c[1]).ravel() for c in cen)])
    return fp @ pixels, Fneu, movie.mean(axis=0)
