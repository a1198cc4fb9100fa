"""Synthetic larval-zebrafish recording: two-photon plane TIFFs, 200 Hz tail log, OMR stimulus log.

Ground truth for the NLP4Neuro reproduction (Tg(elavl3:H2B-GCaMP6s), volumetric two-photon
imaging of mid- and hindbrain, head-fixed fish with a freely moving tail, optomotor
stimuli). :func:`simulate_fish` writes the logs the pipeline reads and, separately, an HDF5
ground-truth file that only tests and validation stages open; :func:`render_plane` then
writes each plane's raw stack from it (one job per plane); :func:`generate_fish` does both.

Generative model (all processes live in continuous time on one rig clock, in seconds)
--------------------------------------------------------------------------------------
* **Stimulus.** From ``stimulus_start_s`` the screen cycles through the 8 directions
  0, 45, ..., 315 deg; each direction is a static epoch (grating re-orients, no motion)
  followed by a moving epoch. Direction convention: fish-centred, seen from above,
  0 = tail-to-head (forward) motion, angles increase counter-clockwise, so 90 = motion
  towards the fish's left and 270 = towards the fish's right.
* **Anatomy.** Image rows run rostral -> caudal, columns run from the fish's left to its
  right (dorsal view, head up); the midline is near the central column. Pretectum (Pt)
  is rostral and bilateral, nMLF small and paramedian at mid rostro-caudal level,
  hindbrain (Hb) caudal; everything else is ``other``. Neurons are nuclear (H2B) disks
  of ~6 um diameter with logistic edges, placed by dart throwing with a minimum distance.
* **Events and calcium.** Each neuron emits calcium events (spike bursts) as a point
  process; an event of amplitude ``a`` adds ``a * k(t - t_event)`` to dF/F with the
  GCaMP6s-like kernel ``k(t) = (1 - exp(-t/tau_rise)) * exp(-t/tau_decay) / peak``
  (peak-normalised, see :func:`calcium_kernel`). Roles: ``noise`` neurons fire as
  homogeneous Poisson processes; ``stimulus`` neurons are direction tuned (von Mises)
  and fire during moving epochs (latency, adapting onset transient) plus a low
  spontaneous rate; ``driver_left``/``driver_right`` neurons (in left/right Pt) fire with
  a rate = base + directional stimulus drive + softplus of a slow spontaneous latent
  (one per side), so behaviour is not a deterministic function of the stimulus.
* **Tail.** The driver event trains of each side are low-pass filtered (exponential,
  ``motor_integration_tau_s``) into a drive D_left(t), D_right(t) (Hz per driver) and
  delayed by ``motor_delay_s``. Bout hazard = base + gain * softplus((mean drive -
  threshold)/scale); bout side is right with probability sigmoid((D_R - D_L)/scale);
  vigour and turn bias grow with the drive. Each bout (0.2-0.5 s) is a travelling wave
  at 20-30 Hz (phase lag and amplitude increasing rostral -> caudal) plus a turn bias
  towards the bout side, so the frame-averaged tail carries the driver signal.
  Angle convention: ``theta_00..theta_05`` are segment angles (rad) relative to the body
  axis, rostral -> caudal; POSITIVE = bent towards the fish's RIGHT side.
* **Image formation** (per plane p, volume v, at that frame's own acquisition time t):
  scene = bleach(t) * [background_p(y,x) * (1 + slow fluctuation(t)) + neuropil_p(y,x)
  * (1 + gain * mean dF/F of the plane) + sum_n footprint_n * F0_n * (1 + dF/F_n(t))]
  in expected photons per pixel; warped by the motion field (cubic spline,
  scipy.ndimage.map_coordinates, on the noise-free scene); then Poisson shot noise,
  ``adu = offset + adu_per_photon * photons + N(0, read_noise)``, rounded, clipped to uint16.
* **Motion** (continuous time, sampled at every frame's time, so planes of one volume
  differ): rigid translation = Ornstein-Uhlenbeck drift + occasional jumps that relax
  slowly + small transients during swim bouts; non-rigid part = zero-mean OU values on a
  coarse control grid, upsampled with cubic B-spline interpolation.

Motion sign convention (also stored as attr ``sign_convention`` of ``/motion``)
-------------------------------------------------------------------------------
The displacement d = (dy, dx) in pixels means: **content observed at (y, x) came from the
reference (unmoved) position (y - dy, x - dx)**, i.e. the brain moved by +d
(observed(y, x) = reference(y - dy(y, x), x - dx(y, x)), d evaluated at observed pixels).
A registration algorithm must shift the observed frame by -d to undo it. The full field
is rigid + non-rigid; :func:`displacement_field` and :func:`patch_mean_shift` evaluate it.

Truth-file layout: see :func:`simulate_fish` (datasets carry ``units`` and
``description`` attrs). String datasets are UTF-8: read them with ``ds.asstr()[()]``.
"""

from __future__ import annotations

import json
import logging
import math

import h5py
import numpy as np
import pandas as pd
import tifffile
from scipy import ndimage, signal, sparse
from tqdm import tqdm

from pipeline.io.atomic import atomic_paths
from pipeline.io.h5 import write_dataset
from pipeline.io.region_mask import write_region_mask
from pipeline.synth.config import ZebrafishSynthParams
from pipeline.seeding import (
    rng_for,  # rng_for(seed, *keys) = default_rng(derive_seed(seed, *keys))
)

log = logging.getLogger(__name__)

GENERATOR_NAME = "pipeline.synth.zebrafish"
GENERATOR_VERSION = "1.1.0"

N_SEGMENTS = 6
THETA_COLUMNS = [f"theta_{k:02d}" for k in range(N_SEGMENTS)]
TAIL_COLUMNS = ["t", "frame", *THETA_COLUMNS]
FRAME_TIME_COLUMNS = ["volume", "plane", "t"]
STIMULUS_COLUMNS = ["t_start", "t_end", "epoch", "direction_deg"]
DIRECTIONS_DEG = [0, 45, 90, 135, 180, 225, 270, 315]
REGIONS = ("Pt", "nMLF", "Hb", "other")
ROLES = ("driver_left", "driver_right", "stimulus", "noise")
SIGN_CONVENTION = (
    "content observed at (y, x) came from reference (y - dy, x - dx); "
    "observed(y, x) = reference(y - dy(y, x), x - dx(y, x)); components ordered (dy, dx), px"
)
THETA_CONVENTION = (
    "segment angle relative to body axis, rad, segments rostral -> caudal; "
    "positive = bent towards the fish's right"
)
DIRECTION_CONVENTION = (
    "fish-centred, seen from above: 0 = tail-to-head motion, counter-clockwise, "
    "90 = towards fish's left, 270 = towards fish's right"
)
# Preferred stimulus direction of each driver side (deg): drivers follow the OMR turn side.
_DRIVER_PREF_DEG = {"left": 90.0, "right": 270.0}


# --------------------------------------------------------------------------------------
# public helpers
# --------------------------------------------------------------------------------------


def calcium_kernel(t, rise_tau_s: float, decay_tau_s: float) -> np.ndarray:
    """Peak-normalised GCaMP event kernel ``(1 - e^{-t/rise}) e^{-t/decay}`` (0 for t <= 0).

    For t >> rise_tau_s it decays as ``exp(-t/decay_tau_s)``.
    """
    t = np.asarray(t, dtype=float)
    tau2 = 1.0 / (1.0 / rise_tau_s + 1.0 / decay_tau_s)
    t_peak = rise_tau_s * math.log1p(decay_tau_s / rise_tau_s)
    peak = math.exp(-t_peak / decay_tau_s) - math.exp(-t_peak / tau2)
    tp = np.maximum(t, 0.0)
    k = (np.exp(-tp / decay_tau_s) - np.exp(-tp / tau2)) / peak
    return np.where(t > 0, k, 0.0)


def grid_interpolation_weights(n_nodes: int, n_px: int) -> np.ndarray:
    """(n_px, n_nodes) matrix mapping control-node values to pixel values along one axis.

    Nodes sit at pixel coordinates ``linspace(0, n_px - 1, n_nodes)``; interpolation is a
    cubic B-spline (``scipy.ndimage.map_coordinates(order=3, mode='nearest')``) at the
    fractional node index. The 2-D field is the tensor product ``Wy @ G @ Wx.T``.
    """
    if n_nodes == 1:
        return np.ones((n_px, 1))
    u = np.arange(n_px, dtype=float) * (n_nodes - 1) / max(n_px - 1, 1)
    eye = np.eye(n_nodes)
    return np.stack(
        [ndimage.map_coordinates(eye[j], [u], order=3, mode="nearest") for j in range(n_nodes)],
        axis=1,
    )


