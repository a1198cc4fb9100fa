"""The NLP4Neuro aggregation stages (rules in rules/evaluate.smk): metrics files of one
experiment -> paper table (CSV + LaTeX + Markdown) + figure (PDF + PNG).

Under blocked cross-validation (``cv_folds``) every stage averages each (fish, run)'s
folds into one replicate before any statistic (folds are not independent replicates:
:func:`pipeline.stats.records.average_over_folds`) and adds the per-fold spread of each
cell (:func:`pipeline.stats.records.fold_spread`) to its table.

Each table's provenance ``config hash`` is :func:`pipeline.provenance.config_hash` of the
stage settings (role, experiment, alpha) together with the sorted ``config_hash`` values of
the training jobs it aggregates (each covers that job's description, model, training and
embedding parameters), so equal hashes mean the same jobs summarised the same way.
"""

from __future__ import annotations

import os
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from pipeline.provenance import code_version, config_hash
from pipeline.report.figures import (
    embedding_figure,
    model_comparison_figure,
    pretrained_vs_untrained_figure,
    read_tail_sum_traces,
    save_figure,
    trace_figure,
)
from pipeline.report.nlp4neuro_tables import embedding_table, model_comparison_table, pretrained_vs_untrained_table
from pipeline.report.tables import Provenance, write_table
from pipeline.stats.comparisons import (
    baseline_rows,
    beyond_training_mean,
    compare_against_best,
    compare_paired_weights,
    table1_arm,
)
from pipeline.stats.records import METRICS, average_over_folds, fold_spread, load_records, protocol_note

PathLike = str | os.PathLike


def table_provenance(records: pd.DataFrame, settings: Mapping) -> Provenance:
    """Provenance of a table aggregating ``records`` with the stage ``settings``."""
    digest = config_hash({"settings": dict(settings), "jobs": sorted(records["config_hash"])})
    fish = sorted(records["fish"].unique())
    inputs = f"{len(records)} metrics files, {len(fish)} fish ({', '.join(fish)})"
    return Provenance(digest, code_version(), inputs)


