"""Figures 2a, 2b, 2c and 3 of NLP4Neuro (paper seed 000, Sec. 4), sized for one paper
column (3.5 in wide, fonts >= 7 pt), saved as PDF + PNG.

- Fig. 2a (:func:`model_comparison_figure`): test RMSE vs window length per model, mean ±
  SEM over (fish, run) jobs (log axis when the model means span more than a factor 3);
  * above a point: the model differs from the best model of that
  length (Mann-Whitney U, Holm-adjusted p < alpha; see pipeline.stats.comparisons).
- Fig. 2b (:func:`pretrained_vs_untrained_figure`): pretrained vs untrained RMSE per model
  and length, squares = mean ± SEM, grey lines join the (fish, run) twins; * = Wilcoxon
  signed-rank Holm-adjusted p < alpha; "n.c." = test not computable.
- Fig. 2c (:func:`trace_figure`): one fish's test-set tail sum (sum of the 6 segment
  angles, rad), ground truth vs each model's prediction (overlapping windows averaged), mean
  over runs with the 95% confidence interval over runs (t distribution, n - 1 dof).
- Fig. 3 (:func:`embedding_figure`): test RMSE per embedding strategy and model, squares =
  mean ± SEM, grey dots = the jobs' values; * = differs from the model's best strategy (Mann-Whitney U,
  Holm-adjusted p < alpha).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import h5py
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from scipy import stats  # noqa: E402

from pipeline.io.atomic import atomic_paths  # noqa: E402

COLUMN_WIDTH_IN = 3.5
MIN_FONT_PT = 7
STYLE = {
    "font.size": 8, "axes.titlesize": 8, "axes.labelsize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7,
    "legend.fontsize": 7, "legend.title_fontsize": 7, "axes.spines.top": False, "axes.spines.right": False,
    "axes.linewidth": 0.6, "lines.linewidth": 1.0, "xtick.major.width": 0.6, "ytick.major.width": 0.6,
    "pdf.fonttype": 42, "savefig.dpi": 300, "figure.dpi": 150,
}
EMBEDDING_LABELS = {"linear": "Linear", "sinusoidal": "Pos.", "relative": "Rel. pos.", "laplacian": "Spectral",
                    "sparse_ae": "Sparse AE", "linear_no_position": "Linear, no pos.",
                    "relative_control": "Rel. ctrl."}
LOG_SCALE_RATIO = 3.0  # Fig. 2a uses a log RMSE axis when the largest model mean exceeds the smallest this many times
WEIGHT_COLORS = {"pretrained": "#1f77b4", "untrained": "#8c8c8c"}


@contextlib.contextmanager
def paper_style() -> Iterator[None]:
    with matplotlib.rc_context(STYLE):
        yield


def save_figure(figure, pdf_path: str | os.PathLike, png_path: str | os.PathLike) -> None:
    """Write the figure as PDF and PNG (300 dpi) atomically, then close it."""
    with paper_style(), atomic_paths(pdf_path, png_path) as (tmp_pdf, tmp_png):
        figure.savefig(tmp_pdf, format="pdf", bbox_inches="tight", pad_inches=0.02)
        figure.savefig(tmp_png, format="png", dpi=STYLE["savefig.dpi"], bbox_inches="tight", pad_inches=0.02)
    plt.close(figure)


def _colors(names: Sequence[str]) -> dict[str, tuple]:
    cmap = plt.get_cmap("tab10")
    return {name: cmap(i % 10) for i, name in enumerate(names)}


def _mark(ax, x: float, y: float, text: str) -> None:
    ax.annotate(text, (x, y), xytext=(0, 1.5), textcoords="offset points", ha="center", va="bottom",
                fontsize=MIN_FONT_PT + 1 if text == "*" else MIN_FONT_PT)


def model_comparison_figure(comparison: pd.DataFrame, model_order: Sequence[str],
                            baselines: pd.DataFrame | None = None):
    """Fig. 2a from a comparison frame (rows of metric ``rmse``), with the baseline rows
    (:func:`pipeline.stats.comparisons.baseline_rows`) as dashed grey curves (mean over fish);
    with ``fold_min``/``fold_max`` columns (blocked CV) a pale bar spans the per-fold means."""
    rmse = comparison[comparison["metric"] == "rmse"]
    models = [m for m in model_order if m in set(rmse["model"])]
    colors = _colors(models)
    seq_lens = sorted(rmse["seq_len"].unique())
    offsets = np.linspace(-0.12, 0.12, len(models)) if len(models) > 1 else [0.0]
    with paper_style():
        figure, ax = plt.subplots(figsize=(COLUMN_WIDTH_IN, 2.4), layout="constrained")
        for offset, model in zip(offsets, models):
            rows = rmse[rmse["model"] == model].sort_values("seq_len")
            x = np.array([seq_lens.index(s) for s in rows["seq_len"]]) + offset
            if "fold_min" in rows and rows["fold_min"].notna().any():  # blocked CV: range of the per-fold means
                ax.vlines(x, rows["fold_min"], rows["fold_max"], color=colors[model], linewidth=3, alpha=0.25)
            ax.errorbar(x, rows["mean"], yerr=rows["sem"].fillna(0.0), marker="o", markersize=3, capsize=2,
                        color=colors[model], label=model)
            for xi, (_, row) in zip(x, rows.iterrows()):
                if row["significant"]:
                    _mark(ax, xi, row["mean"] + (0 if np.isnan(row["sem"]) else row["sem"]), "*")
        if baselines is not None and not baselines.empty:
            base = baselines[(baselines["metric"] == "rmse") & baselines["seq_len"].isin(seq_lens)]
            for (label, rows), style in zip(base.groupby("model", sort=False), (":", "--", "-.")):
                rows = rows.sort_values("seq_len")
                ax.plot([seq_lens.index(v) for v in rows["seq_len"]], rows["mean"], linestyle=style, color="0.5",
                        linewidth=0.8, label=label.removeprefix("baseline: ") + " (baseline)")
        ax.set_xticks(range(len(seq_lens)), [str(s) for s in seq_lens])
        ax.set_xlabel("window length L (imaging volumes)")
        ax.set_ylabel("test RMSE (rad)")
        figure.legend(frameon=False, loc="outside upper center", ncol=3)
        if rmse["mean"].max() > LOG_SCALE_RATIO * rmse["mean"].min():
            ax.set_yscale("log")  # e.g. the reservoir an order of magnitude above the others
    return figure


def pretrained_vs_untrained_figure(comparison: pd.DataFrame, records: pd.DataFrame, model_order: Sequence[str]):
    """Fig. 2b from the Table 2 comparison frame (``rmse`` rows of the untrained reference
    arm) and the job records (for the twin lines)."""
    rmse = comparison[(comparison["metric"] == "rmse") & (comparison["reference"] == "untrained")]
    cells = [(m, s) for m in model_order for s in sorted(rmse.loc[rmse["model"] == m, "seq_len"].unique())]
    width = 0.36
    with paper_style():
        figure, ax = plt.subplots(figsize=(COLUMN_WIDTH_IN, 2.3), layout="constrained")
        for i, (model, seq_len) in enumerate(cells):
            row = rmse[(rmse["model"] == model) & (rmse["seq_len"] == seq_len)].iloc[0]
            tops = []
            for j, (weights, column) in enumerate((("pretrained", "pretrained"), ("untrained", "reference"))):
                mean, sem = row[f"{column}_mean"], row[f"{column}_sem"]
                ax.errorbar(i + (j - 0.5) * width, mean, yerr=0.0 if np.isnan(sem) else sem, fmt="s", markersize=4,
                            capsize=2.5, color=WEIGHT_COLORS[weights], markeredgecolor="black", markeredgewidth=0.4,
                            label=weights if i == 0 else None, zorder=3)
                tops.append(mean + (0.0 if np.isnan(sem) else sem))
            cell = records[(records["model"] == model) & (records["seq_len"] == seq_len)
                           & records["weights"].isin(["pretrained", "untrained"])]
            pairs = cell.pivot_table(index=["fish", "run"], columns="weights", values="rmse").dropna()
            for _, pair in pairs.iterrows():
                ax.plot([i - 0.3 * width, i + 0.3 * width], [pair["pretrained"], pair["untrained"]],
                        color="0.6", linewidth=0.5, marker="o", markersize=1.5, zorder=2)
                tops.append(max(pair["pretrained"], pair["untrained"]))
            label = "*" if row["significant"] else ("n.c." if row["test_note"] else "")
            if label:
                _mark(ax, i, max(tops), label)
        ax.set_xticks(range(len(cells)), [f"{m}\nL={s}" for m, s in cells])
        ax.set_xlim(-0.6, len(cells) - 0.4)
        ax.set_ylabel("test RMSE (rad)")
        ax.margins(y=0.12)
        figure.legend(frameon=False, loc="outside upper center", ncol=3)
    return figure


@dataclass(frozen=True)
class ModelTraces:
    """One model's test-set tail sum on one fish: ``predicted`` (runs, frames) rad;
    ``baselines``: baseline name -> (frames,) rad tail sum (the same for every run; empty
    for files written before baselines existed)."""

    model: str
    times_s: np.ndarray
    target: np.ndarray
    predicted: np.ndarray
    baselines: dict = field(default_factory=dict)


def read_tail_sum_traces(model: str, paths: Sequence[str | os.PathLike]) -> ModelTraces:
    """Tail sums (sum over the 6 segments) of the test frames of every run of one model;
    runs of the same fish and window length share their test frames (checked)."""
    times = target = index = None
    predicted = []
    for path in paths:
        with h5py.File(path, "r") as h5:
            frame_index = h5["test/frame_index"][()]
            run_target = h5["test/frame_targets"][()].sum(axis=1)
            if index is None:
                index, times, target = frame_index, h5["test/frame_times_s"][()], run_target
            elif not np.array_equal(index, frame_index):
                raise ValueError(f"{path}: test frames differ from {paths[0]}")
            predicted.append(h5["test/frame_predictions"][()].sum(axis=1))
            group = h5.get("test/baseline_frame_predictions")
            baselines = {name: group[name][()].sum(axis=1).astype(float) for name in group} if group else {}
    return ModelTraces(model, np.asarray(times, float), np.asarray(target, float), np.asarray(predicted, float),
                       baselines)


def confidence_band(samples: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean over axis 0 and the two-sided ``level`` t confidence interval of the mean
    (mean ± t_{(1+level)/2, n-1} · SD/sqrt(n)); with one sample the band is NaN."""
    samples = np.atleast_2d(samples)
    n = samples.shape[0]
    mean = samples.mean(axis=0)
    if n < 2:
        return mean, np.full_like(mean, np.nan), np.full_like(mean, np.nan)
    half = stats.t.ppf(0.5 + level / 2, n - 1) * samples.std(axis=0, ddof=1) / np.sqrt(n)
    return mean, mean - half, mean + half