def _field_from_grid(grid: np.ndarray, wy: np.ndarray, wx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """grid (gy, gx, 2) -> (dy, dx), each (Ly, Lx): ``Wy @ G[..., c] @ Wx.T`` written as a
    sum of outer products (tiny-K matmuls are slow in threaded BLAS)."""
    a = np.einsum("yj,jxc->yxc", wy, grid)  # (Ly, gx, 2)
    dy = np.zeros((wy.shape[0], wx.shape[0]))
    dx = np.zeros_like(dy)
    for j in range(wx.shape[1]):
        dy += np.multiply.outer(a[:, j, 0], wx[:, j])
        dx += np.multiply.outer(a[:, j, 1], wx[:, j])
    return dy, dx


def displacement_field(truth_path, plane: int, volume: int, *, include_rigid: bool = True) -> np.ndarray:
    """Full-resolution displacement (Ly, Lx, 2) = (dy, dx) in px of one frame, from the truth file.

    Sign convention: content observed at (y, x) came from reference (y - dy, x - dx).
    With ``include_rigid`` (default) this is rigid + per-line (fast bout motion) + non-rigid,
    else non-rigid only. The bidirectional phase (``/motion/bidi_phase_px``) is a scan
    artefact, not motion, and is not included.
    """
    with h5py.File(truth_path, "r") as f:
        m = f["motion"]
        grid = np.asarray(m["nonrigid_grid_px"][plane, volume], dtype=float)
        rigid = np.asarray(m["rigid_shift_px"][plane, volume], dtype=float)
        line = np.asarray(m["line_shift_px"][plane, volume], dtype=float)
        ly, lx = int(f.attrs["frame_height_px"]), int(f.attrs["frame_width_px"])
    wy = grid_interpolation_weights(grid.shape[0], ly)
    wx = grid_interpolation_weights(grid.shape[1], lx)
    field = np.stack(_field_from_grid(grid, wy, wx), axis=-1)
    if include_rigid:
        field = field + rigid[None, None, :] + line[:, None, :]
    return field


def patch_mean_shift(truth_path, plane: int, volume: int, y0: int, y1: int, x0: int, x1: int,
                     *, include_rigid: bool = True) -> tuple[float, float]:
    """Mean (dy, dx) in px of the displacement over rows ``y0:y1`` and columns ``x0:x1``
    (half-open, like Python slices) of one frame; same sign convention as
    :func:`displacement_field`."""
    field = displacement_field(truth_path, plane, volume, include_rigid=include_rigid)
    patch = field[y0:y1, x0:x1]
    if patch.size == 0:
        raise ValueError(f"empty patch rows {y0}:{y1}, cols {x0}:{x1}")
    return float(patch[..., 0].mean()), float(patch[..., 1].mean())


# --------------------------------------------------------------------------------------
# random processes
# --------------------------------------------------------------------------------------


def _softplus(x):
    return np.logaddexp(0.0, x)


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * np.asarray(x, dtype=float)))


def _lognormal(rng, median, cv, size):
    sigma = math.sqrt(math.log1p(cv * cv))
    return median * np.exp(sigma * rng.standard_normal(size))


def _ou_regular(rng, n: int, dt: float, tau: float, sd: float, k: int = 1) -> np.ndarray:
    """k independent stationary OU processes on a regular grid, shape (n, k)."""
    a = math.exp(-dt / tau)
    b = sd * math.sqrt(1.0 - a * a)
    x0 = sd * rng.standard_normal(k)
    xi = rng.standard_normal((n, k))
    out = signal.lfilter([b], [1.0, -a], xi, axis=0, zi=(a * x0)[None, :])[0]
    return out


def _ou_irregular(rng, times: np.ndarray, tau: float, sd: float, shape: tuple[int, ...]) -> np.ndarray:
    """Stationary OU sampled exactly at increasing ``times``; returns (len(times), *shape)."""
    n = len(times)
    out = np.empty((n, *shape))
    x = sd * rng.standard_normal(shape)
    prev = times[0]
    xi = rng.standard_normal((n, *shape))
    for i in range(n):
        a = math.exp(-(times[i] - prev) / tau)
        x = a * x + sd * math.sqrt(max(1.0 - a * a, 0.0)) * xi[i]
        out[i] = x
        prev = times[i]
    return out


def _bout_fast_motion(times: np.ndarray, b_t, b_dur, b_freq, vigour, rng, p: "ZebrafishSynthParams") -> np.ndarray:
    """Brain displacement (..., 2) (dy, dx) px from swim bouts at ``times`` (s, any shape).

    Per bout k (onset b_t, duration b_dur, beat frequency b_freq, vigour):
    a shake ``bout_shake_px * vigour * sin(2 pi f tau) * sin(pi tau / dur)`` along a mostly
    lateral direction during the bout, and a jump ``bout_jump_px * vigour`` in a random
    direction that rises over the bout as ``(1 - cos(pi tau / dur)) / 2`` and relaxes
    afterwards as ``exp(-(tau - dur) / bout_jump_relax_s)`` (tau = t - onset).
    Zero when both amplitudes are 0 (no random numbers are drawn then).
    """
    out = np.zeros((*np.shape(times), 2))
    nb = len(b_t)
    if nb == 0 or (p.bout_shake_px <= 0 and p.bout_jump_px <= 0):
        return out
    shake_ang = 0.15 * rng.standard_normal(nb)  # radians from the lateral (x) axis
    jump_ang = rng.uniform(0, 2 * np.pi, nb)
    flat_t = np.asarray(times, float).ravel()
    flat = out.reshape(-1, 2)
    tail = b_dur + 6.0 * p.bout_jump_relax_s
    for k in range(nb):
        sel = np.flatnonzero((flat_t >= b_t[k]) & (flat_t < b_t[k] + tail[k]))
        if sel.size == 0:
            continue
        tau = flat_t[sel] - b_t[k]
        during = tau < b_dur[k]
        shake = np.where(during, np.sin(2 * np.pi * b_freq[k] * tau) * np.sin(np.pi * np.minimum(tau / b_dur[k], 1)), 0.0)
        shake *= p.bout_shake_px * vigour[k]
        jump = np.where(during, 0.5 * (1 - np.cos(np.pi * tau / b_dur[k])),
                        np.exp(-np.maximum(tau - b_dur[k], 0) / p.bout_jump_relax_s)) * p.bout_jump_px * vigour[k]
        flat[sel, 0] += shake * math.sin(shake_ang[k]) + jump * math.sin(jump_ang[k])
        flat[sel, 1] += shake * math.cos(shake_ang[k]) + jump * math.cos(jump_ang[k])
    return out


# --------------------------------------------------------------------------------------
# stimulus
# --------------------------------------------------------------------------------------


def _stimulus_schedule(p: ZebrafishSynthParams, t_end: float, rng) -> pd.DataFrame:
    rows = []
    t = p.imaging_start_s + p.stimulus_start_s
    while t < t_end:
        order = list(DIRECTIONS_DEG)
        if p.shuffle_directions:
            order = [order[i] for i in rng.permutation(len(order))]
        for d in order:
            for epoch, dur in (("static", p.static_duration_s), ("moving", p.moving_duration_s)):
                if t >= t_end:
                    break
                rows.append((t, min(t + dur, t_end), epoch, int(d)))
                t += dur
    return pd.DataFrame(rows, columns=STIMULUS_COLUMNS)


def _moving_profile(t_rel, duration, latency, adapt_tau, sustained):
    """Response envelope to a moving epoch (t_rel from motion onset)."""
    tt = np.asarray(t_rel, dtype=float) - latency
    on = (tt >= 0) & (tt < duration)
    return np.where(on, sustained + (1 - sustained) * np.exp(-np.maximum(tt, 0) / adapt_tau), 0.0)


def _von_mises(delta_deg, kappa):
    return np.exp(kappa * (np.cos(np.deg2rad(delta_deg)) - 1.0))


# --------------------------------------------------------------------------------------
# anatomy
# --------------------------------------------------------------------------------------


def _region_of(u: np.ndarray, w: np.ndarray) -> np.ndarray:
    """u = row / Ly (rostral 0 -> caudal 1); w = (col - midline) / Lx."""
    aw = np.abs(w)
    region = np.full(u.shape, "other", dtype=object)
    pt = (u >= 0.04) & (u < 0.36) & (aw >= 0.09) & (aw < 0.38)
    nmlf = (u >= 0.30) & (u < 0.50) & (aw >= 0.012) & (aw < 0.09)
    hb = (u >= 0.55) & (aw < 0.42)
    region[pt] = "Pt"
    region[nmlf] = "nMLF"
    region[hb] = "Hb"
    return region


_REGION_DENSITY = {"Pt": 1.6, "nMLF": 1.2, "Hb": 1.0, "other": 0.6}


def _place_neurons(rng, n: int, ly: int, lx: int, midline: float, radii_px: np.ndarray,
                   min_dist: float, occupied: np.ndarray | None = None) -> np.ndarray:
    """Dart throwing with region density and a minimum centre distance (also from the
    ``occupied`` (k, 2) centres already in the plane); returns (n, 2) y, x."""
    pts: list[tuple[float, float]] = [] if occupied is None else [tuple(c) for c in occupied]
    n_occupied = len(pts)
    n = n + n_occupied
    dist = min_dist
    attempts = 0
    while len(pts) < n:
        r = radii_px[len(pts) - n_occupied]
        margin = r + 1.0
        y = rng.uniform(margin, ly - 1 - margin)
        x = rng.uniform(margin, lx - 1 - margin)
        u, w = y / ly, (x - midline) / lx
        dens = 0.0 if abs(w) > 0.47 or abs(w) < 0.012 else _REGION_DENSITY[_region_of(np.array([u]), np.array([w]))[0]]
        attempts += 1
        if rng.uniform(0, 1.6) < dens:
            if not pts or np.min(np.hypot(*(np.array(pts) - (y, x)).T)) >= dist:
                pts.append((y, x))
                continue
        if attempts > 400 * max(n, 1):
            dist *= 0.9
            attempts = 0
            log.warning("zebrafish synth: crowded plane, relaxing min neuron distance to %.2f px", dist)
    return np.array(pts[n_occupied:], dtype=float).reshape(n - n_occupied, 2)


