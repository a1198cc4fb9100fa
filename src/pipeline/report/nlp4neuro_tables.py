"""Tables 1-3 of NLP4Neuro (paper seed 000, Sec. 4 and App. A.11) from the comparison
frames of :mod:`pipeline.stats.comparisons`. The CSV holds the tidy frame (one row per
cell and metric, every statistic at full precision); LaTeX and Markdown show one row per
cell with mean ± SEM, the n behind it and the (adjusted) p-value of its test."""

from __future__ import annotations

import pandas as pd

from pipeline.report.tables import Table, format_mean_sem, format_p_value
from pipeline.stats.hypothesis import MANN_WHITNEY, WILCOXON
from pipeline.stats.records import METRICS

RMSE_DEFINITION = ("RMSE: paper Eq. 15, mean over a job's test windows of each window's RMSE over time "
                   "steps and the 6 tail segments (rad)")
PEARSON_DEFINITION = ("Pearson r: between predicted and true tail sum (sum of the 6 segment angles) on the "
                      "test frames, overlapping windows averaged")
SEM_DEFINITION = ("mean ± SEM over every (fish, run) job of the cell; SEM = sample SD (ddof = 1) / sqrt(n); "
                  "n/a when n = 1")
NOT_COMPUTABLE = "n.c.: test not computable"


def _p_cell(row) -> str:
    if row["test_note"] == "best":
        return "best"
    if row["test_note"]:
        return "n.c."
    return format_p_value(row["p_adjusted"]) + ("*" if row["significant"] else "")


def _not_computable_note(frame: pd.DataFrame) -> list[str]:
    reasons = sorted({r.removeprefix("not computable: ") for r in frame["test_note"] if r and r != "best"})
    return [f"{NOT_COMPUTABLE} ({'; '.join(reasons)})"] if reasons else []


SHORT_LABELS = {"rmse": ("RMSE (rad)", "RMSE"), "tail_sum_pearson_r": ("Pearson r", "r")}


def _wide(frame: pd.DataFrame, keys: list[str], value_columns: dict[str, callable]) -> pd.DataFrame:
    """One row per cell (``keys``), metric-specific formatted columns side by side; column
    names are templates with ``{label}`` (metric with unit) and ``{short}``."""
    parts = []
    for metric in METRICS:
        sub = frame[frame["metric"] == metric].set_index(keys)
        if sub.empty:
            continue
        label, short = SHORT_LABELS[metric]
        parts.append(pd.DataFrame({name.format(label=label, short=short): sub.apply(fn, axis=1)
                                   for name, fn in value_columns.items()}))
    return pd.concat(parts, axis=1)


def model_comparison_table(comparison: pd.DataFrame, experiment: str, alpha: float) -> Table:
    """Table 1: per model x seq_len, RMSE and tail-sum Pearson r (mean ± SEM, n), each model
    against the best model of its seq_len (Mann-Whitney U, Holm within seq_len)."""
    keys = ["model", "seq_len"]
    display = _wide(comparison, keys, {
        "{label}": lambda r: format_mean_sem(r["mean"], r["sem"]),
        "p {short}": _p_cell,
    })
    n = comparison[comparison["metric"] == "rmse"].set_index(keys)[["n", "n_fish"]]
    display = pd.concat([n.rename(columns={"n": "n (jobs)", "n_fish": "fish"}), display], axis=1).reset_index()
    display = display.rename(columns={"model": "Model", "seq_len": "L"})
    notes = [
        f"Experiment {experiment!r}: every (fish, run) job of a model at window length L (imaging volumes).",
        RMSE_DEFINITION + "; lower is better.", PEARSON_DEFINITION + "; higher is better.", SEM_DEFINITION + ".",
        f"Test: {MANN_WHITNEY} of each model's per-job values against the best model of the same L (lowest mean "
        "RMSE; highest mean r), jobs of all fish and runs pooled as independent samples.",
        "Correction: Holm-Bonferroni over the comparisons against the best within each L and metric; p shown is "
        f"the adjusted p; * = adjusted p < {alpha:g}.",
        *_not_computable_note(comparison),
    ]
    return Table(title=f"Table 1: test-set decoding performance per model and window length ({experiment})",
                 data=comparison, display=display, notes=notes)