def trace_figure(traces: Sequence[ModelTraces], fish: str, seq_len: int, n_frames: int):
    """Fig. 2c: one panel per model, ground truth vs mean prediction with the 95% CI."""
    colors = _colors([t.model for t in traces])
    with paper_style():
        figure, axes = plt.subplots(len(traces), 1, figsize=(COLUMN_WIDTH_IN, 0.7 + 0.85 * len(traces)),
                                    sharex=True, sharey=True, squeeze=False, layout="constrained")
        for ax, trace in zip(axes[:, 0], traces):
            shown = slice(0, n_frames or None)
            t = trace.times_s[shown] - trace.times_s[0]
            mean, low, high = confidence_band(trace.predicted[:, shown])
            ax.plot(t, trace.target[shown], color="black", linewidth=0.8)
            for name, style in zip(("ridge", "stimulus"), ("--", ":")):
                if name in trace.baselines:
                    ax.plot(t, trace.baselines[name][shown], color="0.55", linewidth=0.6, linestyle=style)
            ax.plot(t, mean, color=colors[trace.model], linewidth=0.8)
            if np.isfinite(low).all():
                ax.fill_between(t, low, high, color=colors[trace.model], alpha=0.3, linewidth=0)
            ax.set_title(f"{trace.model} (runs = {trace.predicted.shape[0]})", loc="left", pad=1)
        handles = [Line2D([], [], color="black", linewidth=0.8, label="ground truth"),
                   Line2D([], [], color="0.45", linewidth=0.8, label="prediction (run mean)")]
        if any(trace.predicted.shape[0] > 1 for trace in traces):
            handles.append(Patch(color="0.45", alpha=0.3, linewidth=0, label="95% CI"))
        if any(trace.baselines for trace in traces):
            handles += [Line2D([], [], color="0.55", linewidth=0.6, linestyle="--", label="ridge baseline"),
                        Line2D([], [], color="0.55", linewidth=0.6, linestyle=":", label="stimulus-only baseline")]
        figure.legend(handles=handles, frameon=False, ncol=3, loc="outside upper center")
        axes[-1, 0].set_xlabel(f"time from test-set start (s); fish {fish}, L = {seq_len}")
        figure.supylabel("tail sum (rad)", fontsize=STYLE["axes.labelsize"])
    return figure