def axial_weight(dz_um, axial_fwhm_um: float) -> np.ndarray:
    """Relative brightness of a nucleus whose centre is ``dz_um`` from the focal plane:
    Gaussian of FWHM ``axial_fwhm_um`` (1 at dz = 0); all ones when the FWHM is 0 (no axial model)."""
    dz = np.asarray(dz_um, dtype=float)
    if axial_fwhm_um <= 0:
        return np.ones_like(dz)
    sigma = axial_fwhm_um / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    return np.exp(-0.5 * (dz / sigma) ** 2)


def _place_volume(rng, rng_axial, p: "ZebrafishSynthParams", n_planes: int, midline: float, pixel_um: float,
                  spacing_um: float, edge_px: float):
    """Neuron rows of every plane, ordered by plane.

    ``neurons_per_plane`` nuclei are placed in each plane by dart throwing. With an axial
    model (``axial_fwhm_um > 0``) each gets a depth uniform within +-spacing/2 of its plane;
    one whose axial weight in the adjacent plane is >= ``cross_plane_min_weight`` is also a
    row of that plane (same xy, a new cross-section footprint), linked by ``same_cell``. A
    downward twin is only added where no nucleus of the lower plane is closer than the
    minimum distance; otherwise the cell's depth is clipped so that it is not seen there.

    Returns plane (N,), centroid (N, 2) px, diameter (N,) um, z (N,) um, same_cell (N,)
    (row of the same cell in the other plane, -1 if none), footprint indices and weights.
    """
    ly, lx, n = p.frame_height_px, p.frame_width_px, p.neurons_per_plane
    min_dist = p.min_separation * p.nucleus_diameter_um / pixel_um
    reach_um = (p.axial_fwhm_um / (2.0 * math.sqrt(2.0 * math.log(2.0)))
                * math.sqrt(-2.0 * math.log(p.cross_plane_min_weight)))  # axial weight >= min within this
    rows_plane, rows_cen, rows_diam, rows_z, rows_twin, fp_idx, fp_w = [], [], [], [], [], [], []

    def add(pl, c, d_um, z, twin_of, rng_fp):
        idx, wt = _footprint(rng_fp, c[0], c[1], d_um / 2.0 / pixel_um, edge_px, p.nucleus_aspect_sd, ly, lx)
        rows_plane.append(pl), rows_cen.append(np.asarray(c, float)), rows_diam.append(d_um)
        rows_z.append(z), rows_twin.append(twin_of), fp_idx.append(idx), fp_w.append(wt)
        if twin_of >= 0:
            rows_twin[twin_of] = len(rows_plane) - 1
        return len(rows_plane) - 1

    incoming: list[int] = []  # rows of the previous plane that also appear in this one
    for pl in range(n_planes):
        d_um = np.clip(p.nucleus_diameter_um + p.nucleus_diameter_sd_um * rng.standard_normal(n),
                       0.5 * p.nucleus_diameter_um, 1.5 * p.nucleus_diameter_um)
        occupied = np.array([rows_cen[q] for q in incoming]).reshape(-1, 2)
        cen = _place_neurons(rng, n, ly, lx, midline, d_um / 2.0 / pixel_um, min_dist, occupied if incoming else None)
        home = [add(pl, cen[i], d_um[i], pl * spacing_um, -1, rng) for i in range(n)]
        for q in incoming:
            add(pl, rows_cen[q], rows_diam[q], rows_z[q], q, rng_axial)
        incoming = []
        if p.axial_fwhm_um <= 0:
            continue
        dz = rng_axial.uniform(-spacing_um / 2.0, spacing_um / 2.0, n)
        lower = [r for r, q in enumerate(rows_plane) if q == pl - 1]
        for i, row in enumerate(home):
            if dz[i] > 0 and pl + 1 < n_planes and spacing_um - dz[i] <= reach_um:
                incoming.append(row)
            elif dz[i] < 0 and pl > 0 and spacing_um + dz[i] <= reach_um:
                gap = np.min(np.hypot(*(np.array([rows_cen[r] for r in lower]) - cen[i]).T)) if lower else np.inf
                if gap >= min_dist:
                    add(pl - 1, cen[i], d_um[i], pl * spacing_um + dz[i], row, rng_axial)
                else:
                    dz[i] = -(spacing_um - reach_um) * 1.001
            rows_z[row] = pl * spacing_um + dz[i]
    plane = np.asarray(rows_plane, np.int64)
    order = np.argsort(plane, kind="stable")
    new_row = np.empty_like(order)
    new_row[order] = np.arange(len(order))
    twin = np.asarray(rows_twin, np.int64)[order]
    twin = np.where(twin >= 0, new_row[np.maximum(twin, 0)], -1)
    return (plane[order], np.array(rows_cen, float).reshape(-1, 2)[order], np.asarray(rows_diam, float)[order],
            np.asarray(rows_z, float)[order], twin, [fp_idx[i] for i in order], [fp_w[i] for i in order])


def _footprint(rng, cy, cx, radius_px, edge_px, aspect_sd, ly, lx):
    a = radius_px * math.exp(aspect_sd * rng.standard_normal())
    b = radius_px * radius_px / a
    phi = rng.uniform(0, math.pi)
    ext = int(math.ceil(max(a, b) + 4 * edge_px)) + 1
    y0, y1 = max(0, int(cy) - ext), min(ly, int(cy) + ext + 2)
    x0, x1 = max(0, int(cx) - ext), min(lx, int(cx) + ext + 2)
    yy, xx = np.mgrid[y0:y1, x0:x1]
    dy, dx = yy - cy, xx - cx
    c, s = math.cos(phi), math.sin(phi)
    uu, vv = c * dx + s * dy, -s * dx + c * dy
    rr = np.hypot(uu / a, vv / b) * radius_px  # elliptic radius in px
    w = _sigmoid((radius_px - rr) / edge_px)
    keep = w >= 0.02
    return (yy[keep] * lx + xx[keep]).astype(np.int64), w[keep]


def _smooth_field(rng, shape, sigma_px, cv=0.4):
    g = ndimage.gaussian_filter(rng.standard_normal(shape), sigma_px, mode="reflect")
    g /= g.std() + 1e-12
    return np.exp(cv * g - 0.5 * cv * cv)


# --------------------------------------------------------------------------------------
# calcium
# --------------------------------------------------------------------------------------


def _dff_at_times(event_t, event_a, event_local, n: int, times: np.ndarray,
                  p: ZebrafishSynthParams) -> np.ndarray:
    """dF/F (n, V) of n neurons sharing the increasing sample ``times`` (V,): exact kernel sums.

    ``event_local`` is each event's neuron index in 0..n-1. Uses the two-exponential form
    of the kernel and an exact recursion between samples (O(events + n * V)).
    """
    V = len(times)
    tau_d = p.calcium_decay_tau_s
    tau_2 = 1.0 / (1.0 / p.calcium_rise_tau_s + 1.0 / tau_d)
    t_peak = p.calcium_rise_tau_s * math.log1p(tau_d / p.calcium_rise_tau_s)
    peak = math.exp(-t_peak / tau_d) - math.exp(-t_peak / tau_2)
    out = np.zeros((n, V), dtype=np.float32)
    if n == 0 or V == 0:
        return out
    j = np.searchsorted(times, event_t, side="right")  # first sample strictly after the event
    ok = j < V
    en, et, ea, ej = event_local[ok], event_t[ok], event_a[ok], j[ok]
    lag = times[ej] - et
    flat = en * V + ej
    inc_d = np.bincount(flat, weights=ea * np.exp(-lag / tau_d), minlength=n * V).reshape(n, V)
    inc_2 = np.bincount(flat, weights=ea * np.exp(-lag / tau_2), minlength=n * V).reshape(n, V)
    dts = np.diff(times, prepend=times[0])
    ad, a2 = np.exp(-dts / tau_d), np.exp(-dts / tau_2)
    sd = np.zeros(n)
    s2 = np.zeros(n)
    for v in range(V):
        sd = sd * ad[v] + inc_d[:, v]
        s2 = s2 * a2[v] + inc_2[:, v]
        out[:, v] = (sd - s2) / peak
    return out


# --------------------------------------------------------------------------------------
# main entry point
# --------------------------------------------------------------------------------------


