"""Tables 1-3 of NLP4Neuro (paper seed 000, Sec. 4 and App. A.11) from the comparison
frames of :mod:`pipeline.stats.comparisons`. The CSV holds the tidy frame (one row per
cell and metric, every statistic at full precision); LaTeX and Markdown show one row per
cell with mean ± SEM over jobs and the paper protocol's (adjusted) p-value, then the
fish-level mean with its 95 % bootstrap CI over fish and the mixed model's adjusted p-value
(:mod:`pipeline.stats.fish_level`). Every footer names the training protocol of the jobs
and the n behind each column with its unit. Under blocked cross-validation each job value
is its (fish, run)'s fold mean, and a "fold min–max" column gives the range over folds of
the cell's per-fold mean (:func:`pipeline.stats.records.fold_spread`)."""

from __future__ import annotations

import pandas as pd

from pipeline.report.tables import Table, format_mean_sem, format_p_value, format_value
from pipeline.stats.fish_level import MIXED_MODEL
from pipeline.stats.hypothesis import MANN_WHITNEY, WILCOXON
from pipeline.stats.records import METRICS

RMSE_DEFINITION = ("RMSE: paper Eq. 15, mean over a job's test windows of each window's RMSE over time "
                   "steps and the 6 tail segments (rad)")
PEARSON_DEFINITION = ("Pearson r: between predicted and true tail sum (sum of the 6 segment angles) on the "
                      "test frames, overlapping windows averaged")
SEM_DEFINITION = ("mean ± SEM over every (fish, run) job of the cell; SEM = sample SD (ddof = 1) / sqrt(n); "
                  "n/a when n = 1")
NOT_COMPUTABLE = "n.c.: test not computable"
FISH_LEVEL_NOTE = ("Fish-level columns (fish = the unit; n = fish): fish mean = mean over fish of each fish's mean "
                   "over its runs, [95 % CI] = percentile bootstrap over fish ({resamples} resamples; n/a with 1 "
                   "fish); p LMM = " + MIXED_MODEL + " of the arm against {reference}, Holm-adjusted over the "
                   "same family as the paper column; * = adjusted p < {alpha:g}.")


#: Table 2's reference arms (pipeline.models.language.WEIGHTS) as the table labels them
ARM_LABELS = {"untrained": "untrained, same trainable set", "scratch_full": "from scratch, all weights"}
ARM_NOTE = ("Arms: pretrained = the backbone's published weights; 'untrained, same trainable set' = the same "
            "architecture with random (seeded) weights training exactly the pretrained arm's parameters (every "
            "backbone weight, or the same LoRA adapters on a frozen random base, quantised alike); 'from scratch, "
            "all weights' (LoRA models only) = random weights with every backbone weight trained (bf16 weights and "
            "8-bit AdamW on CUDA, fp32 and AdamW on CPU; the job's metrics record which). Each arm has the same "
            "budget, seed, embedding/head initialisation and batch order as the pretrained twin.")


def _fold_cell(low: float, high: float) -> str:
    return "–" if pd.isna(low) else f"{format_value(low)}–{format_value(high)}"


def fold_note(frame: pd.DataFrame, column: str = "n_folds") -> list[str]:
    """Footer line for tables of blocked cross-validation jobs (none for a single split)."""
    if column not in frame or not frame[column].notna().any():
        return []
    k = int(frame[column].max())
    return [f"Blocked {k}-fold cross-validation: fold f tests on the f-th of {k} contiguous blocks tiling the "
            "recording, validates on the block just before it (fold 0: just after) and trains on the rest, L volumes "
            "left out between blocks. Each job value is the mean over its (fish, run)'s folds: folds share the fish "
            "and most training frames, so they are not independent replicates and every test and CI above uses the "
            "fold means (n counts (fish, run), not folds). fold min–max: range over the folds of the cell's "
            "per-fold mean (mean over its (fish, run))."]


def _fish_cell(row) -> str:
    ci = ("n/a" if pd.isna(row["fish_ci_low"])
          else f"[{format_value(row['fish_ci_low'])}, {format_value(row['fish_ci_high'])}]")
    return f"{format_value(row['fish_mean'])} {ci}"


def _lmm_cell(row) -> str:
    if row["lmm_note"] == "reference":
        return "best"
    if row["lmm_note"] == "baseline":
        return "–"
    if row["lmm_note"]:
        return "n.c."
    return format_p_value(row["lmm_p_adjusted"]) + ("*" if row["lmm_significant"] else "")


