"""Cells seen in two adjacent imaging planes: find the duplicate ROIs and keep the better one.

With nuclear labelling and a plane spacing close to a nucleus's axial extent, a nucleus
between two focal planes is detected in both (NLP4Neuro, Methods: planes ~7 um apart with
~6 um H2B-GCaMP nuclei and a several-um axial PSF). Counting it twice gives the decoders two
copies of one neuron. Evidence that ROI ``i`` of plane ``p`` and ROI ``j`` of plane ``p + 1``
are one cell, weighed per pair of planes by a two-class mixture whose *unrelated* class is
measured on the data rather than assumed:

* **position**: the same xy. Each plane is registered to its own template, so the two
  planes' ROI coordinates differ by a constant offset (the templates' positions); it is
  estimated per pair of planes as the mode of the displacements between ROIs of the two
  planes within ``max_offset_um`` (copies of one cell all share it, unrelated cells spread
  uniformly), refined as the median of the displacements near the mode. After removing it,
  every pair of ROIs closer than ``max_distance_um`` is a *candidate*. Unrelated cells of the
  two planes lie independently of each other, so their distance density is that of a uniform
  point process, ``2 pi d rho``, with the pair density ``rho`` (pairs per um^2) counted on
  *null pairs* ``null_near_um`` to ``null_far_um`` apart (2-4 nuclear diameters: certainly
  different cells). This fixes the expected number of unrelated candidates, ``rho pi R^2``;
  the rest are copies, whose distance (centroid error of two ROIs) is Rayleigh with a scale
  fitted to the data, except for a fitted share whose centroids are grossly off (a neighbour
  in one footprint), spread over the disc like unrelated pairs and told apart by activity.
* **activity**: the same calcium events. Traces are the neuropil-corrected fluorescence
  ``F - r Fneu``, high-passed by subtracting a Gaussian low-pass of sd ``highpass_s`` (z-drift
  and bleaching fade one copy while the other brightens: opposite slow trends that are not
  activity; on the realistic preset this separated copies from null pairs better than Suite2P's
  ``spks`` or the high-passed dF/F, whose running baseline divides the fading copy's noise up), and the lower
  plane's trace is linearly interpolated to the upper plane's frame times (planes are
  acquired at different times within a volume). Similarity is the Pearson r. Its density for
  unrelated pairs is the histogram of the null pairs' r (they share neuropil, stimulus drive
  and noise structure with unrelated neighbours); for copies it is a normal whose mean is
  proportional to ``sqrt(snr_a snr_b)``, the two traces' SNR proxies (below): each copy's trace
  is its cell's signal plus its own noise, so their r is about the product of the two signal
  amplitudes' shares, and a dim, noisy copy (the plane far from the nucleus's centre, or faded
  by z-drift) correlates less with its partner however truly it is one cell. On the realistic
  preset (200 volumes, seeds 4/5/6, with mean-image nuclei) this took the true pairs merged from
  87.3/87.0/87.8 % (constant mean) to 92.1/87.0/93.9 % and the copies' r sd from 0.13-0.18 to 0.08.

The copy-class parameters (Rayleigh scale, gross-error share, the normal's mean per unit
``sqrt(snr_a snr_b)`` and its sd) are fitted by EM on the
candidates with the unrelated class held at its measured share and densities; a candidate is
a duplicate when its posterior probability of being a copy is >= ``min_posterior`` (0.5: the
Bayes decision at equal costs). Pairs are accepted greedily from the highest posterior, each
ROI in at most one pair (so a nucleus seen in three thin planes keeps one ROI per two planes).
Of a pair the ROI with the higher SNR of its high-passed trace (``1 - var(diff(x)) / (2
var(x))``, as Suite2P's ``snr``: near 1 for slow calcium signal, near 0 for white noise) is
kept: the plane closer to the nucleus's centre sees it brighter and less noisy.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.spatial import cKDTree


@dataclass(frozen=True)
class CrossPlaneDuplicates:
    """Accepted duplicate pairs (rows index the input arrays) and the per-plane-pair settings."""

    kept: np.ndarray  # (pairs,) row kept
    dropped: np.ndarray  # (pairs,) row dropped
    distance_um: np.ndarray  # (pairs,) xy centroid distance after the plane offset (um)
    correlation: np.ndarray  # (pairs,) Pearson r of the two high-passed, time-aligned traces
    posterior: np.ndarray  # (pairs,) probability that the pair is one cell under the fitted mixture
    plane_offset_um: np.ndarray  # (planes - 1, 2) (dy, dx) of plane p+1's coordinates relative to plane p (um)
    model: np.ndarray  # (planes - 1, 6) per pair of planes: candidates, expected unrelated candidates,
    # copies' centroid-distance Rayleigh scale (um), copies' mean r per unit sqrt(snr_a snr_b) and the sd of
    # their r about it, share of copies with a
    # uniform (gross) centroid error (NaN where not fitted)

    MODEL_COLUMNS = ("candidates", "expected_unrelated", "copy_distance_scale_um", "copy_r_per_snr", "copy_r_sd",
                     "copy_gross_error_share")


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


def highpass(traces: np.ndarray, sd_frames: float) -> np.ndarray:
    """``traces`` (rois, frames) minus their Gaussian low-pass of sd ``sd_frames`` (reflected edges)."""
    x = np.asarray(traces, dtype=np.float64)
    return x - gaussian_filter1d(x, sd_frames, axis=-1, mode="reflect") if sd_frames > 0 else x


R_BINS = np.linspace(-1.0, 1.0, 101)  # histogram of the null pairs' r (bin 0.02)


def _null_density(r_null: np.ndarray):
    """Density of r for unrelated pairs: histogram of the null pairs' r smoothed by 2 bins, with
    a floor of half a pair spread over [-1, 1] (no density of exactly 0 above the largest null r)."""
    h, _ = np.histogram(np.clip(r_null, -1, 1), bins=R_BINS)
    h = gaussian_filter1d(h.astype(float), 2.0, mode="constant") + 0.5 / h.size
    h /= h.sum() * np.diff(R_BINS)
    centres = 0.5 * (R_BINS[1:] + R_BINS[:-1])
    return lambda r: np.interp(r, centres, h)


def _copy_density(r: np.ndarray, expected_r: np.ndarray, sd: float, min_mean: float) -> np.ndarray:
    """Normal density (sd ``sd``) of the copies' r about ``expected_r`` floored at ``min_mean``:
    copies share their cell's activity, so even a pair whose traces' SNR proxies say little
    signal is expected above the null's bulk (else position alone would merge any quiet pair)."""
    mean = np.maximum(expected_r, min_mean)
    return np.exp(-0.5 * ((r - mean) / sd) ** 2) / (sd * np.sqrt(2 * np.pi))


