"""NEDS tables (CSV + Markdown) and the region-classification confusion-matrix figure.

Inputs are the JSON records the NEDS jobs write (see docs/architecture.md, "NEDS"):
per-session model records ``{"session", "model", "metrics", "training"}``, per-session
baseline records ``{"session", "linear", "rrr", "chance"}`` and the region-classification
record ``{model: classify_regions result}``.

Tables (one row per session and method, then a ``mean`` row per method over sessions):

- ``comparison``: NEDS models vs baselines and the chance predictor: ``bps`` (encoding,
  all behaviours), ``choice_accuracy``, ``block_accuracy``, ``wheel_speed_r2``,
  ``whisker_motion_energy_r2`` (test trials; empty where a model does not do the task);
- ``encoding_per_variable`` (paper Table 1): bps from all behaviours and from each alone;
- ``region``: accuracy, chance and neuron count per model;
- ``training``: epochs, best epoch, training tokens/s, device, seconds, parameters.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.io.atomic import atomic_paths

COMPARISON_COLUMNS = ["bps", "choice_accuracy", "block_accuracy", "wheel_speed_r2", "whisker_motion_energy_r2"]
PER_VARIABLE_COLUMNS = ["bps", "bps_choice", "bps_block", "bps_wheel_speed", "bps_whisker_motion_energy"]


def _with_means(rows: list[dict], columns: list[str]) -> pd.DataFrame:
    table = pd.DataFrame(rows, columns=["session", "method", *columns])
    means = table.groupby("method", sort=False)[columns].mean().reset_index()
    means.insert(0, "session", "mean")
    return pd.concat([table, means], ignore_index=True)


def comparison_table(models: list[dict], baselines: list[dict]) -> pd.DataFrame:
    """NEDS models vs baselines (module docstring)."""
    rows = []
    for record in baselines:
        for method in ("chance", "linear", "rrr"):
            rows.append({"session": record["session"], "method": method, **record[method]})
    rows += [{"session": r["session"], "method": r["model"], **r["metrics"]} for r in models]
    return _with_means(rows, COMPARISON_COLUMNS)


def per_variable_table(models: list[dict], baselines: list[dict]) -> pd.DataFrame:
    """Encoding bps from all behaviours and from each one alone, for every encoding model."""
    rows = [{"session": r["session"], "method": m, **r[m]} for r in baselines for m in ("linear", "rrr")]
    rows += [{"session": r["session"], "method": r["model"], **r["metrics"]} for r in models if "bps" in r["metrics"]]
    return _with_means(rows, PER_VARIABLE_COLUMNS)


def region_table(region: dict) -> pd.DataFrame:
    return pd.DataFrame([{"model": model, "accuracy": r["accuracy"] if r["accuracy"] is not None else np.nan,
                          "chance": r["chance"] if r["chance"] is not None else np.nan, "n_neurons": r["n_neurons"],
                          "regions": " ".join(r["classes"]), "note": r.get("note", "")} for model, r in region.items()])


def training_table(models: list[dict]) -> pd.DataFrame:
    keys = ["epochs", "best_epoch", "tokens_per_s", "device", "train_seconds", "n_parameters"]
    return pd.DataFrame([{"session": r["session"], "model": r["model"], **{k: r["training"][k] for k in keys}}
                         for r in models])


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
    """One panel per model: confusion matrix normalised per true region (colour), with
    neuron counts written in the cells."""
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
        counts = np.asarray(result["confusion"], float)
        fractions = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        image = ax.imshow(fractions, vmin=0, vmax=1, cmap="Blues")
        classes = result["classes"]
        ax.set_xticks(range(len(classes)), classes, rotation=45)
        ax.set_yticks(range(len(classes)), classes)
        for i in range(len(classes)):
            for j in range(len(classes)):
                ax.text(j, i, f"{int(counts[i, j])}", ha="center", va="center",
                        color="white" if fractions[i, j] > 0.6 else "black", fontsize=8)
        ax.set_xlabel("predicted region")
        if index == 0:
            ax.set_ylabel("true region")
        ax.set_title(f"{model}\naccuracy {result['accuracy']:.2f} (chance {result['chance']:.2f}, n={result['n_neurons']})",
                     fontsize=9)
    if image is not None:
        fig.colorbar(image, ax=axes[0].tolist(), fraction=0.03, label="fraction of true region")
    with atomic_paths(pdf_path, png_path) as (tmp_pdf, tmp_png):
        fig.savefig(tmp_pdf, format="pdf", bbox_inches="tight")
        fig.savefig(tmp_png, format="png", dpi=150, bbox_inches="tight")
    plt.close(fig)
