"""Training-job metrics files (docs/architecture.md, "Training job") as one table.

One row per ``metrics.json``: the job's identity (experiment, fish, model, weights,
embedding, seq_len, run, seed), its test metrics ``rmse`` (paper Eq. 15: mean over test
windows of each window's RMSE over steps and segments, rad) and ``tail_sum_pearson_r``
(Pearson r between predicted and true tail sums on the window-averaged test frames), the
test-set sizes, the mean predictor's RMSE, the training protocol (``epochs``, ``batch_size``,
``learning_rate``, ``split`` as "70:10:20" train:val:test percent), the baselines' test
metrics on the same windows (``<baseline>_rmse``, ``<baseline>_tail_sum_pearson_r`` for
``mean_predictor``, ``ridge``, ``stimulus``; :mod:`pipeline.train.baselines`; NaN in a
metrics file written before baselines existed) and the job's ``config_hash`` and code version, and the decoder's parameter counts
(``n_parameters_total``, ``n_parameters_trainable``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

import pandas as pd

JOB_FIELDS = ("experiment", "fish", "model", "weights", "embedding", "seq_len", "run", "seed")
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
        record["split"] = ":".join(f"{100 * f:g}" for f in job["split_fractions"])
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
    identity = ["experiment", "fish", "model", "weights", "embedding", "seq_len", "run"]
    duplicated = records.duplicated(identity, keep=False)
    if duplicated.any():
        raise MetricsFileError(f"duplicate jobs: {records.loc[duplicated, 'path'].tolist()[:4]}")
    return records.sort_values(identity, kind="stable").reset_index(drop=True)


def protocol_note(records: pd.DataFrame) -> str:
    """The training protocol(s) of ``records`` for a table footer, e.g. "Protocol: 5 epochs,
    batch 32, learning rate 0.0001, chronological train:val:test split 70:10:20 %"; models
    trained under a different protocol (per-model overrides) are named with theirs."""
    parts = []
    for (epochs, batch, rate, split), group in records.groupby(list(PROTOCOL_FIELDS), sort=True):
        models = ", ".join(dict.fromkeys(group["model"]))
        parts.append(f"{epochs} epochs, batch {batch}, learning rate {rate:g}, chronological train:val:test "
                     f"split {split} % ({models})")
    return "Protocol: " + "; ".join(parts) + "."