def _p_cell(row) -> str:
    if row["test_note"] == "best":
        return "best"
    if row["test_note"] == "baseline":
        return "–"
    if row["test_note"]:
        return "n.c."
    return format_p_value(row["p_adjusted"]) + ("*" if row["significant"] else "")


def _not_computable_note(frame: pd.DataFrame) -> list[str]:
    notes = [r for column in ("test_note", "paper_note", "lmm_note") if column in frame for r in frame[column]]
    reasons = sorted({r.removeprefix("not computable: ") for r in notes
                      if r and r not in ("best", "reference", "baseline")})
    return [f"{NOT_COMPUTABLE} ({'; '.join(reasons)})"] if reasons else []


BASELINE_NOTE = ("Baseline rows (n = fish; a baseline is deterministic given fish, L and split, so runs add "
                 "nothing): on the same test windows, the training-mean predictor (no correlation: n/a), ridge "
                 "regression from the window's activity (first 64 principal components of the training block, "
                 "every step of the window as lagged features; strength chosen on validation) and the same ridge "
                 "on the stimulus state alone (epoch, moving fraction, grating direction per volume); mean ± SEM and "
                 "95 % bootstrap CI over fish; not tested. A decoder that does not beat the stimulus-only row decodes "
                 "nothing beyond the visual stimulus.")


def with_baselines(comparison: pd.DataFrame, baselines: pd.DataFrame | None) -> pd.DataFrame:
    """The comparison rows followed by the baseline rows (same columns)."""
    if baselines is None or baselines.empty:
        return comparison
    return pd.concat([comparison, baselines], ignore_index=True)


def _fold_columns(comparison: pd.DataFrame, prefix: str = "", name: str = "{short} fold min–max") -> dict:
    """The fold min–max display column (cross-validation tables only)."""
    if f"{prefix}fold_min" not in comparison or not comparison[f"{prefix}fold_min"].notna().any():
        return {}
    return {name: lambda r: _fold_cell(r[f"{prefix}fold_min"], r[f"{prefix}fold_max"])}


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


def beyond_mean_note(beyond: pd.DataFrame) -> str:
    """Footer line: per fish, the decoders whose RMSE is below the training mean's with a 95 %
    CI over runs excluding zero (:func:`pipeline.stats.comparisons.beyond_training_mean`)."""
    parts = []
    for fish, cells in beyond.groupby("fish", sort=True):
        winners = cells[cells["beats_mean"]].sort_values("difference_mean")
        if winners.empty:
            parts.append(f"{fish}: none")
        else:
            best = winners.iloc[0]
            parts.append(f"{fish}: {len(winners)} of {len(cells)} (model, L) cells, best {best['model']} L "
                         f"{best['seq_len']} {format_value(best['difference_mean'], 4)} rad [95 % CI "
                         f"{format_value(best['ci_low'], 4)}, {format_value(best['ci_high'], 4)}]")
    return ("Beyond the training mean, per fish (RMSE − training-mean RMSE on the same windows, 95 % t-CI over runs; "
            "n = runs): " + "; ".join(parts) + ".")


