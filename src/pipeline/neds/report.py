"""NEDS tables (CSV + Markdown) and the region-classification confusion-matrix figure.

Inputs are the JSON records the NEDS jobs write (see docs/architecture.md, "NEDS"):
per-session model records ``{"session", "model", "metrics", "training"}`` (the NDT2 / POYO+
baselines': ``"model"`` = ``ndt2``, ``ndt2_multi_session``, ``poyo`` or ``poyo_multi_session``,
decoding metrics only), per-session
baseline records ``{"session", "linear", "chance"}`` joined with the session's multi-session
RRR metrics (``"rrr"``) and the region-classification
record ``{model: classify_regions result}``.

Every method is scored on the same sessions: the EVALUATED sessions (the held-out ones when
there is a multi-session model, else all), as the paper scores everything on held-out
animals. Tables (one row per session and method, then a ``mean`` and an ``s.e.`` row per
method: mean and standard error (SD with ddof 1 / sqrt(n)) over the sessions with a value):

- ``comparison``: NEDS models vs baselines and the chance predictor: ``bps`` (encoding,
  all behaviours), choice / block ``accuracy`` and ``balanced_accuracy``, wheel / whisker
  single-trial ``r2`` and ``psth_r2`` (test trials; empty where a model does not do the task);
- ``paired_tests``: per metric, every other method against the reference NEDS model
  (``neds_multi_session`` when present, else ``neds_multimodal``, else the first NEDS model)
  over the sessions both have: mean difference (reference - method), two-sided Wilcoxon
  signed-rank test, Holm-adjusted within the metric (:mod:`pipeline.stats.hypothesis`);
- ``encoding_per_variable`` (paper Table 1): bps from all behaviours and from each alone;
- ``encoding_per_region``: bps of each encoding method per brain region (the binned file's
  ``neurons/region`` label), mean and s.e. over the region's neurons of the evaluated sessions;
- ``region``: balanced accuracy and accuracy with their chance levels, neurons, sessions, CV
  scheme and per-region accuracy per model;
- ``training``: epochs, best epoch (and each task's own best epoch and the selected epoch's
  shortfall), training tokens/s, device, seconds, parameters.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.io.atomic import atomic_paths
from pipeline.stats.hypothesis import holm_bonferroni, summarise, wilcoxon_signed_rank

COMPARISON_COLUMNS = ["bps", "choice_accuracy", "choice_balanced_accuracy", "block_accuracy",
                      "block_balanced_accuracy", "wheel_speed_r2", "wheel_speed_psth_r2", "whisker_motion_energy_r2",
                      "whisker_motion_energy_psth_r2"]
PER_VARIABLE_COLUMNS = ["bps", "bps_choice", "bps_block", "bps_wheel_speed", "bps_whisker_motion_energy"]
BASELINES = ("chance", "linear", "rrr")
#: Tables of the report rule (results/tables/neds_<name>.{csv,md}).
REPORT_TABLES = ("comparison", "paired_tests", "encoding_per_variable", "encoding_per_region", "region", "training")
#: Figures of the report rule (results/figures/neds_<name>.{pdf,png}).
REPORT_FIGURES = ("region_confusion", "validation_curves")


def _summary_rows(table: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    rows = []
    for method, group in table.groupby("method", sort=False):
        summaries = {c: summarise(group[c].dropna().to_numpy(float)) for c in columns}
        rows.append({"session": "mean", "method": method, **{c: summaries[c].mean for c in columns}})
        rows.append({"session": "s.e.", "method": method, **{c: summaries[c].sem for c in columns}})
    return pd.DataFrame(rows, columns=table.columns)


def _session_rows(models: list[dict], baselines: list[dict], sessions: list[str], methods=BASELINES,
                  encoding_only: bool = False) -> list[dict]:
    """One row per (evaluated session, method); a method missing an evaluated session is an error."""
    rows = [{"session": r["session"], "method": m, **r[m]} for r in baselines for m in methods]
    rows += [{"session": r["session"], "method": r["model"], **r["metrics"]} for r in models
             if not encoding_only or "bps" in r["metrics"]]
    rows = [row for row in rows if row["session"] in sessions]
    for method in dict.fromkeys(row["method"] for row in rows):
        missing = sorted(set(sessions) - {row["session"] for row in rows if row["method"] == method})
        if missing:
            raise ValueError(f"method {method} has no record for the evaluated session(s) {missing}")
    return rows


def _table(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    table = pd.DataFrame(rows).reindex(columns=["session", "method", *columns]).astype({c: float for c in columns})
    return pd.concat([table, _summary_rows(table, columns)], ignore_index=True)


def comparison_table(models: list[dict], baselines: list[dict], sessions: list[str]) -> pd.DataFrame:
    """NEDS models vs baselines on the evaluated ``sessions`` (module docstring)."""
    return _table(_session_rows(models, baselines, sessions), COMPARISON_COLUMNS)


def reference_method(methods) -> str:
    """The NEDS model the others are tested against (module docstring)."""
    methods = list(methods)
    for name in ("neds_multi_session", "neds_multimodal"):
        if name in methods:
            return name
    neds = [m for m in methods if m.startswith("neds_")]
    if not neds:
        raise ValueError(f"no NEDS model among {methods}")
    return neds[0]


def paired_tests_table(comparison: pd.DataFrame) -> pd.DataFrame:
    """Paired per-session tests of every method against :func:`reference_method` (module docstring)."""
    per_session = comparison[~comparison.session.isin(["mean", "s.e."])]
    reference = reference_method(per_session.method.unique())
    rows = []
    for metric in COMPARISON_COLUMNS:
        values = per_session.pivot(index="session", columns="method", values=metric)
        if values[reference].isna().all():
            continue
        family, entries = [], []
        for method in values.columns:
            if method == reference or values[method].isna().all():
                continue
            pairs = values[[reference, method]].dropna()
            family.append(wilcoxon_signed_rank(pairs[reference].to_numpy(), pairs[method].to_numpy()))
            entries.append({"metric": metric, "method": method, "reference": reference, "n_sessions": len(pairs),
                            "mean_difference": float((pairs[reference] - pairs[method]).mean())})
        for entry, result in zip(entries, holm_bonferroni(family)):
            rows.append({**entry, "statistic": result.statistic, "p_value": result.p_value,
                         "p_holm": result.p_adjusted, "note": result.not_computable_reason})
    return pd.DataFrame(rows, columns=["metric", "method", "reference", "n_sessions", "mean_difference", "statistic",
                                       "p_value", "p_holm", "note"])


def per_variable_table(models: list[dict], baselines: list[dict], sessions: list[str]) -> pd.DataFrame:
    """Encoding bps from all behaviours and from each one alone, for every encoding model."""
    return _table(_session_rows(models, baselines, sessions, ("linear", "rrr"), encoding_only=True),
                  PER_VARIABLE_COLUMNS)


def per_region_table(models: list[dict], baselines: list[dict], sessions: list[str],
                     regions: dict[str, np.ndarray]) -> pd.DataFrame:
    """bps per brain region of every encoding method; ``regions``: session -> region label
    per neuron (the binned file's ``neurons/region``)."""
    pooled: dict[tuple[str, str], list[float]] = {}
    for row in _session_rows(models, baselines, sessions, ("linear", "rrr"), encoding_only=True):
        labels = regions[row["session"]]
        if len(labels) != len(row["bps_per_neuron"]):
            raise ValueError(f"session {row['session']}: {len(row['bps_per_neuron'])} neurons scored by "
                             f"{row['method']}, {len(labels)} region labels")
        for label, bps in zip(labels, row["bps_per_neuron"]):
            if bps is not None:
                pooled.setdefault((row["method"], str(label)), []).append(bps)
    rows = []
    for (method, region), values in pooled.items():
        summary = summarise(values)
        rows.append({"method": method, "region": region, "n_neurons": summary.n, "bps": summary.mean,
                     "bps_se": summary.sem})
    return pd.DataFrame(rows, columns=["method", "region", "n_neurons", "bps", "bps_se"]).sort_values(
        ["region", "method"], kind="stable", ignore_index=True)


def region_table(region: dict) -> pd.DataFrame:
    """One row per model: balanced accuracy (its SD over CV repeats) and its chance (1 / regions;
    per-session classifiers: mean over sessions of 1 / the session's regions), accuracy and its
    chance (the training folds' majority region under the same folds), neurons, sessions,
    cross-validation scheme, classifier (``lda`` or ``svc``), and the accuracy of each region (fraction of its neurons
    classified correctly, pooled over sessions; their mean is the balanced accuracy of one
    classifier for all sessions, while per-session classifiers average each session's own)."""

    def value(r, key):
        return np.nan if r.get(key) is None else r[key]

    rows = []
    for model, r in region.items():
        row = {"model": model, **{k: value(r, k) for k in ("balanced_accuracy", "balanced_accuracy_sd", "balanced_chance", "accuracy",
                                                      "chance")},
               "n_neurons": r["n_neurons"], "n_sessions": r.get("n_sessions", np.nan), "cv": r.get("cv", ""),
               "classifier": r.get("classifier", ""),
               "regions": " ".join(r["classes"])}
        row.update({f"accuracy_{c}": v for c, v in r.get("per_region_accuracy", {}).items()})
        rows.append({**row, "note": r.get("note", "")})
    return pd.DataFrame(rows)


def training_table(models: list[dict]) -> pd.DataFrame:
    keys = ["epochs", "best_epoch", "skipped_batches", "tokens_per_s", "device", "train_seconds", "n_parameters"]
    rows = []
    for r in models:
        training = r["training"]
        row = {"session": r["session"], "model": r["model"], **{k: training[k] for k in keys}}
        for task in training["tasks"]:
            row[f"{task}_best_epoch"] = training["task_best_epoch"][task]
            row[f"{task}_shortfall"] = training["task_shortfall"][task]
        rows.append(row)
    return pd.DataFrame(rows)


def _markdown(table: pd.DataFrame) -> str:
    def cell(value) -> str:
        if isinstance(value, float):
            return "" if math.isnan(value) else f"{value:.3f}" if abs(value) < 1000 else f"{value:.0f}"
        return str(value)

    lines = ["| " + " | ".join(table.columns) + " |", "|" + "---|" * len(table.columns)]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join(lines) + "\n"


def write_table(table: pd.DataFrame, csv_path: str | Path, md_path: str | Path, title: str) -> None:
    """``table`` as CSV and as a Markdown table under ``title`` (both atomically)."""
    with atomic_paths(csv_path, md_path) as (tmp_csv, tmp_md):
        table.to_csv(tmp_csv, index=False)
        tmp_md.write_text(f"# {title}\n\n{_markdown(table)}")


def plot_confusion(region: dict, pdf_path: str | Path, png_path: str | Path) -> None:
    """One panel per model: confusion matrix normalised per true region (colour; its diagonal
    is the per-region accuracy), with neuron counts (mean over CV repeats) written in the cells; the title gives the
    CV scheme, balanced accuracy and accuracy with their chance levels."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(region), figsize=(4.0 * len(region) + 0.6, 3.8), squeeze=False)
    image = None
    for index, (ax, (model, result)) in enumerate(zip(axes[0], region.items())):
        if result["accuracy"] is None:
            ax.text(0.5, 0.5, f"{model}\n{result['note']}", ha="center", va="center", wrap=True, fontsize=8)
            ax.set_axis_off()
            continue
        repeats = result.get("cv_repeats", 1)
        counts = np.asarray(result["confusion"], float) / repeats  # neurons (mean over repeats)
        fractions = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        image = ax.imshow(fractions, vmin=0, vmax=1, cmap="Blues")
        classes = result["classes"]
        ax.set_xticks(range(len(classes)), classes, rotation=45)
        ax.set_yticks(range(len(classes)), classes)
        for i in range(len(classes)):
            for j in range(len(classes)):
                ax.text(j, i, f"{counts[i, j]:.0f}" if repeats == 1 else f"{counts[i, j]:.1f}", ha="center", va="center",
                        color="white" if fractions[i, j] > 0.6 else "black", fontsize=8)
        ax.set_xlabel("predicted region")
        if index == 0:
            ax.set_ylabel("true region")
        ax.set_title(f"{model} ({result['cv']})\nbalanced accuracy {result['balanced_accuracy']:.2f} "
                     f"(chance {result['balanced_chance']:.2f})\naccuracy {result['accuracy']:.2f} "
                     f"(chance {result['chance']:.2f}), n={result['n_neurons']}", fontsize=8)
    if image is not None:
        fig.colorbar(image, ax=axes[0].tolist(), fraction=0.03, label="fraction of true region")
    with atomic_paths(pdf_path, png_path) as (tmp_pdf, tmp_png):
        fig.savefig(tmp_pdf, format="pdf", bbox_inches="tight")
        fig.savefig(tmp_png, format="png", dpi=150, bbox_inches="tight")
    plt.close(fig)


def plot_validation_curves(trained: list[dict], pdf_path: str | Path, png_path: str | Path) -> None:
    """Per-task validation curves of every training job (one panel per task: encoding =
    validation bps, decoding = mean of R² and accuracies; one line per job, the selected
    epoch marked), from the records' ``training.history``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tasks = [t for t in ("encoding", "decoding") if any(t in r["training"]["tasks"] for r in trained)]
    fig, axes = plt.subplots(1, max(1, len(tasks)), figsize=(5.0 * max(1, len(tasks)), 3.6), squeeze=False)
    for ax, task in zip(axes[0], tasks):
        for record in trained:
            training = record["training"]
            if task not in training["tasks"]:
                continue
            epochs = [h["epoch"] for h in training["history"]]
            scores = [np.nan if h["val_task_scores"][task] is None else h["val_task_scores"][task]
                      for h in training["history"]]
            (line,) = ax.plot(epochs, scores, lw=1, label=f"{record['model']} {record['session']}")
            ax.plot(training["best_epoch"], scores[epochs.index(training["best_epoch"])], "o", color=line.get_color())
        ax.set_xlabel("epoch")
        ax.set_ylabel("validation bps" if task == "encoding" else "validation mean of R² and accuracies")
        ax.set_title(f"{task} (dot: selected epoch)", fontsize=9)
        ax.legend(fontsize=6, loc="best")
    with atomic_paths(pdf_path, png_path) as (tmp_pdf, tmp_png):
        fig.savefig(tmp_pdf, format="pdf", bbox_inches="tight")
        fig.savefig(tmp_png, format="png", dpi=150, bbox_inches="tight")
    plt.close(fig)