def simulate_fish(tail_log_path, stimulus_log_path, frame_times_path, region_mask_path, truth_path,
                  params: ZebrafishSynthParams, *, volume_rate_hz: float, n_planes: int,
                  pixel_size_um: float, plane_spacing_um: float, tail_rate_hz: float,
                  seed: int) -> None:
    """Simulate one synthetic fish and write the logs the pipeline reads
    (``tail_log.csv``, ``stimulus_log.csv``, ``frame_times.csv``), the anatomical region
    mask (``region_mask.tif``, format in :mod:`pipeline.io.region_mask`), and the ground truth
    HDF5 ``truth_path``, which also holds everything :func:`render_plane` needs to write
    each plane's raw stack (so planes render as independent jobs).

    Truth datasets (HDF5 paths; each has ``units`` and ``description`` attrs):

    - ``/timing/frame_times`` (n_planes, n_volumes) s.
    - ``/neurons/{plane, centroid_px (N,2 y,x), position_um (N,3 x,y,z), region, side, role,
      f0_photons, diameter_um, pref_direction_deg, tuning_kappa, peak_rate_hz, spont_rate_hz,
      footprint_indptr, footprint_pixel_index (flat y*Lx+x), footprint_weight}``;
      attrs ``midline_x_px``.
    - ``/calcium/{dff (N, n_volumes) at each neuron's plane frame times, event_indptr,
      event_times_s, event_amplitude_dff}``; attrs ``rise_tau_s``, ``decay_tau_s``.
    - ``/motion/{rigid_shift_px (n_planes, n_volumes, 2), nonrigid_grid_px (n_planes,
      n_volumes, gy, gx, 2), grid_y_px (gy,), grid_x_px (gx,)}``; attrs sign_convention.
    - ``/tail/{drive_t, drive_left_hz, drive_right_hz, latent_left, latent_right,
      driver_rate_left_hz, driver_rate_right_hz, bout_rate_hz, bout_onset_s,
      bout_duration_s, bout_side (+1 right/-1 left), bout_beat_hz, bout_amplitude_rad,
      bout_bias_rad, driver_neuron_index, driver_side, log_t, theta_clean}``;
      attrs ``motor_delay_s``.
    - ``/stimulus/{t_start, t_end, epoch, direction_deg}``.
    - ``/images/{reference (n_planes, Ly, Lx) noise-free unmoved photons at dF/F=0,
      background, neuropil}``.
    - ``/render/{background_padded, neuropil_padded (n_planes, Ly + 2m, Lx + 2m),
      background_fluctuation, bleach (n_planes, n_volumes)}``; attr ``margin_px`` = m:
      the scene around the field of view that motion can bring into view.
    """
    p = params
    if not isinstance(p, ZebrafishSynthParams):
        raise TypeError("params must be a ZebrafishSynthParams")
    if n_planes < 1 or volume_rate_hz <= 0 or pixel_size_um <= 0 or tail_rate_hz <= 0:
        raise ValueError("n_planes, volume_rate_hz, pixel_size_um and tail_rate_hz must be positive")
    seed = int(seed)
    V, P, Ly, Lx = p.n_volumes, int(n_planes), p.frame_height_px, p.frame_width_px
    Tvol = 1.0 / volume_rate_hz
    log.info("zebrafish synth: seed=%d, %d planes x %d volumes of %dx%d px, %d neurons/plane",
             seed, P, V, Ly, Lx, p.neurons_per_plane)

    # ---------------- acquisition timing ----------------
    rng_t = rng_for(seed, "frame_times")
    t0 = p.imaging_start_s + rng_t.uniform(0.0, 0.01)
    nominal = t0 + np.arange(V)[None, :] * Tvol + np.arange(P)[:, None] * Tvol / P
    frame_times = nominal + p.frame_time_jitter_s * rng_t.standard_normal((P, V))
    img_t0, img_t1 = float(frame_times.min()), float(frame_times.max()) + Tvol / P
    tail_t0 = img_t0 - p.tail_lead_s
    tail_t1 = img_t1 + p.tail_lag_s
    warmup = max(10.0, 6.0 * p.calcium_decay_tau_s)
    sim_t0, sim_t1 = tail_t0 - warmup, tail_t1 + 1.0

    # ---------------- stimulus ----------------
    stim = _stimulus_schedule(p, tail_t1, rng_for(seed, "stimulus"))
    moving = stim[stim.epoch == "moving"].reset_index(drop=True)

    # ---------------- anatomy ----------------
    rng_l = rng_for(seed, "layout")
    midline = (Lx - 1) / 2.0 + p.midline_jitter_frac * Lx * rng_l.standard_normal()
    edge_px = max(p.nucleus_edge_um / pixel_size_um, 0.3)
    plane, cen, diam_um, z_um, same_cell, fp_idx, fp_w = _place_volume(
        rng_l, rng_for(seed, "layout", "axial"), p, P, midline, pixel_size_um, plane_spacing_um, edge_px)
    N = len(plane)
    secondary = np.flatnonzero((same_cell >= 0) & (same_cell < np.arange(N)))  # second row of a two-plane cell
    primary_of = same_cell[secondary]
    is_secondary = np.zeros(N, bool)
    is_secondary[secondary] = True
    u, w = cen[:, 0] / Ly, (cen[:, 1] - midline) / Lx
    region = _region_of(u, w)
    side = np.where(cen[:, 1] < midline, "left", "right").astype(object)
    pos_um = np.stack([cen[:, 1] * pixel_size_um, cen[:, 0] * pixel_size_um, z_um], axis=1)
    f0 = _lognormal(rng_l, p.neuron_f0_photons / math.sqrt(1 + p.neuron_f0_cv**2), p.neuron_f0_cv, N)
    f0[secondary] = f0[primary_of]

    # ---------------- roles ----------------
    rng_r = rng_for(seed, "roles")
    role = np.full(N, "noise", dtype=object)
    if N < 2 * p.n_drivers_per_side:
        raise ValueError(f"need at least {2 * p.n_drivers_per_side} neurons for the drivers, have {N}")
    pt_center = np.array([0.2 * Ly, 0.0])
    for s in ("left", "right"):
        cand = np.flatnonzero((side == s) & (region == "Pt") & (role == "noise") & ~is_secondary)
        cand = cand[rng_r.permutation(len(cand))]
        chosen = list(cand[: p.n_drivers_per_side])
        if len(chosen) < p.n_drivers_per_side:  # tiny FOV: nearest neurons to that side's Pt
            rest = np.flatnonzero((role == "noise") & ~is_secondary & ~np.isin(np.arange(N), chosen))
            sgn = -1 if s == "left" else 1
            target = np.array([pt_center[0], midline + sgn * 0.22 * Lx])
            order = rest[np.argsort(np.hypot(*(cen[rest] - target).T))]
            chosen += list(order[: p.n_drivers_per_side - len(chosen)])
            log.warning("zebrafish synth: only %d %s-Pt neurons; using nearest neurons as drivers",
                        len(cand), s)
        role[np.array(chosen, dtype=int)] = f"driver_{s}"
    frac = np.where(region == "Pt", p.stimulus_fraction_pt, p.stimulus_fraction_other)
    is_stim = (role == "noise") & (rng_r.random(N) < frac) & ~is_secondary
    role[is_stim] = "stimulus"
    pref = np.full(N, np.nan)
    kappa = np.full(N, np.nan)
    peak_rate = np.zeros(N)
    spont = np.zeros(N)
    latency = np.zeros(N)
    adapt = np.zeros(N)
    sustained = np.zeros(N)
    ns = int(is_stim.sum())
    pref[is_stim] = (rng_r.choice(DIRECTIONS_DEG, ns) + 12.0 * rng_r.standard_normal(ns)) % 360
    kappa[is_stim] = _lognormal(rng_r, p.stimulus_tuning_kappa, 0.3, ns)
    peak_rate[is_stim] = _lognormal(rng_r, p.stimulus_peak_rate_hz, 0.5, ns)
    latency[is_stim] = _lognormal(rng_r, max(p.stimulus_latency_s, 1e-3), 0.3, ns)
    adapt[is_stim] = _lognormal(rng_r, p.stimulus_adaptation_tau_s, 0.3, ns)
    sustained[is_stim] = np.clip(p.stimulus_sustained_fraction + 0.1 * rng_r.standard_normal(ns), 0, 1)
    is_noise = (role == "noise") & ~is_secondary
    spont[is_noise] = _lognormal(rng_r, p.noise_rate_hz, 0.8, int(is_noise.sum()))
    spont[is_stim] = p.stimulus_spont_rate_hz
    drv_idx = {s: np.flatnonzero(role == f"driver_{s}") for s in ("left", "right")}
    for s in ("left", "right"):
        pref[drv_idx[s]] = _DRIVER_PREF_DEG[s]
        kappa[drv_idx[s]] = p.driver_tuning_kappa
        peak_rate[drv_idx[s]] = p.driver_stimulus_rate_hz
        spont[drv_idx[s]] = p.driver_base_rate_hz
    # the second row of a two-plane cell is the same cell: same role, tuning and (below) events
    for arr in (role, pref, kappa, peak_rate, spont):
        arr[secondary] = arr[primary_of]

    # ---------------- events: spontaneous + stimulus-evoked (non-drivers) ----------------
    ev_n, ev_t = [], []
    rng_s = rng_for(seed, "events", "spontaneous")
    non_drv = np.flatnonzero(is_noise | is_stim)
    counts = rng_s.poisson(spont[non_drv] * (sim_t1 - sim_t0))
    ev_n.append(np.repeat(non_drv, counts))
    ev_t.append(rng_s.uniform(sim_t0, sim_t1, counts.sum()))
    rng_e = rng_for(seed, "events", "stimulus")
    stim_idx = np.flatnonzero(is_stim)
    bin_s = 0.25
    for _, ep in moving.iterrows():
        dur = ep.t_end - ep.t_start
        nb = int(math.ceil((dur + 2.0) / bin_s))
        mids = (np.arange(nb) + 0.5) * bin_s
        prof = _moving_profile(mids[None, :], dur, latency[stim_idx, None], adapt[stim_idx, None],
                               sustained[stim_idx, None])
        tun = _von_mises(ep.direction_deg - pref[stim_idx], kappa[stim_idx])
        lam = peak_rate[stim_idx, None] * tun[:, None] * prof * bin_s
        c = rng_e.poisson(lam)
        nz = np.nonzero(c)
        reps = c[nz]
        ev_n.append(np.repeat(stim_idx[nz[0]], reps))
        ev_t.append(ep.t_start + (np.repeat(nz[1], reps) + rng_e.random(reps.sum())) * bin_s)

    # ---------------- drivers on the fine grid ----------------
    dt = p.drive_dt_s
    n_grid = int(math.ceil((sim_t1 - sim_t0) / dt)) + 1
    g_t = sim_t0 + np.arange(n_grid) * dt
    rng_d = rng_for(seed, "drivers")
    z = _ou_regular(rng_d, n_grid, dt, p.driver_latent_tau_s, 1.0, 2)
    rho = p.driver_latent_lr_correlation
    zl = z[:, 0]
    zr = rho * z[:, 0] + math.sqrt(1 - rho * rho) * z[:, 1]
    latent = {"left": p.driver_latent_mean + p.driver_latent_sd * zl,
              "right": p.driver_latent_mean + p.driver_latent_sd * zr}
    stim_env = {"left": np.zeros(n_grid), "right": np.zeros(n_grid)}
    for _, ep in moving.iterrows():
        i0 = max(int(math.floor((ep.t_start - sim_t0) / dt)), 0)
        i1 = min(int(math.ceil((ep.t_end + 2.0 - sim_t0) / dt)), n_grid)
        prof = _moving_profile(g_t[i0:i1] - ep.t_start, ep.t_end - ep.t_start, p.stimulus_latency_s,
                               p.stimulus_adaptation_tau_s, max(p.stimulus_sustained_fraction, 0.5))
        for s in ("left", "right"):
            stim_env[s][i0:i1] += _von_mises(ep.direction_deg - _DRIVER_PREF_DEG[s], p.driver_tuning_kappa) * prof
    side_rate = {s: p.driver_base_rate_hz + p.driver_stimulus_rate_hz * stim_env[s]
                 + p.driver_latent_rate_hz * _softplus(latent[s]) for s in ("left", "right")}
    drive = {}
    for s in ("left", "right"):
        cnt = np.zeros(n_grid)
        for n_i in drv_idx[s]:
            gain = _lognormal(rng_d, 1.0, 0.2, 1)[0]
            hit = np.flatnonzero(rng_d.random(n_grid) < np.minimum(side_rate[s] * gain * dt, 1.0))
            ev_n.append(np.full(len(hit), n_i))
            ev_t.append(g_t[hit] + dt * rng_d.random(len(hit)))
            np.add.at(cnt, hit, 1.0)
        a = math.exp(-dt / p.motor_integration_tau_s)
        drive[s] = signal.lfilter([1.0 / p.motor_integration_tau_s], [1.0, -a], cnt / len(drv_idx[s]))
    ev_n = np.concatenate(ev_n).astype(np.int64)
    ev_t = np.concatenate(ev_t)
    order = np.lexsort((ev_t, ev_n))
    ev_n, ev_t = ev_n[order], ev_t[order]
    ev_a = _lognormal(rng_for(seed, "events", "amplitude"),
                      p.event_amplitude_dff / math.sqrt(1 + p.event_amplitude_cv**2), p.event_amplitude_cv, len(ev_t))
    if secondary.size:  # copy each two-plane cell's events to its second row
        copy_to = np.full(N, -1)
        copy_to[primary_of] = secondary
        sel = copy_to[ev_n] >= 0
        ev_n = np.concatenate([ev_n, copy_to[ev_n[sel]]])
        ev_t, ev_a = np.concatenate([ev_t, ev_t[sel]]), np.concatenate([ev_a, ev_a[sel]])
        order = np.lexsort((ev_t, ev_n))
        ev_n, ev_t, ev_a = ev_n[order], ev_t[order], ev_a[order]
    ev_indptr = np.concatenate([[0], np.cumsum(np.bincount(ev_n, minlength=N))])
    log.info("zebrafish synth: %d neurons, %d calcium events", N, len(ev_t))

    # ---------------- calcium at each neuron's frame times ----------------
    dff = np.zeros((N, V), dtype=np.float32)
    for pl in range(P):
        ids = np.flatnonzero(plane == pl)  # contiguous: neurons are ordered by plane
        e0, e1 = ev_indptr[ids[0]], ev_indptr[ids[-1] + 1]
        dff[ids] = _dff_at_times(ev_t[e0:e1], ev_a[e0:e1], ev_n[e0:e1] - ids[0], len(ids), frame_times[pl], p)

    # ---------------- motor map: bouts ----------------
    lag = int(round(p.motor_delay_s / dt))
    dl = np.concatenate([np.zeros(lag), drive["left"][: n_grid - lag]])
    dr = np.concatenate([np.zeros(lag), drive["right"][: n_grid - lag]])
    dmean = 0.5 * (dl + dr)
    x_drive = (dmean - p.bout_drive_threshold_hz) / p.bout_drive_scale_hz
    bout_rate = p.bout_rate_base_hz + p.bout_rate_gain_hz * _softplus(x_drive)
    rng_b = rng_for(seed, "tail", "bouts")
    cand = np.flatnonzero((rng_b.random(n_grid) < bout_rate * dt) & (g_t >= tail_t0 - 1.0) & (g_t < tail_t1))
    onsets, durs = [], []
    free_at = -np.inf
    dur_draw = np.clip(_lognormal(rng_b, p.bout_duration_s, p.bout_duration_cv, len(cand)), 0.15, 0.6)
    for k, i in enumerate(cand):
        t = g_t[i] + dt * 0.5
        if t >= free_at:
            onsets.append(i)
            durs.append(dur_draw[k])
            free_at = t + dur_draw[k] + p.bout_refractory_s
    onsets = np.array(onsets, dtype=np.int64)
    nb = len(onsets)
    b_t = g_t[onsets] + dt * 0.5 if nb else np.zeros(0)
    b_dur = np.array(durs)
    diff = dr[onsets] - dl[onsets] if nb else np.zeros(0)
    b_side = np.where(rng_b.random(nb) < _sigmoid(diff / p.bout_side_scale_hz), 1, -1)
    vig = (0.7 + 0.6 * _sigmoid(x_drive[onsets] if nb else np.zeros(0))) * _lognormal(rng_b, 1.0, 0.15, nb)
    b_freq = np.clip(p.tail_beat_hz + p.tail_beat_sd_hz * rng_b.standard_normal(nb), 18.0, 35.0)
    b_amp = p.tail_amplitude_rad * vig
    b_bias = p.turn_bias_rad * (0.25 + 0.75 * np.tanh(np.abs(diff) / p.bout_side_scale_hz)) \
        * _lognormal(rng_b, 1.0, 0.2, nb)
    b_phase = np.where(b_side > 0, 0.0, np.pi)  # first half-beat towards the bout side
    b_motion_dir = rng_b.uniform(0, 2 * np.pi, nb)
    log.info("zebrafish synth: %d swim bouts", nb)

    # ---------------- tail log ----------------
    rng_c = rng_for(seed, "tail", "camera")
    n_cam = int(math.floor((tail_t1 - tail_t0) * tail_rate_hz)) + 1
    cam_frame = np.arange(n_cam, dtype=np.int64)
    cam_t = tail_t0 + cam_frame / tail_rate_hz + p.tail_timestamp_jitter_s * rng_c.standard_normal(n_cam)
    keep = np.ones(n_cam, dtype=bool)
    starts = np.flatnonzero(rng_c.random(n_cam) < p.tail_drop_probability)
    for s0 in starts:
        if 0 < s0 < n_cam - 1:
            keep[s0: min(s0 + rng_c.geometric(1.0 / p.tail_drop_mean_frames), n_cam - 1)] = False
    dropped_frame = cam_frame[~keep]
    cam_frame, cam_t = cam_frame[keep], np.sort(cam_t[keep])
    seg = np.arange(N_SEGMENTS)
    amp_prof = ((seg + 1) / N_SEGMENTS) ** 1.3
    bias_prof = (seg + 1) / N_SEGMENTS
    theta = np.zeros((len(cam_t), N_SEGMENTS))
    rest = _ou_regular(rng_for(seed, "tail", "posture"), n_grid, dt, 10.0, p.rest_posture_sd_rad, 1)[:, 0]
    theta += np.interp(cam_t, g_t, rest)[:, None] * bias_prof[None, :]
    lo = np.searchsorted(cam_t, b_t)
    hi = np.searchsorted(cam_t, b_t + b_dur)
    for k in range(nb):
        if hi[k] <= lo[k]:
            continue
        tau = cam_t[lo[k]:hi[k]] - b_t[k]
        env = np.sin(np.pi * tau / b_dur[k])
        osc = np.sin(2 * np.pi * b_freq[k] * tau[:, None] - p.tail_wave_lag_rad * seg[None, :] + b_phase[k])
        theta[lo[k]:hi[k]] += (b_amp[k] * env**2)[:, None] * amp_prof * osc \
            + (b_side[k] * b_bias[k] * env)[:, None] * bias_prof
    theta_clean = theta.copy()
    noise_sd = p.tracking_noise_rad * (0.5 + 0.5 * seg / (N_SEGMENTS - 1))
    theta += rng_for(seed, "tail", "tracking").standard_normal(theta.shape) * noise_sd

    # ---------------- motion ----------------
    rng_m = rng_for(seed, "motion")
    order_t = np.argsort(frame_times.T.ravel(), kind="stable")  # acquisition order (v, p)
    flat_t = frame_times.T.ravel()[order_t]
    drift = _ou_irregular(rng_m, flat_t, p.rigid_drift_tau_s, p.rigid_drift_sd_px, (2,))
    n_jump = rng_m.poisson(p.rigid_jump_rate_hz * (img_t1 - img_t0 + 60.0))
    j_t = rng_m.uniform(img_t0 - 60.0, img_t1, n_jump)
    j_ang = rng_m.uniform(0, 2 * np.pi, n_jump)
    j_mag = p.rigid_jump_px * rng_m.rayleigh(1.0, n_jump) / math.sqrt(math.pi / 2)
    jumps = np.zeros((len(flat_t), 2))
    for k in range(n_jump):
        dtj = flat_t - j_t[k]
        e = np.where(dtj >= 0, np.exp(-np.maximum(dtj, 0) / p.rigid_jump_relax_tau_s), 0.0)
        jumps += e[:, None] * j_mag[k] * np.array([math.sin(j_ang[k]), math.cos(j_ang[k])])
    bout_mv = np.zeros((len(flat_t), 2))
    if nb and p.bout_motion_px > 0:
        ib = np.searchsorted(b_t, flat_t) - 1
        okb = ib >= 0
        tau = flat_t[okb] - b_t[ib[okb]]
        dd = b_dur[ib[okb]] + 0.3
        env = np.where((tau >= 0) & (tau < dd), np.sin(np.pi * np.clip(tau / dd, 0, 1)), 0.0)
        mag = p.bout_motion_px * vig[ib[okb]] * env
        bout_mv[okb] = mag[:, None] * np.stack([np.sin(b_motion_dir[ib[okb]]), np.cos(b_motion_dir[ib[okb]])], 1)
    gy, gx = p.nonrigid_grid_y, p.nonrigid_grid_x
    nr = _ou_irregular(rng_m, flat_t, p.nonrigid_tau_s, p.nonrigid_sd_px, (gy, gx, 2))
    if gy * gx > 1:
        nr -= nr.mean(axis=(1, 2), keepdims=True)
    # fast bout motion (shake at the tail-beat frequency + jump), sampled at every scan line
    rng_f = rng_for(seed, "motion", "bout_fast")
    line_dt = (np.arange(Ly) - (Ly - 1) / 2.0) * p.line_period_s  # line time - mid-frame time (s)
    fast = _bout_fast_motion(flat_t[:, None] + line_dt[None, :], b_t, b_dur, b_freq, vig, rng_f, p)  # (F, Ly, 2)
    fast_mean = fast.mean(axis=1)
    rigid_flat = drift + jumps + bout_mv + fast_mean
    inv = np.empty_like(order_t)
    inv[order_t] = np.arange(len(order_t))
    rigid = rigid_flat[inv].reshape(V, P, 2).transpose(1, 0, 2).copy()
    nonrigid = nr[inv].reshape(V, P, gy, gx, 2).transpose(1, 0, 2, 3, 4).copy()
    line_shift = (fast - fast_mean[:, None, :])[inv].reshape(V, P, Ly, 2).transpose(1, 0, 2, 3).astype(np.float32)
    shear = np.hypot(np.ptp(line_shift[..., 0], axis=2), np.ptp(line_shift[..., 1], axis=2))  # (P, V) px
    rng_a = rng_for(seed, "motion", "scan")
    bidi = p.bidi_phase_px + _ou_irregular(rng_a, flat_t, p.bidi_phase_tau_s, p.bidi_phase_drift_px, ())
    bidi = bidi[inv].reshape(V, P).T.copy()
    z_drift = p.z_drift_um_per_hour * (flat_t - img_t0) / 3600.0 \
        + _ou_irregular(rng_a, flat_t, p.z_wander_tau_s, p.z_wander_sd_um, ())
    z_drift = z_drift[inv].reshape(V, P).T.copy()
    max_nr = float(np.abs(nonrigid).max()) if nonrigid.size else 0.0
    margin = int(math.ceil(float(np.abs(rigid).max()) + 1.5 * max_nr + float(np.abs(line_shift).max(initial=0.0))
                           + abs(p.bidi_phase_px) + 4 * p.bidi_phase_drift_px)) + 4
    grid_y = np.linspace(0, Ly - 1, gy) if gy > 1 else np.array([(Ly - 1) / 2])
    grid_x = np.linspace(0, Lx - 1, gx) if gx > 1 else np.array([(Lx - 1) / 2])

    # ---------------- background / neuropil / reference ----------------
    rng_g = rng_for(seed, "background")
    Hp, Wp = Ly + 2 * margin, Lx + 2 * margin
    yy_p, xx_p = np.mgrid[0:Hp, 0:Wp].astype(float)
    wpad = (xx_p - margin - midline) / Lx
    brain = _sigmoid((0.47 - np.abs(wpad)) / 0.02) * (0.6 + 0.4 * _sigmoid((np.abs(wpad) - 0.015) / 0.005))
    sig = p.background_smoothness_um / pixel_size_um
    bg = np.empty((P, Hp, Wp))
    npil = np.empty((P, Hp, Wp))
    for pl in range(P):
        bg[pl] = p.background_photons * (0.15 + 0.85 * brain) * _smooth_field(rng_g, (Hp, Wp), sig, 0.3)
        npil[pl] = p.neuropil_photons * brain * _smooth_field(rng_g, (Hp, Wp), sig / 2, 0.5)
    bg_fluct = _ou_irregular(rng_g, flat_t, p.background_fluctuation_tau_s, p.background_fluctuation, ())
    bg_fluct = bg_fluct[inv].reshape(V, P).T
    fp_mats, f0_pl, idx_pl = [], [], []
    for pl in range(P):
        ids = np.flatnonzero(plane == pl)
        rows = np.concatenate([fp_idx[i] for i in ids]) if len(ids) else np.zeros(0, np.int64)
        cols = np.concatenate([np.full(len(fp_idx[i]), j) for j, i in enumerate(ids)]) if len(ids) else np.zeros(0, np.int64)
        vals = np.concatenate([fp_w[i] for i in ids]) if len(ids) else np.zeros(0)
        fp_mats.append(sparse.csr_matrix((vals, (rows, cols)), shape=(Ly * Lx, len(ids))))
        f0_pl.append(f0[ids] * axial_weight(z_um[ids] - pl * plane_spacing_um, p.axial_fwhm_um))
        idx_pl.append(ids)
    inner = (slice(margin, margin + Ly), slice(margin, margin + Lx))
    reference = np.empty((P, Ly, Lx), dtype=np.float32)
    for pl in range(P):
        reference[pl] = bg[pl][inner] + npil[pl][inner] + (fp_mats[pl] @ f0_pl[pl]).reshape(Ly, Lx)
    bleach = 1.0 - p.bleach_fraction * (1.0 - np.exp(-np.maximum(frame_times - img_t0, 0) / p.bleach_tau_s))

    # ---------------- write ----------------
    yy_img, xx_img = np.mgrid[0:Ly, 0:Lx].astype(float)
    pixel_region = _region_of(yy_img / Ly, (xx_img - midline) / Lx)
    region_labels = {label: name for label, name in enumerate(REGIONS, start=1)}
    label_of = {name: label for label, name in region_labels.items()}
    mask = np.vectorize(label_of.get, otypes=[np.uint8])(pixel_region)
    with atomic_paths(tail_log_path, stimulus_log_path, frame_times_path, truth_path) as (
        tmp_tail, tmp_stim, tmp_frame_times, tmp_truth
    ):
        write_region_mask(region_mask_path, np.repeat(mask[None], P, axis=0), region_labels)
        vv, pp = np.meshgrid(np.arange(V), np.arange(P), indexing="ij")
        pd.DataFrame({"volume": vv.ravel(), "plane": pp.ravel(), "t": frame_times.T.ravel()}).to_csv(
            tmp_frame_times, index=False, float_format="%.6f")
        tail_df = pd.DataFrame(theta, columns=THETA_COLUMNS)
        tail_df.insert(0, "frame", cam_frame)
        tail_df.insert(0, "t", cam_t)
        tail_df.to_csv(tmp_tail, index=False, float_format="%.6f")
        stim.to_csv(tmp_stim, index=False, float_format="%.4f")

        with h5py.File(tmp_truth, "w") as f:
            f.attrs.update({
                "generator": GENERATOR_NAME, "generator_version": GENERATOR_VERSION, "seed": seed,
                "params_json": json.dumps(p.to_dict(), sort_keys=True),
                "volume_rate_hz": float(volume_rate_hz), "n_planes": P, "pixel_size_um": float(pixel_size_um),
                "plane_spacing_um": float(plane_spacing_um), "tail_rate_hz": float(tail_rate_hz),
                "n_volumes": V, "frame_height_px": Ly, "frame_width_px": Lx,
                "theta_convention": THETA_CONVENTION, "direction_convention": DIRECTION_CONVENTION,
                "image_axes": "rows rostral -> caudal, columns fish's left -> right (dorsal view)",
                "description": "ground truth of a synthetic larval zebrafish two-photon + tail recording",
            })
            g = f.create_group("timing")
            write_dataset(g, "frame_times", frame_times, "s", "mid-frame acquisition time of plane p, volume v (n_planes, n_volumes)")
            g = f.create_group("neurons")
            g.attrs["midline_x_px"] = float(midline)
            g.attrs["description"] = "one row per neuron, ordered by plane"
            write_dataset(g, "plane", plane, "index", "imaging plane of the neuron")
            write_dataset(g, "centroid_px", cen, "px", "nucleus centre (y, x) in the unmoved reference frame of its plane")
            write_dataset(g, "position_um", pos_um, "um", "3-D position (x, y, z): x = col*pixel, y = row*pixel, z = depth "
                          "(plane*spacing without an axial model)")
            write_dataset(g, "z_offset_um", z_um - plane * plane_spacing_um, "um",
                          "depth of the nucleus centre below its plane's nominal focal depth (plane*spacing)")
            write_dataset(g, "same_cell", same_cell, "index",
                          "row of the same cell in the adjacent plane (a neuron seen in two planes), -1 if none")
            write_dataset(g, "region", region, "label", "anatomical region: Pt, nMLF, Hb or other")
            write_dataset(g, "side", side, "label", "left or right of the midline (fish's side)")
            write_dataset(g, "role", role, "label", "driver_left, driver_right, stimulus or noise")
            write_dataset(g, "f0_photons", f0, "photons/px/frame", "baseline brightness at the nucleus centre (before bleaching)")
            write_dataset(g, "diameter_um", diam_um, "um", "nominal nuclear diameter")
            write_dataset(g, "pref_direction_deg", pref, "deg", "preferred motion direction (NaN for noise neurons)")
            write_dataset(g, "tuning_kappa", kappa, "1", "von Mises concentration of direction tuning (NaN if untuned)")
            write_dataset(g, "peak_rate_hz", peak_rate, "Hz", "event rate at preferred direction (stimulus-driven part)")
            write_dataset(g, "spont_rate_hz", spont, "Hz", "spontaneous / baseline event rate")
            fp_indptr = np.concatenate([[0], np.cumsum([len(i) for i in fp_idx])]).astype(np.int64)
            write_dataset(g, "footprint_indptr", fp_indptr, "index", "CSR row pointer: neuron n owns entries indptr[n]:indptr[n+1]")
            write_dataset(g, "footprint_pixel_index", np.concatenate(fp_idx), "index", "flat pixel index y*Lx + x in its plane")
            write_dataset(g, "footprint_weight", np.concatenate(fp_w).astype(np.float32), "1", "footprint weight (1 at centre)")
            g = f.create_group("calcium")
            g.attrs.update({"rise_tau_s": p.calcium_rise_tau_s, "decay_tau_s": p.calcium_decay_tau_s,
                            "kernel": "dff(t) = sum_k a_k * calcium_kernel(t - t_k) (peak-normalised)"})
            write_dataset(g, "dff", dff, "dF/F", "true dF/F of each neuron at its own plane's frame times (neurons, volumes)")
            write_dataset(g, "event_indptr", ev_indptr, "index", "CSR row pointer into event arrays per neuron")
            write_dataset(g, "event_times_s", ev_t, "s", "calcium event (spike burst) times")
            write_dataset(g, "event_amplitude_dff", ev_a, "dF/F", "peak dF/F of each event")
            g = f.create_group("motion")
            g.attrs.update({"sign_convention": SIGN_CONVENTION, "line_period_s": p.line_period_s,
                            "axial_fwhm_um": p.axial_fwhm_um,
                            "interpolation": "cubic B-spline at fractional node index "
                                             "(scipy.ndimage.map_coordinates order=3, mode=nearest), "
                                             "see pipeline.synth.zebrafish.grid_interpolation_weights",
                            "total": "displacement = rigid_shift_px + upsampled nonrigid_grid_px + line_shift_px[row]"})
            write_dataset(g, "rigid_shift_px", rigid, "px", "rigid translation (dy, dx) per plane per volume")
            write_dataset(g, "line_shift_px", line_shift, "px",
                "per scan line (dy, dx) displacement added to rigid + non-rigid: fast bout motion at each line's time "
                "minus its frame mean (plane, volume, row, 2); same sign convention")
            write_dataset(g, "intra_frame_shear_px", shear, "px",
                "peak-to-peak of line_shift_px over the rows of a frame, hypot of (dy, dx) ranges (plane, volume)")
            write_dataset(g, "bidi_phase_px", bidi, "px",
                "bidirectional line-phase offset: odd rows (1, 3, ...) observed(y, x) = scene(y, x - phase) after motion, "
                "i.e. odd rows displaced by +phase along x relative to even rows (plane, volume)")
            write_dataset(g, "z_drift_um", z_drift, "um",
                "axial drift of the focal plane (+ = deeper) (plane, volume); a neuron's brightness is scaled by "
                "axial_weight(z_offset_um - z_drift_um)")
            write_dataset(g, "nonrigid_grid_px", nonrigid, "px",
                "non-rigid displacement (dy, dx) at control nodes (plane, volume, gy, gx, 2), zero mean over nodes")
            write_dataset(g, "grid_y_px", grid_y, "px", "row coordinate of the control-grid nodes")
            write_dataset(g, "grid_x_px", grid_x, "px", "column coordinate of the control-grid nodes")
            g = f.create_group("tail")
            g.attrs.update({"motor_delay_s": p.motor_delay_s, "theta_convention": THETA_CONVENTION,
                            "drive_description": "driver events of one side, exponentially filtered "
                                                 "(motor_integration_tau_s), mean over that side's drivers; "
                                                 "bouts use the drive delayed by motor_delay_s"})
            sl = slice(int(max((tail_t0 - 1.0 - sim_t0) / dt, 0)), None)
            write_dataset(g, "drive_t", g_t[sl], "s", "time of the drive grid")
            write_dataset(g, "drive_left_hz", drive["left"][sl], "Hz", "left driver drive (undelayed)")
            write_dataset(g, "drive_right_hz", drive["right"][sl], "Hz", "right driver drive (undelayed)")
            write_dataset(g, "latent_left", latent["left"][sl], "1", "spontaneous latent of left drivers")
            write_dataset(g, "latent_right", latent["right"][sl], "1", "spontaneous latent of right drivers")
            write_dataset(g, "driver_rate_left_hz", side_rate["left"][sl], "Hz", "event rate of left drivers (before per-neuron gain)")
            write_dataset(g, "driver_rate_right_hz", side_rate["right"][sl], "Hz", "event rate of right drivers (before per-neuron gain)")
            write_dataset(g, "bout_rate_hz", bout_rate[sl], "Hz", "bout hazard from the delayed drive")
            write_dataset(g, "bout_onset_s", b_t, "s", "bout onset times")
            write_dataset(g, "bout_duration_s", b_dur, "s", "bout durations")
            write_dataset(g, "bout_side", b_side.astype(np.int8), "sign", "+1 right, -1 left turn bias")
            write_dataset(g, "bout_beat_hz", b_freq, "Hz", "tail-beat frequency")
            write_dataset(g, "bout_amplitude_rad", b_amp, "rad", "oscillation amplitude of the caudal segment")
            write_dataset(g, "bout_bias_rad", b_bias, "rad", "turn-bias magnitude of the caudal segment")
            drivers_all = np.concatenate([drv_idx["left"], drv_idx["right"]])
            write_dataset(g, "driver_neuron_index", drivers_all, "index", "rows of /neurons that are drivers")
            write_dataset(g, "driver_side", np.array(["left"] * len(drv_idx["left"]) + ["right"] * len(drv_idx["right"]),
                                            dtype=object), "label", "side of each driver")
            write_dataset(g, "log_t", cam_t, "s", "timestamps of tail_log.csv rows")
            write_dataset(g, "dropped_frame", dropped_frame, "index",
                          "camera frames lost to tracking dropouts (missing from tail_log.csv)")
            write_dataset(g, "theta_clean", theta_clean.astype(np.float32), "rad", "tail angles without tracking noise")
            g = f.create_group("stimulus")
            write_dataset(g, "t_start", stim.t_start.to_numpy(), "s", "epoch start")
            write_dataset(g, "t_end", stim.t_end.to_numpy(), "s", "epoch end")
            write_dataset(g, "epoch", stim.epoch.to_numpy(dtype=object), "label", "static or moving")
            write_dataset(g, "direction_deg", stim.direction_deg.to_numpy(), "deg", DIRECTION_CONVENTION)
            g = f.create_group("images")
            g.attrs["description"] = "noise-free, unmoved images in expected photons per pixel (no offset/gain)"
            write_dataset(g, "reference", reference, "photons",
                          "background + neuropil + neurons at F0 (dF/F = 0) x axial weight without drift, no bleaching")
            write_dataset(g, "background", bg[(slice(None), *inner)].astype(np.float32), "photons", "mean diffuse background")
            write_dataset(g, "neuropil", npil[(slice(None), *inner)].astype(np.float32), "photons", "neuropil at zero activity")
            g = f.create_group("render")
            g.attrs["margin_px"] = margin
            g.attrs["description"] = "inputs of render_plane: padded scene layers and per-frame gains"
            write_dataset(g, "background_padded", bg.astype(np.float32), "photons",
                "diffuse background incl. a margin of margin_px on every side (n_planes, Ly+2m, Lx+2m)")
            write_dataset(g, "neuropil_padded", npil.astype(np.float32), "photons", "neuropil at zero activity, padded likewise")
            write_dataset(g, "background_fluctuation", bg_fluct, "1", "relative slow background fluctuation (n_planes, n_volumes)")
            write_dataset(g, "bleach", bleach, "1", "photobleaching factor (n_planes, n_volumes)")
    log.info("zebrafish synth: wrote logs and %s", truth_path)


