"""Decoding metrics of NLP4Neuro (paper seed 000, Sec. 3.4, App. Eq. 15-16).

Notation: test windows w = 1..W of length L (stride 1), tail segments k = 1..6, true and
predicted angles y[w, t, k], ŷ[w, t, k] in rad.

- ``rmse`` (Eq. 15, per window, then averaged over windows):
      RMSE_w = sqrt( 1/(6 L) Σ_t Σ_k (y[w,t,k] - ŷ[w,t,k])² ),   rmse = (1/W) Σ_w RMSE_w
  The paper reports the *sum* Σ_w RMSE_w, which grows with the number of test windows and
  so is not comparable across fish or splits; it is kept as ``rmse_sum_over_windows``.
- ``per_segment_rmse[k]`` = sqrt( 1/(W L) Σ_w Σ_t (y[w,t,k] - ŷ[w,t,k])² ).
- Frame level: predictions of overlapping windows are averaged onto frames
  (:func:`pipeline.data.windows.average_overlapping_windows`); ``frame_rmse`` is the RMSE
  over frames and segments, and ``tail_sum_pearson_r`` is Pearson's r between the predicted
  and true tail sum Σ_k y[f, k] over the test frames f. Frames in no window (next to a
  volume the behaviour file marks invalid) are left out.
"""

from __future__ import annotations

import numpy as np

from pipeline.data.windows import average_overlapping_windows


def window_rmse(predicted: np.ndarray, target: np.ndarray) -> np.ndarray:
    """RMSE_w (Eq. 15) of each window: (W, L, 6) x2 -> (W,) rad."""
    return np.sqrt(np.mean((predicted - target) ** 2, axis=(1, 2)))


def pearson_r(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson's product-moment r; NaN when either series is constant."""
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    a, b = a - a.mean(), b - b.mean()
    denominator = np.sqrt((a**2).sum() * (b**2).sum())
    return float((a * b).sum() / denominator) if denominator > 0 else float("nan")


def decoding_metrics(predicted_windows: np.ndarray, target_windows: np.ndarray,
                     window_starts: np.ndarray | None = None) -> dict:
    """All metrics of one test block from its windows (W, L, 6) starting at block frames
    ``window_starts`` (default: consecutive stride-1 windows)."""
    if predicted_windows.shape != target_windows.shape or predicted_windows.ndim != 3:
        raise ValueError(f"shape mismatch: {predicted_windows.shape} vs {target_windows.shape}")
    per_window = window_rmse(predicted_windows, target_windows)
    covered = np.isfinite(average_overlapping_windows(np.ones_like(target_windows[:, :, :1]), window_starts)[:, 0])
    predicted_frames = average_overlapping_windows(predicted_windows, window_starts)[covered]
    target_frames = average_overlapping_windows(target_windows, window_starts)[covered]
    return {
        "rmse": float(per_window.mean()),
        "rmse_sum_over_windows": float(per_window.sum()),
        "per_segment_rmse": np.sqrt(np.mean((predicted_windows - target_windows) ** 2, axis=(0, 1))).tolist(),
        "frame_rmse": float(np.sqrt(np.mean((predicted_frames - target_frames) ** 2))),
        "tail_sum_pearson_r": pearson_r(predicted_frames.sum(axis=1), target_frames.sum(axis=1)),
        "n_test_windows": int(per_window.size),
        "n_test_frames": int(target_frames.shape[0]),
    }
