"""Resample irregularly sampled continuous signals onto trial-aligned bins.

Both functions treat the signal as the linear interpolant of its samples (held constant
before the first and after the last sample) and return one value per bin
``[edges[..., k], edges[..., k + 1])``:

- :func:`bin_means` — the mean of the signal over the bin (e.g. motion energy, a.u.);
- :func:`bin_mean_velocity` — the mean derivative over the bin, (x(e1) - x(e0)) / (e1 - e0)
  (e.g. wheel velocity in rad/s from position in rad).

Exact for any sampling (1 kHz encoder, irregular encoder events, 60 Hz camera), so up- and
down-sampling need no separate code paths.
"""

from __future__ import annotations

import numpy as np


def _interp(t: np.ndarray, x: np.ndarray, at: np.ndarray) -> np.ndarray:
    return np.interp(at, t, x)


def _cumulative_integral(t: np.ndarray, x: np.ndarray, at: np.ndarray) -> np.ndarray:
    """Integral from t[0] to ``at`` of the linear interpolant of (t, x), constant outside."""
    segment = 0.5 * (x[1:] + x[:-1]) * np.diff(t)
    at_samples = np.concatenate([[0.0], np.cumsum(segment)])
    i = np.clip(np.searchsorted(t, at, side="right") - 1, 0, t.size - 1)
    dt = at - t[i]
    slope = np.zeros_like(x)
    slope[:-1] = np.diff(x) / np.diff(t)
    inside = (at >= t[0]) & (at <= t[-1])
    partial = np.where(inside, x[i] * dt + 0.5 * slope[i] * dt**2, x[i] * dt)
    return at_samples[i] + partial


def bin_means(t: np.ndarray, x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Mean of the linear interpolant of samples ``x`` at times ``t`` (s, increasing) over
    each bin. ``edges``: (..., n_bins + 1) s. Returns (..., n_bins), units of ``x``."""
    integral = _cumulative_integral(t, x, edges)
    return np.diff(integral, axis=-1) / np.diff(edges, axis=-1)


def bin_mean_velocity(t: np.ndarray, x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Mean rate of change of ``x`` over each bin: (x(e1) - x(e0)) / (e1 - e0), units of
    ``x`` per second. ``edges``: (..., n_bins + 1) s. Returns (..., n_bins)."""
    position = _interp(t, x, edges)
    return np.diff(position, axis=-1) / np.diff(edges, axis=-1)