def _plane_neurons(f: h5py.File, truth_path, plane: int):
    """(Ly, Lx, rows, footprints, f0, z_offset) of one plane's neurons in an open truth file:
    their rows (a slice), sparse footprints (Ly * Lx, neurons), brightness f0 (photons) and axial
    offset from the focal plane (um). Neurons are stored ordered by plane, so the plane's
    rows are one contiguous slice read from disk."""
    n_planes, Ly, Lx = int(f.attrs["n_planes"]), int(f.attrs["frame_height_px"]), int(f.attrs["frame_width_px"])
    if not 0 <= plane < n_planes:
        raise ValueError(f"{truth_path}: plane {plane} out of range (the fish has {n_planes} planes)")
    ids = np.flatnonzero(f["neurons/plane"][()] == plane)  # contiguous: neurons are ordered by plane
    indptr = f["neurons/footprint_indptr"][()]
    first, last = (ids[0], ids[-1] + 1) if ids.size else (0, 0)
    lo, hi = indptr[first], indptr[last]
    columns = np.repeat(np.arange(ids.size), np.diff(indptr[first:last + 1]))
    footprints = sparse.csr_matrix(
        (f["neurons/footprint_weight"][lo:hi], (f["neurons/footprint_pixel_index"][lo:hi], columns)),
        shape=(Ly * Lx, ids.size),
    )
    rows = slice(first, last)
    return Ly, Lx, rows, footprints, f["neurons/f0_photons"][rows], f["neurons/z_offset_um"][rows]