def model_comparison_table(comparison: pd.DataFrame, experiment: str, alpha: float, protocol: str,
                           resamples: int, weights_used: dict[str, str],
                           baselines: pd.DataFrame | None = None, beyond: pd.DataFrame | None = None) -> Table:
    """Table 1: per model x seq_len, RMSE and tail-sum Pearson r (mean ± SEM over jobs, n),
    each model against the best model of its seq_len (paper: Mann-Whitney U on pooled jobs,
    Holm within seq_len; fish level: per-fish means with bootstrap CI, mixed model).
    ``weights_used``: model -> the weights option its rows come from; ``baselines``: rows of
    :func:`pipeline.stats.comparisons.baseline_rows`, shown after the models."""
    comparison = with_baselines(comparison, baselines)
    keys = ["model", "seq_len"]
    display = _wide(comparison, keys, {
        "{label}": lambda r: format_mean_sem(r["mean"], r["sem"]),
        **_fold_columns(comparison),
        "p {short}": _p_cell,
        "{short} fish mean [95 % CI]": _fish_cell,
        "p LMM {short}": _lmm_cell,
    })
    n = comparison[comparison["metric"] == "rmse"].set_index(keys)[["n", "n_fish"]]
    display = pd.concat([n.rename(columns={"n": "n (jobs)", "n_fish": "fish"}), display], axis=1).reset_index()
    display = display.rename(columns={"model": "Model", "seq_len": "L"})
    notes = [
        f"Experiment {experiment!r}: every (fish, run) job of a model at window length L (imaging volumes); "
        f"weights: {', '.join(f'{m} {w}' for m, w in weights_used.items())}.",
        protocol,
        RMSE_DEFINITION + "; lower is better.", PEARSON_DEFINITION + "; higher is better.", SEM_DEFINITION + ".",
        f"Paper protocol (p columns; n = jobs): {MANN_WHITNEY} of each model's per-job values against the best model "
        "of the same L (lowest mean RMSE; highest mean r), jobs of all fish and runs pooled as independent samples "
        "(runs of a fish share its data and test block: anti-conservative).",
        "Correction: Holm-Bonferroni over the comparisons against the best within each L and metric; p shown is "
        f"the adjusted p; * = adjusted p < {alpha:g}.",
        FISH_LEVEL_NOTE.format(resamples=resamples, reference="the best model of the same L", alpha=alpha),
        *([BASELINE_NOTE] if baselines is not None and not baselines.empty else []),
        *([beyond_mean_note(beyond)] if beyond is not None and not beyond.empty else []),
        *fold_note(comparison),
        *_not_computable_note(comparison),
    ]
    return Table(title=f"Table 1: test-set decoding performance per model and window length ({experiment})",
                 data=comparison, display=display, notes=notes)


def pretrained_vs_untrained_table(comparison: pd.DataFrame, experiment: str, alpha: float,
                                  without_twins: list[str], protocol: str, resamples: int,
                                  baselines: pd.DataFrame | None = None) -> Table:
    """Table 2: pretrained vs each other arm (``reference``: untrained with the same
    trainable set; from scratch with all weights, where trained; :data:`ARM_LABELS`) per
    model and seq_len: the paper's Mann-Whitney U beside the Wilcoxon signed-rank test on
    the (fish, run) twins (Holm over the table's cells of a metric and arm), and the
    fish-level columns (pretrained as the arm)."""
    keys = ["model", "seq_len", "reference"]
    display = _wide(comparison, keys, {
        "{short} pretrained": lambda r: format_mean_sem(r["pretrained_mean"], r["pretrained_sem"]),
        **_fold_columns(comparison, "pretrained_", "{short} pretrained fold min–max"),
        "{short} other arm": lambda r: format_mean_sem(r["reference_mean"], r["reference_sem"]),
        **_fold_columns(comparison, "reference_", "{short} other arm fold min–max"),
        "p MW {short}": lambda r: _p_cell({"test_note": r["paper_note"], "p_adjusted": r["paper_p_adjusted"],
                                           "significant": r["paper_significant"]}),
        "p Wilcoxon {short}": _p_cell,
        "{short} pre-other fish mean [95 % CI]": lambda r: _fish_cell({
            "fish_mean": r["difference_fish_mean"], "fish_ci_low": r["difference_ci_low"],
            "fish_ci_high": r["difference_ci_high"]}),
        "p LMM {short}": _lmm_cell,
    })
    n = comparison[comparison["metric"] == "rmse"].set_index(keys)[["n_pairs", "n_fish"]]
    display = pd.concat([n.rename(columns={"n_pairs": "pairs", "n_fish": "fish"}), display], axis=1).reset_index()
    display["reference"] = display["reference"].map(ARM_LABELS)
    display = display.rename(columns={"model": "Model", "seq_len": "L", "reference": "Other arm"})
    notes = [
        f"Experiment {experiment!r}: each pretrained job and its twin in the other arm share fish, L, run and seed "
        "(pipeline seed derivation), so they are paired by (fish, run); n = pairs.",
        ARM_NOTE,
        protocol,
        RMSE_DEFINITION + ".", PEARSON_DEFINITION + ".", SEM_DEFINITION + ".",
        f"Paper protocol (p MW; n = jobs per arm): {MANN_WHITNEY} of the pretrained vs the other arm's jobs, pooled "
        "over fish and runs as independent samples.",
        f"Paired test (p Wilcoxon; n = pairs): {WILCOXON} on the per-pair differences pretrained - other arm (zero "
        "differences dropped); not computable with < 2 pairs or < 2 non-zero differences.",
        "Correction: Holm-Bonferroni over all (model, L) cells of the metric and other arm, per test; p shown is the "
        f"adjusted p; * = adjusted p < {alpha:g}.",
        "pre-other fish mean: mean over fish of each fish's mean difference pretrained - other arm.",
        FISH_LEVEL_NOTE.format(resamples=resamples, reference="the other arm", alpha=alpha),
        *fold_note(comparison, "pretrained_n_folds"),
        *_not_computable_note(comparison),
    ]
    if baselines is not None and not baselines.empty:
        rmse = baselines[baselines["metric"] == "rmse"]
        values = "; ".join(f"L {r.seq_len} {r.model.removeprefix('baseline: ')} {format_mean_sem(r.mean, r.sem)}"
                           for r in rmse.itertuples())
        notes.append(f"Baselines, RMSE (rad) on the same test windows, mean ± SEM over fish (n = fish): {values}. "
                     + BASELINE_NOTE.split(": ", 1)[1])
    if without_twins:
        notes.append(f"Not in the table (no pretrained weights, untrained only): {', '.join(without_twins)}.")
    unpaired = int(comparison["unpaired_jobs"].sum()) if not comparison.empty else 0
    if unpaired:
        notes.append(f"{unpaired} job(s) without a twin were left out.")
    return Table(title=f"Table 2: pretrained vs untrained weights ({experiment})",
                 data=comparison, display=display, notes=notes)