def copy_posterior(d: np.ndarray, r: np.ndarray, r_null: np.ndarray, expected_unrelated: float,
                   radius: float, signal_share: np.ndarray | None = None,
                   iterations: int = 200) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """Posterior probability that each candidate (distance ``d`` <= ``radius``, correlation ``r``)
    is a copy: unrelated pairs have distance density ``2 d / radius^2`` and the density of
    ``r_null``, with ``expected_unrelated`` of them among the candidates; copies a normal r
    (mean m x ``signal_share``, sd v; ``signal_share`` (candidates,) in [0, 1], default 1: the
    expected r of a copy pair up to the factor m) and a distance that is Rayleigh (scale s) for
    a share 1 - t and, for the share t whose ROI centroids are grossly off (a neighbour in the
    footprint), uniform in the disc like unrelated pairs (such copies are told apart by their
    activity alone); m, v, s, t fitted by EM. Copies are cells whose activity is shared, so their
    mean r (over the candidates, weighted by posterior) is held at least 2 sd above the null's
    mean, and a candidate whose r is likelier under the null than under the copies gets posterior
    0 (its position alone cannot make it a copy); a pair's expected copy r m x ``signal_share``
    is floored at the same bound. Returns posteriors, (s, m, v, t)."""
    n = d.size
    if n == 0:
        return np.zeros(0), (np.nan, np.nan, np.nan, np.nan)
    share = np.ones(n) if signal_share is None else np.asarray(signal_share, dtype=np.float64)
    share0 = min(max(expected_unrelated / n, 1e-3), 1.0 - 1e-3)
    g0 = _null_density(r_null)(r)
    uniform = 2.0 * np.maximum(d, 1e-9) / radius**2
    f0 = uniform * g0
    min_mean = float(np.mean(r_null) + 2.0 * np.std(r_null))  # copies share activity: above the null's bulk
    scale, sd, tail = radius / 4.0, max(float(np.std(r)), 0.05), 0.1
    slope = float(np.percentile(r, 90)) / max(float(np.percentile(share, 90)), 1e-3)
    post = np.full(n, 0.5)
    for _ in range(iterations):
        rayleigh = d / scale**2 * np.exp(-0.5 * (d / scale) ** 2) / (1.0 - np.exp(-0.5 * (radius / scale) ** 2))
        normal = _copy_density(r, slope * share, sd, min_mean)
        core, spread = (1.0 - tail) * rayleigh, tail * uniform
        f1 = (1.0 - share0) * (core + spread) * normal
        new = f1 / (f1 + share0 * f0)
        w = new.sum()
        if w < 1e-6:
            return np.zeros(n), (np.nan, np.nan, np.nan, np.nan)
        in_core = new * core / np.maximum(core + spread, 1e-300)
        tail = min(max(1.0 - float(in_core.sum()) / w, 1e-3), 0.5)
        scale = max(float(np.sqrt(0.5 * np.sum(in_core * d**2) / max(in_core.sum(), 1e-9))), 1e-3 * radius)
        slope = float(np.sum(new * r * share) / max(float(np.sum(new * share**2)), 1e-12))
        slope = max(slope, min_mean / max(float(np.sum(new * share)) / w, 1e-3))
        sd = max(float(np.sqrt(np.sum(new * (r - np.maximum(slope * share, min_mean)) ** 2) / w)), 0.02)
        if np.max(np.abs(new - post)) < 1e-6:
            post = new
            break
        post = new
    normal = _copy_density(r, slope * share, sd, min_mean)
    post = np.where(normal > g0, post, 0.0)  # the activity alone must favour a copy: position cannot merge
    return post, (scale, slope, sd, tail)