def render_plane(truth_path, plane: int, stack_path, *, progress: bool = True) -> None:
    """Write the raw two-photon stack of one plane (uint16 multipage TIFF, one page per
    volume) from a simulation written by :func:`simulate_fish`.

    Frames are rendered and written one at a time (memory: the plane's neurons x volumes
    dF/F plus a few frames). Shot noise is seeded from the simulation seed and the plane.
    """
    with h5py.File(truth_path, "r") as f:
        p = ZebrafishSynthParams.from_mapping(json.loads(f.attrs["params_json"]))
        seed = int(f.attrs["seed"])
        Ly, Lx, rows, footprints, f0, z_offset = _plane_neurons(f, truth_path, plane)
        dff = f["calcium/dff"][rows]
        rigid = f["motion/rigid_shift_px"][plane]
        line_shift = f["motion/line_shift_px"][plane]
        bidi = f["motion/bidi_phase_px"][plane]
        z_drift = f["motion/z_drift_um"][plane]
        nonrigid = f["motion/nonrigid_grid_px"][plane]
        margin = int(f["render"].attrs["margin_px"])
        bg = f["render/background_padded"][plane].astype(float)
        npil = f["render/neuropil_padded"][plane].astype(float)
        bg_fluct = f["render/background_fluctuation"][plane]
        bleach = f["render/bleach"][plane]
    wy = grid_interpolation_weights(p.nonrigid_grid_y, Ly)
    wx = grid_interpolation_weights(p.nonrigid_grid_x, Lx)
    yy0, xx0 = np.mgrid[0:Ly, 0:Lx].astype(float)
    rng = rng_for(seed, "shot_noise", plane)
    bigtiff = p.n_volumes * (Ly * Lx * 2 + 512) > 3_500_000_000
    focus_model = p.axial_fwhm_um > 0
    with atomic_paths(stack_path) as (tmp_stack,):
        with tifffile.TiffWriter(tmp_stack, bigtiff=bigtiff) as writer:
            for v in tqdm(range(p.n_volumes), desc=f"plane {plane} frames", unit="frame", disable=not progress):
                d = dff[:, v].astype(float)
                brightness = f0 * axial_weight(z_offset - z_drift[v], p.axial_fwhm_um) if focus_model else f0
                page = _render_frame(
                    bg * (1.0 + bg_fluct[v]),
                    npil * (1.0 + p.neuropil_activity_gain * (float(d.mean()) if d.size else 0.0)),
                    (footprints @ (brightness * (1.0 + d))).reshape(Ly, Lx),
                    bleach[v], margin, yy0, xx0, rigid[v], nonrigid[v], wy, wx, p.warp_order,
                    line_shift[v], float(bidi[v]),
                )
                writer.write(_apply_noise(rng, page, p), photometric="minisblack", contiguous=True)
    log.info("zebrafish synth: wrote plane %d to %s", plane, stack_path)