def embedding_table(comparison: pd.DataFrame, experiment: str, alpha: float, protocol: str,
                    resamples: int, baselines: pd.DataFrame | None = None) -> Table:
    """Table 3: embedding strategies per model (and seq_len), each against the model's best
    strategy (paper: Mann-Whitney U, Holm within model and seq_len; fish-level columns), then
    the baseline rows (model "baseline")."""
    comparison = with_baselines(comparison, baselines)
    keys = ["model", "seq_len", "embedding"]
    display = _wide(comparison, keys, {
        "{label}": lambda r: format_mean_sem(r["mean"], r["sem"]),
        **_fold_columns(comparison),
        "p {short}": _p_cell,
        "{short} fish mean [95 % CI]": _fish_cell,
        "p LMM {short}": _lmm_cell,
    })
    n = comparison[comparison["metric"] == "rmse"].set_index(keys)[["n", "n_fish", "n_parameters_trainable"]]
    n["n_parameters_trainable"] = n["n_parameters_trainable"].map(lambda v: "–" if pd.isna(v) else f"{int(v):,}")
    display = pd.concat([n.rename(columns={"n": "n (jobs)", "n_fish": "fish",
                                           "n_parameters_trainable": "trainable params"}), display],
                        axis=1).reset_index()
    display = display.rename(columns={"model": "Model", "seq_len": "L", "embedding": "Embedding"})
    first = ["Model", "Embedding", "L"]
    display = display[first + [c for c in display.columns if c not in first]]
    notes = [
        f"Experiment {experiment!r}: input-embedding strategies (linear = null encoding, sinusoidal position, "
        "Shaw relative position, Laplacian eigenmaps, sparse autoencoder) per model and window length L. With "
        "sinusoidal and relative the backbone adds no position of its own (every token at position 0: BERT/GPT-2 "
        "position vectors constant, LLaMA rotary angle 0); the others keep the backbone's positions. trainable "
        "params: the decoder's trainable parameters (relative adds an attention layer, about 4 d_model²).",
        protocol,
        RMSE_DEFINITION + "; lower is better.", PEARSON_DEFINITION + "; higher is better.", SEM_DEFINITION + ".",
        f"Paper protocol (p columns; n = jobs): {MANN_WHITNEY} of each strategy's per-job values against the "
        "model's best strategy at the same L, jobs pooled as independent samples.",
        "Correction: Holm-Bonferroni within each model and L and metric; p shown is the adjusted p; "
        f"* = adjusted p < {alpha:g}.",
        FISH_LEVEL_NOTE.format(resamples=resamples, reference="the model's best strategy", alpha=alpha),
        *([BASELINE_NOTE] if baselines is not None and not baselines.empty else []),
        *fold_note(comparison),
        *_not_computable_note(comparison),
    ]
    return Table(title=f"Table 3: input-embedding strategies per model ({experiment})",
                 data=comparison, display=display, notes=notes)
