"""Cells seen in two adjacent imaging planes: find the duplicate ROIs and keep the better one.

With nuclear labelling and a plane spacing close to a nucleus's axial extent, a nucleus
between two focal planes is detected in both (NLP4Neuro, Methods: planes ~7 um apart with
~6 um H2B-GCaMP nuclei and a several-um axial PSF). Counting it twice gives the decoders two
copies of one neuron. Evidence that ROI ``i`` of plane ``p`` and ROI ``j`` of plane ``p + 1``
are one cell:

* **position**: the same xy. Each plane is registered to its own template, so the two
  planes' ROI coordinates differ by a constant offset (the templates' positions); it is
  estimated per pair of planes as the mode of the displacements between ROIs of the two
  planes within ``max_offset_um`` (copies of one cell all share it, unrelated cells spread
  uniformly), refined as the median of the displacements near the mode. After removing it the centroid distance must be <= ``max_distance_um``.
* **activity**: the same calcium events. Planes are acquired at different times within a
  volume, so the lower plane's trace is linearly interpolated to the upper plane's frame
  times; traces are Suite2P's deconvolved activity (``spks``: free of the slow baseline
  changes that z-drift and bleaching put into F; a Gaussian low-pass of 1 frame lowered the
  copies' correlation on the realistic synthetic preset). Similarity is the Pearson r of these traces; it must reach
  ``min_correlation`` and also the ``null_percentile`` percentile of r over *null pairs*:
  ROIs of the same two planes ``null_near_um`` to ``null_far_um`` apart (2-4 nuclear diameters), which
  are certainly different cells but share neuropil, stimulus drive and noise structure.

Pairs are accepted greedily from the highest correlation, each ROI in at most one pair (so a
nucleus seen in three thin planes keeps one ROI per two planes). Of a pair the ROI with the
higher SNR of its trace (``1 - var(diff(x)) / (2 var(x))``, as Suite2P's ``snr``:
near 1 for slow calcium signal, near 0 for white noise) is kept: the plane closer to the
nucleus's centre sees it brighter and less noisy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree


@dataclass(frozen=True)
class CrossPlaneDuplicates:
    """Accepted duplicate pairs (rows index the input arrays) and the per-plane-pair settings."""

    kept: np.ndarray  # (pairs,) row kept
    dropped: np.ndarray  # (pairs,) row dropped
    distance_um: np.ndarray  # (pairs,) xy centroid distance after the plane offset (um)
    correlation: np.ndarray  # (pairs,) Pearson r of the two smoothed, time-aligned traces
    plane_offset_um: np.ndarray  # (planes - 1, 2) (dy, dx) of plane p+1's coordinates relative to plane p (um)
    threshold: np.ndarray  # (planes - 1,) correlation a pair of planes p, p+1 needed (1)


def trace_snr(traces: np.ndarray) -> np.ndarray:
    """Suite2P's SNR proxy ``1 - var(diff(x)) / (2 var(x))`` per row of (rois, frames)."""
    x = np.asarray(traces, dtype=np.float64)
    var = x.var(axis=1)
    return np.where(var > 0, 1.0 - 0.5 * np.diff(x, axis=1).var(axis=1) / np.where(var > 0, var, 1.0), 0.0)


def _standardised(x: np.ndarray) -> np.ndarray:
    x = x - x.mean(axis=-1, keepdims=True)
    norm = np.linalg.norm(x, axis=-1, keepdims=True)
    return x / np.where(norm > 0, norm, 1.0)


def plane_offset(xy_a: np.ndarray, xy_b: np.ndarray, *, max_offset: float, bandwidth: float) -> np.ndarray:
    """Constant (dy, dx) from points ``xy_a`` (n, 2) to ``xy_b`` (m, 2) (same units): the mode of
    the displacements ``b - a`` shorter than ``max_offset`` (the displacement with the most others
    within ``bandwidth``), refined as the median of those within ``bandwidth`` of it, then of
    those within ``bandwidth / 2`` of that; (0, 0) when no displacement is that short."""
    pairs = cKDTree(xy_a).query_ball_tree(cKDTree(xy_b), r=max_offset)
    ia = np.repeat(np.arange(len(xy_a)), [len(js) for js in pairs])
    if ia.size == 0:
        return np.zeros(2)
    d = xy_b[np.concatenate([np.asarray(js, np.int64) for js in pairs])] - xy_a[ia]
    tree = cKDTree(d)
    density = np.array([len(n) for n in tree.query_ball_point(d, r=bandwidth)])
    mode = d[np.argmax(density)]
    for radius in (bandwidth, bandwidth / 2):  # the second pass leaves out most unrelated pairs
        mode = np.median(d[np.linalg.norm(d - mode, axis=1) <= radius], axis=0)
    return mode


