"""Fabricated training-job outputs following the documented contract (docs/architecture.md,
"Training job"), for the statistics, table, figure and workflow tests: small, with known
values, so that every aggregate can be checked by hand."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np

RUN_PATH = "{experiment}/{fish}/{model}/{weights}-{embedding}/L{seq_len}/run{run}{fold}"


def job_dir(root: Path, fold: str = "", **job) -> Path:
    """A job's directory; ``fold``: the fold wildcard ("" or "-fold<f>")."""
    return Path(root) / RUN_PATH.format(fold=fold, **job)


def write_metrics(root: Path, *, experiment: str, fish: str, model: str, weights: str = "untrained",
                  embedding: str = "linear", seq_len: int = 5, run: int = 0, rmse: float, pearson_r: float,
                  seed: int | None = None, epochs: int = 10, batch_size: int = 16,
                  split_fractions: tuple = (0.7, 0.15, 0.15), cv_folds: int = 0, fold: int = 0) -> Path:
    """One metrics.json with the contract's fields; ``seed`` defaults to the design's rule
    (a function of fish, model, seq_len, run only), so twins share it; ``cv_folds`` > 0:
    fold ``fold`` of a blocked cross-validation job."""
    job = dict(experiment=experiment, fish=fish, model=model, weights=weights, embedding=embedding,
               seq_len=seq_len, run=run)
    seed = seed if seed is not None else abs(hash((fish, model, seq_len, run))) % (2**31)
    metrics = {
        "job": {**job, "seed": seed, "signal": "dff", "split_fractions": list(split_fractions),
                **({"cv_folds": cv_folds, "fold": fold} if cv_folds else {})},
        "training": {"epochs": epochs, "batch_size": batch_size, "learning_rate": 1e-4, "weight_decay": 0.01,
                     "max_grad_norm": 1.0, "eval_batch_size": 64},
        "test": {"rmse": rmse, "rmse_sum_over_windows": rmse * 40, "per_segment_rmse": [rmse] * 6,
                 "frame_rmse": rmse, "tail_sum_pearson_r": pearson_r, "n_test_windows": 40, "n_test_frames": 44},
        "mean_predictor_test": {"rmse": 0.5, "frame_rmse": 0.5, "per_segment_rmse": [0.5] * 6},
        "baselines_test": {"mean_predictor": {"rmse": 0.5, "tail_sum_pearson_r": None},
                           "ridge": {"rmse": 0.3, "tail_sum_pearson_r": 0.2},
                           "stimulus": {"rmse": 0.45, "tail_sum_pearson_r": 0.05}},
        "performance": {"wall_time_s": 1.0, "train_windows_per_s": 100.0, "peak_rss_mb": 100.0,
                        "n_parameters_total": 10, "n_parameters_trainable": 10},
        "provenance": {"config_hash": f"hash-{fish}-{model}-{weights}-{embedding}-{seq_len}-{run}-{fold}",
                       "code_version": "test"},
    }
    path = job_dir(root, fold=f"-fold{fold}" if cv_folds else "", **job) / "metrics.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(metrics))
    return path


def write_predictions(root: Path, *, experiment: str, fish: str, model: str, weights: str = "untrained",
                      embedding: str = "linear", seq_len: int = 5, run: int = 0, n_frames: int = 60,
                      noise: float = 0.1, rng_seed: int = 0) -> Path:
    """One predictions.h5: a sine-like true tail and a noisy prediction of it."""
    rng = np.random.default_rng(rng_seed)
    index = np.arange(100, 100 + n_frames)
    times = index / 1.1
    target = np.outer(np.sin(index / 5.0), np.linspace(0.1, 0.6, 6))
    prediction = target + noise * rng.standard_normal(target.shape)
    path = job_dir(root, experiment=experiment, fish=fish, model=model, weights=weights, embedding=embedding,
                   seq_len=seq_len, run=run) / "predictions.h5"
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as h5:
        h5["test/frame_index"] = index
        h5["test/frame_times_s"] = times
        h5["test/frame_targets"] = target.astype(np.float32)
        h5["test/frame_predictions"] = prediction.astype(np.float32)
        h5["test/baseline_frame_predictions/ridge"] = (0.5 * target).astype(np.float32)
        h5["test/baseline_frame_predictions/stimulus"] = np.zeros_like(target, dtype=np.float32)
    return path