def load_replicates(metrics: Sequence[PathLike], experiment: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(per-job records, per-replicate records: each (fish, run)'s folds averaged)."""
    jobs = load_records(metrics, experiment)
    return jobs, average_over_folds(jobs)


def with_fold_spread(comparison: pd.DataFrame, spread: pd.DataFrame, on: Sequence[str],
                     prefix: str = "") -> pd.DataFrame:
    """``comparison`` with the per-fold spread columns of ``spread``
    (:func:`pipeline.stats.records.fold_spread`: ``n_folds``, ``fold_sd``, ``fold_min``,
    ``fold_max``, named with ``prefix``) joined on ``on`` + metric; NaN for single-split jobs."""
    columns = {c: prefix + c for c in ("n_folds", "fold_sd", "fold_min", "fold_max")}
    if spread.empty:
        return comparison.assign(**{name: np.nan for name in columns.values()})
    return comparison.merge(spread.rename(columns=columns), on=[*on, "metric"], how="left")


def model_comparison_stage(metrics: Sequence[PathLike], experiment: str, model_order: Sequence[str], alpha: float,
                           tables: Mapping[str, PathLike], figure_pdf: PathLike, figure_png: PathLike,
                           resamples: int = 2000, seed: int = 0, table_metrics: Sequence[PathLike] | None = None,
                           table_experiment: str | None = None,
                           table_model_order: Sequence[str] | None = None) -> pd.DataFrame:
    """Fig. 2a from ``metrics`` (the model_comparison experiment) and Table 1 from
    ``table_metrics`` of ``table_experiment`` (the ``model_table`` role; default: the same
    files). Table 1 takes each model's pretrained jobs where it has both weights
    (:func:`pipeline.stats.comparisons.table1_arm`). Returns Table 1's comparison frame."""
    stats = dict(resamples=resamples, seed=seed)
    jobs, records = load_replicates(metrics, experiment)
    figure_comparison = with_fold_spread(
        compare_against_best(records, "model", ["seq_len"], ["rmse"], alpha, model_order, **stats),
        fold_spread(jobs, ["model", "seq_len"], ["rmse"]), ["model", "seq_len"])
    if table_metrics is None:
        table_metrics, table_experiment, table_model_order = metrics, experiment, model_order
    table_jobs, table_records = load_replicates(table_metrics, table_experiment)
    table_records, weights_used = table1_arm(table_records)
    table_jobs = table_jobs[table_jobs["weights"] == table_jobs["model"].map(weights_used)]
    comparison = compare_against_best(table_records, "model", ["seq_len"], list(METRICS), alpha,
                                      table_model_order, **stats)
    comparison = with_fold_spread(comparison, fold_spread(table_jobs, ["model", "seq_len"], list(METRICS)),
                                  ["model", "seq_len"])
    settings = {"role": "model_comparison", "experiment": table_experiment, "alpha": alpha, **stats}
    baselines = baseline_rows(table_records, "model", [], list(METRICS), **stats)
    table = model_comparison_table(comparison, table_experiment, alpha, protocol_note(table_records), resamples,
                                   weights_used, baselines, beyond_training_mean(table_records))
    write_table(table, tables, table_provenance(table_jobs, settings))
    figure_baselines = baseline_rows(records, "model", [], ["rmse"], **stats)
    save_figure(model_comparison_figure(figure_comparison, model_order, figure_baselines), figure_pdf, figure_png)
    return comparison


def pretrained_vs_untrained_stage(metrics: Sequence[PathLike], experiment: str, model_order: Sequence[str],
                                  alpha: float, tables: Mapping[str, PathLike], figure_pdf: PathLike,
                                  figure_png: PathLike, resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Table 2 + Fig. 2b. Models trained untrained only (no weight source) are listed in the
    table's footer; with none left, the stage fails saying so."""
    jobs, records = load_replicates(metrics, experiment)
    weights_per_model = records.groupby("model")["weights"].agg(lambda w: set(w))
    without_twins = [m for m in model_order
                     if m in weights_per_model and not {"pretrained", "untrained"} <= weights_per_model[m]]
    references = [r for r in ("untrained", "scratch_full") if r in set(records["weights"])]
    comparison = pd.concat([compare_paired_weights(records, list(METRICS), alpha, model_order, resamples, seed, r)
                            for r in references], ignore_index=True)
    if comparison.empty or "untrained" not in set(comparison["reference"]):
        raise ValueError(f"experiment {experiment!r}: no model has both pretrained and untrained jobs")
    spread = fold_spread(jobs, ["model", "seq_len", "weights"], list(METRICS))
    comparison = with_fold_spread(comparison, spread[spread["weights"] == "pretrained"].drop(columns="weights"),
                                  ["model", "seq_len"], "pretrained_")
    comparison = with_fold_spread(comparison, spread.rename(columns={"weights": "reference"}),
                                  ["model", "seq_len", "reference"], "reference_")
    settings = {"role": "pretrained_vs_untrained", "experiment": experiment, "alpha": alpha,
                "resamples": resamples, "seed": seed}
    paired = records[~records["model"].isin(without_twins)]
    baselines = baseline_rows(paired, "model", [], ["rmse"], resamples, seed)
    table = pretrained_vs_untrained_table(comparison, experiment, alpha, without_twins, protocol_note(paired),
                                          resamples, baselines)
    write_table(table, tables, table_provenance(jobs, settings))
    save_figure(pretrained_vs_untrained_figure(comparison, paired, model_order), figure_pdf, figure_png)
    return comparison


def embeddings_stage(metrics: Sequence[PathLike], experiment: str, model_order: Sequence[str],
                     embedding_order: Sequence[str], alpha: float, tables: Mapping[str, PathLike],
                     figure_pdf: PathLike, figure_png: PathLike, resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Table 3 + Fig. 3. Models with a single strategy (reservoir, LSTM: linear only) have
    nothing to compare and are left out."""
    jobs, records = load_replicates(metrics, experiment)
    strategies = records.groupby("model")["embedding"].nunique()
    records = records[records["model"].isin(strategies[strategies > 1].index)]
    if records.empty:
        raise ValueError(f"experiment {experiment!r}: no model has more than one embedding strategy")
    comparison = compare_against_best(records, "embedding", ["model", "seq_len"], list(METRICS), alpha,
                                      embedding_order, resamples, seed)
    parameters = records.groupby(["model", "seq_len", "embedding"])["n_parameters_trainable"].max().rename(
        "n_parameters_trainable")
    comparison = comparison.join(parameters, on=["model", "seq_len", "embedding"])
    cell = ["model", "seq_len", "embedding"]
    comparison = with_fold_spread(comparison, fold_spread(jobs, cell, list(METRICS)), cell)
    order = {m: i for i, m in enumerate(model_order)}
    comparison = comparison.sort_values(["model", "seq_len"], key=lambda c: c.map(order) if c.name == "model" else c,
                                        kind="stable").reset_index(drop=True)
    settings = {"role": "embeddings", "experiment": experiment, "alpha": alpha, "resamples": resamples, "seed": seed}
    baselines = baseline_rows(records, "embedding", ["model"], list(METRICS), resamples, seed)
    table = embedding_table(comparison, experiment, alpha, protocol_note(records), resamples, baselines)
    write_table(table, tables, table_provenance(jobs, settings))
    save_figure(embedding_figure(comparison, records, model_order, embedding_order), figure_pdf, figure_png)
    return comparison


def traces_stage(predictions: Mapping[str, Sequence[PathLike]], fish: str, seq_len: int, n_frames: int,
                      figure_pdf: PathLike, figure_png: PathLike) -> None:
    """Fig. 2c from ``predictions``: model -> the predictions.h5 of its runs (one fish, one
    window length)."""
    traces = [read_tail_sum_traces(model, paths) for model, paths in predictions.items()]
    save_figure(trace_figure(traces, fish, seq_len, n_frames), figure_pdf, figure_png)