def find_cross_plane_duplicates(plane: np.ndarray, centroid_px: np.ndarray, spks: np.ndarray,
                                frame_times_s: np.ndarray, *, pixel_size_um: float, max_distance_um: float,
                                max_offset_um: float, min_correlation: float, null_percentile: float,
                                null_near_um: float, null_far_um: float) -> CrossPlaneDuplicates:
    """Duplicate pairs among ROIs with ``plane`` (n,), ``centroid_px`` (n, 2) (y, x) px and
    deconvolved activity ``spks`` (n, frames, finite); ``frame_times_s`` (planes, frames) s.
    Distances in um; module docstring for the rest."""
    plane = np.asarray(plane, dtype=np.int64)
    n_planes = int(frame_times_s.shape[0])
    xy_um = np.asarray(centroid_px, dtype=np.float64) * float(pixel_size_um)
    x = np.asarray(spks, dtype=np.float64)
    z = _standardised(x)
    snr = trace_snr(x)
    offsets = np.zeros((max(n_planes - 1, 0), 2))
    thresholds = np.full(max(n_planes - 1, 0), np.nan)
    cand_a, cand_b, corr, dist = [], [], [], []
    for p in range(n_planes - 1):
        a, b = np.flatnonzero(plane == p), np.flatnonzero(plane == p + 1)
        if a.size == 0 or b.size == 0:
            continue
        offsets[p] = plane_offset(xy_um[a], xy_um[b], max_offset=max_offset_um,
                                  bandwidth=max_distance_um)
        xb = xy_um[b] - offsets[p]
        za = _standardised(np.stack([np.interp(frame_times_s[p + 1], frame_times_s[p], x[i]) for i in a]))

        lists = cKDTree(xy_um[a]).query_ball_tree(cKDTree(xb), r=max(null_far_um, max_distance_um))
        ia = np.repeat(np.arange(a.size), [len(js) for js in lists])
        ib = np.concatenate([np.asarray(js, np.int64) for js in lists]) if ia.size else ia
        d = np.linalg.norm(xy_um[a][ia] - xb[ib], axis=1)
        r = np.einsum("ij,ij->i", za[ia], z[b][ib])
        null = (d >= null_near_um) & (d <= null_far_um)
        thresholds[p] = max(min_correlation,
                            float(np.percentile(r[null], null_percentile)) if null.any() else -1.0)
        sel = (d <= max_distance_um) & (r >= thresholds[p])
        cand_a.append(a[ia[sel]]), cand_b.append(b[ib[sel]]), corr.append(r[sel]), dist.append(d[sel])
    cand_a = np.concatenate(cand_a) if cand_a else np.zeros(0, np.int64)
    cand_b = np.concatenate(cand_b) if cand_b else np.zeros(0, np.int64)
    corr = np.concatenate(corr) if corr else np.zeros(0)
    dist = np.concatenate(dist) if dist else np.zeros(0)
    used = np.zeros(len(plane), bool)
    kept, dropped, ds, rs = [], [], [], []
    for k in np.argsort(-corr, kind="stable"):
        i, j = cand_a[k], cand_b[k]
        if used[i] or used[j]:
            continue
        used[i] = used[j] = True
        keep, drop = (i, j) if snr[i] >= snr[j] else (j, i)
        kept.append(keep), dropped.append(drop), rs.append(corr[k]), ds.append(dist[k])
    return CrossPlaneDuplicates(kept=np.asarray(kept, np.int64), dropped=np.asarray(dropped, np.int64),
                                distance_um=np.asarray(ds, float), correlation=np.asarray(rs, float),
                                plane_offset_um=offsets, threshold=thresholds)
