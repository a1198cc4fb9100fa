"""Training-job metrics files (docs/architecture.md, "Training job") as one table.

One row per ``metrics.json``: the job's identity (experiment, fish, model, weights,
embedding, seq_len, run, seed, and ``fold`` of ``cv_folds`` under blocked cross-validation;
0 of 0 for the single split), its test metrics ``rmse`` (paper Eq. 15: mean over test
windows of each window's RMSE over steps and segments, rad) and ``tail_sum_pearson_r``
(Pearson r between predicted and true tail sums on the window-averaged test frames), the
test-set sizes, the mean predictor's RMSE, the training protocol (``epochs``, ``batch_size``,
``learning_rate``, ``split``: "chronological train:val:test split 70:10:20 %" or "blocked
5-fold cross-validation (validation 10 %, L volumes between blocks)"), the baselines' test
metrics on the same windows (``<baseline>_rmse``, ``<baseline>_tail_sum_pearson_r`` for
``mean_predictor``, ``ridge``, ``stimulus``; :mod:`pipeline.train.baselines`; NaN in a
metrics file written before baselines existed) and the job's ``config_hash`` and code version, and the decoder's parameter counts
(``n_parameters_total``, ``n_parameters_trainable``).

Blocked cross-validation: the k folds of one (fish, run) share the fish and every training
frame but one block's, so they are not independent replicates. :func:`average_over_folds`
turns them into one row (metrics averaged over folds) before any statistic, and
:func:`fold_spread` summarises how a cell's mean varies from fold to fold.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

import pandas as pd

JOB_FIELDS = ("experiment", "fish", "model", "weights", "embedding", "seq_len", "run", "seed")
#: one job; without ``fold``: one (fish, run) replicate (its folds averaged)
IDENTITY = ("experiment", "fish", "model", "weights", "embedding", "seq_len", "run", "fold")
TEST_FIELDS = ("rmse", "tail_sum_pearson_r", "n_test_windows", "n_test_frames")
#: the training protocol of a job (paper Sec. 3.4): metrics.json ``training`` + the job's split
PROTOCOL_FIELDS = ("epochs", "batch_size", "learning_rate", "split")
#: column -> (label with unit, direction): "lower" when smaller is better.
METRICS = {
    "rmse": ("RMSE (rad)", "lower"),
    "tail_sum_pearson_r": ("tail-sum Pearson r", "higher"),
}


#: baseline decoders in each job's metrics (pipeline.train.baselines) -> table label
BASELINES = {"mean_predictor": "baseline: training mean", "ridge": "baseline: ridge",
             "stimulus": "baseline: stimulus only"}


class MetricsFileError(ValueError):
    """A metrics file that does not follow the training-job contract."""


def read_metrics_record(path: str | os.PathLike) -> dict:
    """One metrics file as a flat record; missing contract fields raise naming the file."""
    path = Path(path)
    try:
        metrics = json.loads(path.read_text())
        job, test = metrics["job"], metrics["test"]
        record = {name: job[name] for name in JOB_FIELDS}
        record.update({name: test[name] for name in TEST_FIELDS})
        baselines = metrics.get("baselines_test", {})
        for name in BASELINES:
            for metric in METRICS:
                value = baselines.get(name, {}).get(metric)
                record[f"{name}_{metric}"] = float("nan") if value is None else float(value)
        record["mean_predictor_rmse"] = metrics["mean_predictor_test"]["rmse"]
        record.update({name: metrics["training"][name] for name in PROTOCOL_FIELDS[:3]})
        record.update({name: int(metrics["performance"][name])
                       for name in ("n_parameters_total", "n_parameters_trainable")})
        record["cv_folds"], record["fold"] = int(job.get("cv_folds", 0)), int(job.get("fold", 0))
        fractions = job["split_fractions"]
        record["split"] = (f"blocked {record['cv_folds']}-fold cross-validation (validation {100 * fractions[1]:g} %, "
                           "L volumes between blocks)" if record["cv_folds"]
                           else "chronological train:val:test split " + ":".join(f"{100 * f:g}" for f in fractions)
                           + " %")
    except (OSError, json.JSONDecodeError, KeyError, TypeError) as err:
        raise MetricsFileError(f"{path}: not a training-job metrics file ({type(err).__name__}: {err})") from None
    provenance = metrics.get("provenance", {})
    record["config_hash"] = provenance.get("config_hash", "")
    record["code_version"] = provenance.get("code_version", "")
    record["seq_len"], record["run"] = int(record["seq_len"]), int(record["run"])
    record["path"] = str(path)
    return record


def load_records(paths: Iterable[str | os.PathLike], experiment: str | None = None) -> pd.DataFrame:
    """Every metrics file as one row; with ``experiment``, every file must belong to it.
    Duplicate jobs (same identity twice) are errors."""
    records = pd.DataFrame([read_metrics_record(p) for p in paths])
    if records.empty:
        raise MetricsFileError("no metrics files to aggregate")
    if experiment is not None:
        foreign = records.loc[records["experiment"] != experiment, "path"].tolist()
        if foreign:
            raise MetricsFileError(f"metrics of other experiments than {experiment!r}: {foreign[:3]}")
    identity = list(IDENTITY)
    duplicated = records.duplicated(identity, keep=False)
    if duplicated.any():
        raise MetricsFileError(f"duplicate jobs: {records.loc[duplicated, 'path'].tolist()[:4]}")
    return records.sort_values(identity, kind="stable").reset_index(drop=True)


def protocol_note(records: pd.DataFrame) -> str:
    """The training protocol(s) of ``records`` for a table footer, e.g. "Protocol: 5 epochs,
    batch 32, learning rate 0.0001, chronological train:val:test split 70:10:20 % (models)"; models
    trained under a different protocol (per-model overrides) are named with theirs."""
    parts = []
    for (epochs, batch, rate, split), group in records.groupby(list(PROTOCOL_FIELDS), sort=True):
        models = ", ".join(dict.fromkeys(group["model"]))
        parts.append(f"{epochs} epochs, batch {batch}, learning rate {rate:g}, {split} ({models})")
    return "Protocol: " + "; ".join(parts) + "."


#: per-job values averaged over a replicate's folds by :func:`average_over_folds`
FOLD_AVERAGED = ("rmse", "tail_sum_pearson_r", "mean_predictor_rmse",
                 *(f"{name}_{metric}" for name in BASELINES for metric in METRICS))


def average_over_folds(records: pd.DataFrame) -> pd.DataFrame:
    """One row per (fish, run) replicate: the rows of its cross-validation folds merged, the
    metrics of :data:`FOLD_AVERAGED` averaged over folds (each fold weighs the same), test
    sizes summed, ``n_folds`` counted, ``config_hash`` the sorted hashes joined by "+".
    Records of a single split (``cv_folds`` 0) come back unchanged but for ``n_folds`` = 1.
    A replicate missing some of its ``cv_folds`` folds is an error naming it."""
    replicate = [c for c in IDENTITY if c != "fold"]
    aggregations = {c: "first" for c in records.columns if c not in replicate}
    aggregations.update({c: "mean" for c in FOLD_AVERAGED})
    aggregations.update({c: "sum" for c in ("n_test_windows", "n_test_frames")})
    aggregations["config_hash"] = lambda hashes: "+".join(sorted(hashes))
    aggregations["fold"] = "count"
    merged = records.groupby(replicate, sort=False).agg(aggregations).reset_index()
    merged = merged.rename(columns={"fold": "n_folds"})
    incomplete = merged[(merged["cv_folds"] > 0) & (merged["n_folds"] != merged["cv_folds"])]
    if not incomplete.empty:
        row = incomplete.iloc[0]
        raise MetricsFileError(f"{row['path']}: {row['n_folds']} of {row['cv_folds']} cross-validation folds of "
                               f"{row['model']} {row['weights']}-{row['embedding']} L{row['seq_len']} run {row['run']} "
                               f"({row['fish']}); a fold mean needs every fold")
    return merged.sort_values(replicate, kind="stable").reset_index(drop=True)


def fold_spread(records: pd.DataFrame, cell: list[str], metrics: list[str]) -> pd.DataFrame:
    """Fold-to-fold variation of each ``cell`` (e.g. model x seq_len) from the per-fold
    ``records`` (before :func:`average_over_folds`): per fold, the mean over the cell's
    (fish, run) replicates; then ``fold_sd`` (SD over folds, ddof = 1), ``fold_min`` and
    ``fold_max`` of those per-fold means and ``n_folds``. Columns: *cell, metric, n_folds,
    fold_sd, fold_min, fold_max; empty (same columns) for single-split records."""
    columns = [*cell, "metric", "n_folds", "fold_sd", "fold_min", "fold_max"]
    folded = records[records["cv_folds"] > 0]
    if folded.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for key, group in folded.groupby(cell, sort=True):
        key = key if isinstance(key, tuple) else (key,)
        for metric in metrics:
            per_fold = group.groupby("fold")[metric].mean()
            rows.append({**dict(zip(cell, key)), "metric": metric, "n_folds": len(per_fold),
                         "fold_sd": float(per_fold.std(ddof=1)) if len(per_fold) > 1 else float("nan"),
                         "fold_min": float(per_fold.min()), "fold_max": float(per_fold.max())})
    return pd.DataFrame(rows, columns=columns)