def zstack_offsets_um(p: ZebrafishSynthParams) -> np.ndarray:
    """Depths (um, + = deeper) of the reference stack's slices relative to a plane's nominal
    focal depth: ``-half_range .. +half_range`` in ``zstack_step_um`` steps, the middle slice at 0."""
    k = int(math.floor(p.zstack_half_range_um / p.zstack_step_um + 1e-9))
    return np.arange(-k, k + 1) * p.zstack_step_um


def render_zstack(truth_path, plane: int, stack_path) -> None:
    """Write the reference z-stack of one plane (multipage TIFF, stack_dtype, one page per
    slice at :func:`zstack_offsets_um`): the plane's scene with the focus moved by each
    offset (a nucleus's brightness ``f0 * axial_weight(z_offset - dz)``, as the movie at a
    z-drift of dz), unmoved, unbleached, without scan artefacts, at the detector's offset and
    gain and without noise (as the average of many frames per slice). The middle slice is the
    plane's nominal depth; the true drift of the movie is ``/motion/z_drift_um``."""
    with h5py.File(truth_path, "r") as f:
        p = ZebrafishSynthParams.from_mapping(json.loads(f.attrs["params_json"]))
        if p.zstack_half_range_um <= 0:
            raise ValueError(f"{truth_path}: simulated without a reference z-stack (zstack_half_range_um 0)")
        Ly, Lx, _, footprints, f0, z_offset = _plane_neurons(f, truth_path, plane)
        scene = f["images/background"][plane].astype(float) + f["images/neuropil"][plane].astype(float)
    info = np.iinfo(p.stack_dtype)
    pages = [np.clip(np.rint(p.adu_offset + p.adu_per_photon * (scene + (footprints @ (
        f0 * axial_weight(z_offset - dz, p.axial_fwhm_um))).reshape(Ly, Lx))), info.min, info.max).astype(p.stack_dtype)
        for dz in zstack_offsets_um(p)]
    with atomic_paths(stack_path) as (tmp,):
        tifffile.imwrite(tmp, np.stack(pages), photometric="minisblack")
    log.info("zebrafish synth: wrote the reference z-stack of plane %d to %s", plane, stack_path)