def embedding_figure(comparison: pd.DataFrame, records: pd.DataFrame, model_order: Sequence[str],
                     embedding_order: Sequence[str]):
    """Fig. 3 from the Table 3 comparison frame (``rmse`` rows) and the job records."""
    rmse = comparison[comparison["metric"] == "rmse"]
    cells = [(m, s) for m in model_order for s in sorted(rmse.loc[rmse["model"] == m, "seq_len"].unique())]
    embeddings = [e for e in embedding_order if e in set(rmse["embedding"])]
    colors = _colors(embeddings)
    width = 0.8 / len(embeddings)
    with paper_style():
        figure, ax = plt.subplots(figsize=(COLUMN_WIDTH_IN, 2.3), layout="constrained")
        for i, (model, seq_len) in enumerate(cells):
            for j, embedding in enumerate(embeddings):
                selected = rmse[(rmse["model"] == model) & (rmse["seq_len"] == seq_len)
                                & (rmse["embedding"] == embedding)]
                if selected.empty:
                    continue
                row = selected.iloc[0]
                x = i + (j - (len(embeddings) - 1) / 2) * width
                sem = 0.0 if np.isnan(row["sem"]) else row["sem"]
                ax.errorbar(x, row["mean"], yerr=sem, fmt="s", markersize=4, capsize=2, color=colors[embedding],
                            markeredgecolor="black", markeredgewidth=0.4, zorder=3,
                            label=EMBEDDING_LABELS.get(embedding, embedding) if i == 0 else None)
                values = records.loc[(records["model"] == model) & (records["seq_len"] == seq_len)
                                     & (records["embedding"] == embedding), "rmse"].to_numpy()
                ax.scatter(np.full(values.size, x + 0.25 * width), values, s=4, color="0.45", zorder=2, linewidths=0)
                if row["significant"]:
                    _mark(ax, x, max(row["mean"] + sem, values.max()), "*")
        multiple_lengths = len({s for _, s in cells}) > 1
        ax.set_xticks(range(len(cells)), [f"{m}\nL={s}" if multiple_lengths else m for m, s in cells])
        ax.set_xlim(-0.6, len(cells) - 0.4)
        ax.set_ylabel("test RMSE (rad)")
        ax.margins(y=0.12)
        figure.legend(frameon=False, loc="outside upper center", ncol=3)
        if not multiple_lengths and cells:
            ax.set_title(f"L = {cells[0][1]}", loc="left")
    return figure