def pretrained_vs_untrained_table(comparison: pd.DataFrame, experiment: str, alpha: float,
                                  without_twins: list[str]) -> Table:
    """Table 2: pretrained vs untrained per model and seq_len (Wilcoxon signed-rank on the
    (fish, run) twins, Holm over the table's cells of a metric)."""
    keys = ["model", "seq_len"]
    display = _wide(comparison, keys, {
        "{short} pretrained": lambda r: format_mean_sem(r["pretrained_mean"], r["pretrained_sem"]),
        "{short} untrained": lambda r: format_mean_sem(r["untrained_mean"], r["untrained_sem"]),
        "p {short}": _p_cell,
    })
    n = comparison[comparison["metric"] == "rmse"].set_index(keys)[["n_pairs", "n_fish"]]
    display = pd.concat([n.rename(columns={"n_pairs": "pairs", "n_fish": "fish"}), display], axis=1).reset_index()
    display = display.rename(columns={"model": "Model", "seq_len": "L"})
    notes = [
        f"Experiment {experiment!r}: each pretrained job and its untrained twin share fish, L, run and seed "
        "(pipeline seed derivation), so they are paired by (fish, run); n = pairs.",
        RMSE_DEFINITION + ".", PEARSON_DEFINITION + ".", SEM_DEFINITION + ".",
        f"Test: {WILCOXON} on the per-pair differences pretrained - untrained (zero differences dropped), the "
        "paired test the design supports; not computable with < 2 pairs or < 2 non-zero differences.",
        "Correction: Holm-Bonferroni over all (model, L) cells of the metric; p shown is the adjusted p; "
        f"* = adjusted p < {alpha:g}.",
        *_not_computable_note(comparison),
    ]
    if without_twins:
        notes.append(f"Not in the table (no pretrained weights, untrained only): {', '.join(without_twins)}.")
    unpaired = int(comparison["unpaired_jobs"].sum()) if not comparison.empty else 0
    if unpaired:
        notes.append(f"{unpaired} job(s) without a twin were left out.")
    return Table(title=f"Table 2: pretrained vs untrained weights ({experiment})",
                 data=comparison, display=display, notes=notes)


def embedding_table(comparison: pd.DataFrame, experiment: str, alpha: float) -> Table:
    """Table 3: embedding strategies per model (and seq_len), each against the model's best
    strategy (Mann-Whitney U, Holm within model and seq_len)."""
    keys = ["model", "seq_len", "embedding"]
    display = _wide(comparison, keys, {
        "{label}": lambda r: format_mean_sem(r["mean"], r["sem"]),
        "p {short}": _p_cell,
    })
    n = comparison[comparison["metric"] == "rmse"].set_index(keys)[["n", "n_fish"]]
    display = pd.concat([n.rename(columns={"n": "n (jobs)", "n_fish": "fish"}), display], axis=1).reset_index()
    display = display.rename(columns={"model": "Model", "seq_len": "L", "embedding": "Embedding"})
    first = ["Model", "Embedding", "L"]
    display = display[first + [c for c in display.columns if c not in first]]
    notes = [
        f"Experiment {experiment!r}: input-embedding strategies (linear = null encoding, sinusoidal position, "
        "Shaw relative position, Laplacian eigenmaps, sparse autoencoder) per model and window length L.",
        RMSE_DEFINITION + "; lower is better.", PEARSON_DEFINITION + "; higher is better.", SEM_DEFINITION + ".",
        f"Test: {MANN_WHITNEY} of each strategy's per-job values against the model's best strategy at the same L.",
        "Correction: Holm-Bonferroni within each model and L and metric; p shown is the adjusted p; "
        f"* = adjusted p < {alpha:g}.",
        *_not_computable_note(comparison),
    ]
    return Table(title=f"Table 3: input-embedding strategies per model ({experiment})",
                 data=comparison, display=display, notes=notes)