def generate_fish(out_dir, truth_path, params: ZebrafishSynthParams, *, volume_rate_hz: float,
                  n_planes: int, pixel_size_um: float, plane_spacing_um: float,
                  tail_rate_hz: float, seed: int, progress: bool = True) -> None:
    """:func:`simulate_fish` then :func:`render_plane` for every plane, into ``out_dir``
    (``plane{p}.tif``, ``tail_log.csv``, ``stimulus_log.csv``, ``frame_times.csv``,
    ``region_mask.tif``; ``zstack_plane{p}.tif`` (:func:`render_zstack`) with ``zstack_half_range_um`` > 0).
    The Snakemake rules run the two steps as separate jobs; this is the same in one call."""
    with atomic_paths(out_dir, truth_path) as (tmp_dir, tmp_truth):
        tmp_dir.mkdir(parents=True)
        simulate_fish(tmp_dir / "tail_log.csv", tmp_dir / "stimulus_log.csv", tmp_dir / "frame_times.csv",
                      tmp_dir / "region_mask.tif", tmp_truth, params, volume_rate_hz=volume_rate_hz, n_planes=n_planes,
                      pixel_size_um=pixel_size_um, plane_spacing_um=plane_spacing_um,
                      tail_rate_hz=tail_rate_hz, seed=seed)
        for plane in range(int(n_planes)):
            render_plane(tmp_truth, plane, tmp_dir / f"plane{plane}.tif", progress=progress)
            if params.zstack_half_range_um > 0:
                render_zstack(tmp_truth, plane, tmp_dir / f"zstack_plane{plane}.tif")


def _render_frame(bg, npil, neurons, bleach, margin, yy0, xx0, rigid, grid, wy, wx, order,
                  line_shift, bidi_phase) -> np.ndarray:
    """Noise-free observed frame (expected photons) after motion (rigid + non-rigid grid +
    per-line ``line_shift`` (Ly, 2)) and the bidirectional phase (odd rows sampled ``bidi_phase`` px to the left)."""
    scene = bg + npil
    scene[margin:-margin, margin:-margin] += neurons
    scene *= bleach
    fy, fx = _field_from_grid(grid, wy, wx)
    cy = yy0 + (margin - rigid[0]) - fy
    cx = xx0 + (margin - rigid[1]) - fx
    if np.any(line_shift):
        cy -= line_shift[:, 0][:, None]
        cx -= line_shift[:, 1][:, None]
    if bidi_phase:
        cx[1::2] -= bidi_phase
    out = ndimage.map_coordinates(scene, [cy, cx], order=order, mode="nearest")
    return np.maximum(out, 0.0)


def _apply_noise(rng, expected_photons: np.ndarray, p: ZebrafishSynthParams) -> np.ndarray:
    photons = rng.poisson(expected_photons)
    adu = p.adu_offset + p.adu_per_photon * photons + p.read_noise_adu * rng.standard_normal(photons.shape)
    info = np.iinfo(p.stack_dtype)
    return np.clip(np.rint(adu), info.min, info.max).astype(p.stack_dtype)
