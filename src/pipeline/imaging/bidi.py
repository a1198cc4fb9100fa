"""Bidirectional (resonant-scanner) line-phase offset: estimation and correction.

A bidirectional scanner acquires odd rows on the return sweep; a small error in the
sweep's phase displaces every odd row along x relative to the even rows (the "comb"
artefact). suite2p (``registration.bidiphase.compute``, setting ``do_bidiphase``)
estimates it as an integer shift by phase-correlating the even and odd rows of a mean
image; NoRMCorre (``correct_bidir``) likewise. Here the estimate is sub-pixel.

Convention (same as :mod:`pipeline.synth.zebrafish` ``/motion/bidi_phase_px``): a phase
``s`` px means odd rows (1, 3, ...) show ``observed(y, x) = true(y, x - s)``, i.e. they are
displaced by +s along x; correction resamples odd rows at ``x + s``.

Estimation (:func:`estimate_bidi_phase`): from a mean image M (Ly, Lx), each odd row is
compared with the average of its two even neighbours ``(M[y-1] + M[y+1]) / 2`` (the same
depth of tissue, interpolated, so vertical structure does not bias the x shift); the
x cross-correlation of the rows (mean removed, raised-cosine taper) summed over rows is
evaluated on a 1/``upsample`` px grid of shifts within +-``max_shift_px`` by a direct
inverse DFT, and its maximum refined by a parabola.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import ndimage


def estimate_bidi_phase(mean_image: np.ndarray, *, max_shift_px: float = 3.0, upsample: int = 100) -> float:
    """Sub-pixel bidirectional phase ``s`` (px) of a mean image (Ly, Lx), Ly >= 3 (convention
    in the module docstring)."""
    img = np.asarray(mean_image, dtype=np.float64)
    ly, lx = img.shape
    if ly < 3 or lx < 8:
        raise ValueError(f"image of {ly}x{lx} px is too small to estimate a bidirectional phase")
    n_odd = (ly - 1) // 2  # odd rows with an even row on both sides
    odd = img[1:2 * n_odd:2]
    even = 0.5 * (img[0:2 * n_odd - 1:2] + img[2:2 * n_odd + 1:2])
    width = max(lx // 8, 1)
    taper = np.ones(lx)
    ramp = 0.5 - 0.5 * np.cos(np.pi * (np.arange(width) + 0.5) / width)
    taper[:width], taper[lx - width:] = ramp, ramp[::-1]
    o = (odd - odd.mean(axis=1, keepdims=True)) * taper
    e = (even - even.mean(axis=1, keepdims=True)) * taper
    cross = (np.fft.rfft(o, axis=1) * np.conj(np.fft.rfft(e, axis=1))).sum(axis=0)  # (lx//2+1,)
    k = np.fft.rfftfreq(lx)  # cycles / px
    weight = np.full(k.size, 2.0)
    weight[0] = 1.0
    if lx % 2 == 0:
        weight[-1] = 1.0
    shifts = np.arange(-max_shift_px, max_shift_px + 0.5 / upsample, 1.0 / upsample)
    corr = (weight * cross * np.exp(2j * np.pi * np.outer(shifts, k))).real.sum(axis=1)
    i = int(np.argmax(corr))
    s = shifts[i]
    if 0 < i < len(corr) - 1:
        den = corr[i - 1] - 2 * corr[i] + corr[i + 1]
        if den < 0:
            s += 0.5 * (corr[i - 1] - corr[i + 1]) / den / upsample
    return float(s)


def correct_bidi_phase(frames: np.ndarray, phase_px) -> np.ndarray:
    """Frames (T, Ly, Lx) with odd rows resampled at ``x + phase`` (cubic B-spline, edge values
    repeated, as ``scipy.ndimage.shift(rows, (0, -phase), order=3, mode="nearest")``);
    ``phase_px`` is a scalar or one value per frame (T,). Returns float32.

    The resampling is along x only, so it is done in 1-D: the rows are extended by
    :data:`_SPLINE_PAD_PX` edge values beyond the reach of the shift (the cubic-spline
    prefilter's influence decays as 0.268^k, < 1e-6 at that distance), prefiltered once for
    all rows of all frames, and each output pixel is the four B-spline weights of the
    frame's fractional shift applied to four coefficients (the 2-D interpolation of
    ``ndimage.shift`` reduces to this when the y shift is 0)."""
    out = np.array(frames, dtype=np.float32, copy=True)
    phases = np.broadcast_to(np.asarray(phase_px, dtype=float), (out.shape[0],))
    todo = np.flatnonzero((phases != 0.0) & np.isfinite(phases))
    if todo.size == 0:
        return out
    lx = out.shape[2]
    pad = _SPLINE_PAD_PX + int(math.ceil(np.abs(phases[todo]).max()))
    rows = np.pad(out[todo, 1::2].astype(np.float64), ((0, 0), (0, 0), (pad, pad)), mode="edge")
    coeff = ndimage.spline_filter1d(rows, order=3, axis=-1, mode="nearest")
    for k, (t, s) in enumerate(zip(todo, phases[todo])):
        j = pad + int(math.floor(s))  # coefficient index of output x = 0 (sample at x + s)
        f = s - math.floor(s)
        weights = ((1 - f) ** 3 / 6, (4 - 6 * f**2 + 3 * f**3) / 6, (1 + 3 * f + 3 * f**2 - 3 * f**3) / 6, f**3 / 6)
        c = coeff[k]
        out[t, 1::2] = sum(w * c[:, j - 1 + i:j - 1 + i + lx] for i, w in enumerate(weights))
    return out


#: Edge values added beyond the shift's reach before the 1-D spline prefilter (px).
_SPLINE_PAD_PX = 12
