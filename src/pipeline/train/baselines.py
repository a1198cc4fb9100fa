"""Baseline decoders of every NLP4Neuro training job, scored on the job's own test windows
with the same metrics (:mod:`pipeline.train.metrics`), so a table can say whether a model
decodes beyond chance and beyond the visual stimulus (paper seed 000 reports r of 0.05-0.10).

- ``mean_predictor``: the training-block mean of each tail segment at every step.
- ``ridge``: linear ridge regression from the window's activity to the window's tail, on the
  same windows the decoders see: the z-scored activity (frames, neurons) is projected on its
  first ``RIDGE_COMPONENTS`` principal components (fitted on the training block), each
  window's (L, components) is flattened to L x components features (lagged activity: step t
  is predicted from every step of its window, as a bidirectional decoder sees them), and the
  (L, 6) z-scored tail is the target.
- ``stimulus``: the same ridge on the stimulus state per volume only (behaviour file
  ``stimulus/epoch``, ``direction_deg``, ``moving_fraction``; features per volume: epoch
  one-hot (none, static, moving), moving fraction, and cos/sin of the grating direction for
  static and for moving epochs), i.e. what the visual stimulus alone predicts of the tail.

Both ridges: closed form W = (XᵀX + λ I)⁻¹ XᵀY on centred training windows, λ chosen from
``RIDGE_GRID`` by the lowest validation MSE (z-score units). Every baseline uses exactly the
block's windows (:attr:`pipeline.data.windows.WindowSet.window_starts`): windows over volumes
the behaviour file marks invalid are left out of fitting, validation and metrics, as for the
decoders.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from pipeline.data.windows import DecodingSplits
from pipeline.io.errors import InputDataError
from pipeline.train.metrics import decoding_metrics

RIDGE_COMPONENTS = 64  # principal components of the activity fed to the ridge baseline
RIDGE_GRID = tuple(10.0 ** k for k in range(-2, 6))  # candidate ridge strengths λ
BASELINES = ("mean_predictor", "ridge", "stimulus")
EPOCH_NONE, EPOCH_STATIC, EPOCH_MOVING = 0, 1, 2  # pipeline.behavior.tail.EPOCH_CODES


def stimulus_features(behavior_path: str | Path) -> np.ndarray | None:
    """(volumes, 8) float32 stimulus state per volume from a behaviour file (module docstring),
    or None when the file has no ``stimulus/`` group (a fish given without a stimulus log,
    e.g. the NLP4Neuro Dataverse layout): then there is no stimulus-only baseline."""
    behavior_path = Path(behavior_path)
    try:
        with h5py.File(behavior_path, "r") as f:
            if "stimulus" not in f:
                return None
            epoch = f["stimulus/epoch"][()].astype(int)
            direction = np.deg2rad(f["stimulus/direction_deg"][()].astype(np.float64))
            moving = f["stimulus/moving_fraction"][()].astype(np.float64)
    except KeyError as err:
        raise InputDataError(behavior_path, f"missing stimulus dataset ({err})") from None
    direction = np.nan_to_num(direction)
    static = (epoch == EPOCH_STATIC).astype(np.float64)
    features = np.column_stack([epoch == EPOCH_NONE, static, epoch == EPOCH_MOVING, moving,
                                static * np.cos(direction), static * np.sin(direction),
                                moving * np.cos(direction), moving * np.sin(direction)])
    return features.astype(np.float32)


def _windows(frames: np.ndarray, seq_len: int, starts: np.ndarray | None) -> np.ndarray:
    """(frames, channels) -> (windows, seq_len * channels) of the windows starting at block
    frames ``starts`` (None: every stride-1 window; a copy)."""
    view = np.lib.stride_tricks.sliding_window_view(frames, seq_len, axis=0)  # (W, channels, L)
    view = view if starts is None else view[starts]
    return np.ascontiguousarray(view.transpose(0, 2, 1)).reshape(view.shape[0], -1)


def fit_window_ridge(features: dict[str, np.ndarray], targets: dict[str, np.ndarray], seq_len: int,
                     starts: dict[str, np.ndarray] | None = None,
                     grid: tuple[float, ...] = RIDGE_GRID) -> tuple[np.ndarray, float]:
    """Ridge from flattened feature windows to flattened target windows; λ from ``grid`` by
    validation MSE. ``features``/``targets``: split -> (frames, channels) of that block;
    ``starts``: split -> block frames where its windows start (None: every stride-1 window).
    Returns (test predictions
    (windows, seq_len, targets), chosen λ)."""
    starts = starts or {}
    x = {s: _windows(features[s].astype(np.float64), seq_len, starts.get(s)) for s in ("train", "val", "test")}
    y = {s: _windows(targets[s].astype(np.float64), seq_len, starts.get(s)) for s in ("train", "val", "test")}
    x_mean, y_mean = x["train"].mean(axis=0), y["train"].mean(axis=0)
    xc, yc = x["train"] - x_mean, y["train"] - y_mean
    gram, cross = xc.T @ xc, xc.T @ yc
    eigenvalues, eigenvectors = np.linalg.eigh(gram)
    rotated = eigenvectors.T @ cross

    def predict(weights, split):
        return (x[split] - x_mean) @ weights + y_mean

    best = None
    for strength in grid:
        weights = eigenvectors @ (rotated / (eigenvalues + strength)[:, None])
        val_mse = float(np.mean((predict(weights, "val") - y["val"]) ** 2))
        if best is None or val_mse < best[0]:
            best = (val_mse, strength, weights)
    _, strength, weights = best
    n_targets = targets["test"].shape[1]
    return predict(weights, "test").reshape(-1, seq_len, n_targets), strength


def baseline_metrics(splits: DecodingSplits,
                     stimulus: np.ndarray | None) -> tuple[dict[str, dict], dict[str, np.ndarray]]:
    """Test metrics of the three baselines on ``splits`` (z-scored blocks of one job) with
    ``stimulus`` (volumes, features) of the whole recording (None: no stimulus-only baseline,
    its entry is left out), and their test-window
    predictions (name -> (windows, seq_len, 6) rad). Each metrics entry also holds the
    chosen ``ridge_strength`` where there is one. An undefined metric (the training mean's
    tail-sum correlation) is None (JSON null)."""
    seq_len = splits.test.seq_len
    to_rad = splits.tail_normaliser.inverse
    blocks = ("train", "val", "test")
    tail = {s: splits[s].targets.numpy() for s in blocks}
    starts = {s: splits[s].window_starts.numpy() for s in blocks}
    target_rad = to_rad(_windows(tail["test"], seq_len, starts["test"]).reshape(-1, seq_len, tail["test"].shape[1]))
    predictions = {"mean_predictor": np.broadcast_to(splits.tail_normaliser.mean, target_rad.shape).copy()}
    results = {"mean_predictor": decoding_metrics(predictions["mean_predictor"], target_rad, starts["test"])}

    activity = {s: splits[s].inputs.numpy() for s in blocks}
    n_components = min(RIDGE_COMPONENTS, activity["train"].shape[1], activity["train"].shape[0])
    _, _, components = np.linalg.svd(activity["train"] - activity["train"].mean(axis=0), full_matrices=False)
    projected = {s: activity[s] @ components[:n_components].T for s in blocks}
    predicted, strength = fit_window_ridge(projected, tail, seq_len, starts)
    predictions["ridge"] = to_rad(predicted)
    results["ridge"] = {**decoding_metrics(predictions["ridge"], target_rad, starts["test"]), "ridge_strength": strength,
                        "n_components": int(n_components)}

    if stimulus is None:
        return _json_safe(results), predictions
    if stimulus.shape[0] != splits.n_recording_frames:
        raise ValueError(f"stimulus has {stimulus.shape[0]} volumes, the recording {splits.n_recording_frames}")
    stimulus_blocks = {s: stimulus[splits.frames(s)] for s in blocks}
    predicted, strength = fit_window_ridge(stimulus_blocks, tail, seq_len, starts)
    predictions["stimulus"] = to_rad(predicted)
    results["stimulus"] = {**decoding_metrics(predictions["stimulus"], target_rad, starts["test"]),
                           "ridge_strength": strength}
    return _json_safe(results), predictions


def _json_safe(results: dict[str, dict]) -> dict[str, dict]:
    """Undefined (NaN) metrics as None (JSON null)."""
    return {name: {key: None if isinstance(value, float) and np.isnan(value) else value
                   for key, value in metrics.items()} for name, metrics in results.items()}