def find_cross_plane_duplicates(plane: np.ndarray, centroid_px: np.ndarray, traces: np.ndarray,
                                frame_times_s: np.ndarray, *, pixel_size_um: float, max_distance_um: float,
                                max_offset_um: float, highpass_s: float, min_posterior: float,
                                null_near_um: float, null_far_um: float) -> CrossPlaneDuplicates:
    """Duplicate pairs among ROIs with ``plane`` (n,), ``centroid_px`` (n, 2) (y, x) px and
    fluorescence ``traces`` (n, frames, finite; neuropil-corrected F in the neural file); ``frame_times_s`` (planes, frames) s. Distances in um;
    module docstring for the rest."""
    plane = np.asarray(plane, dtype=np.int64)
    n_planes = int(frame_times_s.shape[0])
    xy_um = np.asarray(centroid_px, dtype=np.float64) * float(pixel_size_um)
    period = float(np.median(np.diff(frame_times_s, axis=1))) if frame_times_s.shape[1] > 1 else 1.0
    x = highpass(traces, highpass_s / period)
    z = _standardised(x)
    snr = trace_snr(x)
    offsets = np.zeros((max(n_planes - 1, 0), 2))
    model = np.full((max(n_planes - 1, 0), 6), np.nan)
    cand_a, cand_b, corr, dist, prob = [], [], [], [], []
    for p in range(n_planes - 1):
        a, b = np.flatnonzero(plane == p), np.flatnonzero(plane == p + 1)
        if a.size == 0 or b.size == 0:
            continue
        offsets[p] = plane_offset(xy_um[a], xy_um[b], max_offset=max_offset_um, bandwidth=max_distance_um / 2)
        xb = xy_um[b] - offsets[p]
        za = _standardised(np.stack([np.interp(frame_times_s[p + 1], frame_times_s[p], x[i]) for i in a]))
        lists = cKDTree(xy_um[a]).query_ball_tree(cKDTree(xb), r=max(null_far_um, max_distance_um))
        ia = np.repeat(np.arange(a.size), [len(js) for js in lists])
        ib = np.concatenate([np.asarray(js, np.int64) for js in lists]) if ia.size else ia
        d = np.linalg.norm(xy_um[a][ia] - xb[ib], axis=1)
        r = np.einsum("ij,ij->i", za[ia], z[b][ib])
        null = (d >= null_near_um) & (d <= null_far_um)
        near = d <= max_distance_um
        if not null.any():
            continue
        density = null.sum() / (np.pi * (null_far_um**2 - null_near_um**2))  # unrelated pairs per um^2
        expected = density * np.pi * max_distance_um**2
        signal_share = np.sqrt(np.clip(snr[a][ia[near]], 0, 1) * np.clip(snr[b][ib[near]], 0, 1))
        post, fitted = copy_posterior(d[near], r[near], r[null], expected, max_distance_um, signal_share)
        model[p] = (near.sum(), expected, *fitted)
        sel = post >= min_posterior
        idx = np.flatnonzero(near)[sel]
        cand_a.append(a[ia[idx]]), cand_b.append(b[ib[idx]]), corr.append(r[idx]), dist.append(d[idx])
        prob.append(post[sel])
    cand_a = np.concatenate(cand_a) if cand_a else np.zeros(0, np.int64)
    cand_b = np.concatenate(cand_b) if cand_b else np.zeros(0, np.int64)
    corr = np.concatenate(corr) if corr else np.zeros(0)
    dist = np.concatenate(dist) if dist else np.zeros(0)
    prob = np.concatenate(prob) if prob else np.zeros(0)
    used = np.zeros(len(plane), bool)
    kept, dropped, ds, rs, ps = [], [], [], [], []
    for k in np.argsort(-prob, kind="stable"):
        i, j = cand_a[k], cand_b[k]
        if used[i] or used[j]:
            continue
        used[i] = used[j] = True
        keep, drop = (i, j) if snr[i] >= snr[j] else (j, i)
        kept.append(keep), dropped.append(drop), rs.append(corr[k]), ds.append(dist[k]), ps.append(prob[k])
    return CrossPlaneDuplicates(kept=np.asarray(kept, np.int64), dropped=np.asarray(dropped, np.int64),
                                distance_um=np.asarray(ds, float), correlation=np.asarray(rs, float),
                                posterior=np.asarray(ps, float), plane_offset_um=offsets, model=model)
