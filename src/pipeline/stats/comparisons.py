"""The comparisons behind Tables 1-3 and Figs. 2a, 2b and 3, computed from the records of
:mod:`pipeline.stats.records` (one row per training job).

- :func:`compare_against_best` (Table 1: models within each seq_len; Table 3: embedding
  strategies within each model and seq_len): per arm, mean +/- SEM over every (fish, run)
  of the cell; the best arm is the one with the lowest mean RMSE (highest mean Pearson r);
  every other arm is tested against it with a two-sided Mann-Whitney U test on the
  per-job values, and the p-values of one family (the arms of one seq_len, or of one model
  and seq_len) are Holm-Bonferroni adjusted.
- :func:`compare_paired_weights` (Table 2): pretrained vs a reference arm (``untrained``:
  random init, the pretrained arm's trainable set; ``scratch_full``: random init, every
  weight trained) of one model and seq_len, twins paired by (fish, run) -- they share fish,
  seq_len, run and seed -- and compared with a two-sided Wilcoxon signed-rank test on the
  differences; the p-values of all (model, seq_len) cells of one metric and reference arm
  are Holm-Bonferroni adjusted.

Records are one row per (fish, run) replicate: under blocked cross-validation the caller
averages each replicate's folds first (:func:`pipeline.stats.records.average_over_folds`),
since folds are not independent replicates.

Both return tidy frames (one row per cell and metric) with the tests' n, statistic,
p-value, adjusted p-value, significance at ``alpha`` and, for a test that cannot be
computed, the reason. Those are the *paper protocol* columns (jobs pooled as independent
samples). Beside them, the fish-level columns of :mod:`pipeline.stats.fish_level`:
``fish_mean`` with ``fish_ci_low``/``fish_ci_high`` (bootstrap over fish), the difference to
the reference arm over fish (``difference_fish_mean``, ``difference_ci_low``/``_high``) and
the linear mixed model (``lmm_effect``, ``lmm_statistic``, ``lmm_p_value``,
``lmm_p_adjusted`` (Holm over the same family), ``lmm_significant``, ``lmm_note``). Table 2
also carries the paper's own test, Mann-Whitney U of the pretrained vs the untrained jobs
(``paper_*`` columns), beside the paired Wilcoxon test.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from pipeline.stats.fish_level import bootstrap_ci, mixed_model_test, per_fish_means
from pipeline.stats.hypothesis import (
    HypothesisTestResult,
    holm_bonferroni,
    mann_whitney_u,
    summarise,
    wilcoxon_signed_rank,
)
from pipeline.stats.records import BASELINES, METRICS


def _ordered(values: Sequence, order: Sequence | None) -> list:
    present = list(dict.fromkeys(values))
    if not order:
        return sorted(present)
    return [v for v in order if v in present] + sorted(v for v in present if v not in order)


def _test_columns(result: HypothesisTestResult | None, alpha: float) -> dict:
    if result is None:  # the best arm itself
        return dict(test="", statistic=np.nan, p_value=np.nan, p_adjusted=np.nan, significant=False,
                    test_note="best")
    return dict(test=result.test, statistic=result.statistic, p_value=result.p_value,
                p_adjusted=result.p_adjusted, significant=result.significant(alpha),
                test_note=result.not_computable_reason)


def _lmm_columns(result: HypothesisTestResult | None, alpha: float) -> dict:
    if result is None:  # the reference arm itself
        return dict(lmm_effect=np.nan, lmm_statistic=np.nan, lmm_p_value=np.nan, lmm_p_adjusted=np.nan,
                    lmm_significant=False, lmm_note="reference")
    return dict(lmm_effect=result.effect, lmm_statistic=result.statistic, lmm_p_value=result.p_value,
                lmm_p_adjusted=result.p_adjusted, lmm_significant=result.significant(alpha),
                lmm_note=result.not_computable_reason)


def _fish_columns(arm_cell: pd.DataFrame, reference_cell: pd.DataFrame, metric: str, resamples: int,
                  seed: int) -> dict:
    """Per-fish mean of the arm with its bootstrap CI over fish, and the per-fish difference
    arm - reference (fish holding both) with its CI."""
    arm_means = per_fish_means(arm_cell[metric], arm_cell["fish"])
    difference = (arm_means - per_fish_means(reference_cell[metric], reference_cell["fish"])).dropna()
    low, high = bootstrap_ci(arm_means.to_numpy(), resamples, seed)
    d_low, d_high = bootstrap_ci(difference.to_numpy(), resamples, seed)
    return dict(fish_mean=float(arm_means.mean()), fish_ci_low=low, fish_ci_high=high,
                difference_fish_mean=float(difference.mean()) if len(difference) else np.nan,
                difference_ci_low=d_low, difference_ci_high=d_high)


def _mixed_model(arm_cell: pd.DataFrame, reference_cell: pd.DataFrame, metric: str) -> HypothesisTestResult:
    both = pd.concat([arm_cell.assign(_is_arm=True), reference_cell.assign(_is_arm=False)])
    return mixed_model_test(both[metric].to_numpy(float), both["_is_arm"].to_numpy(), both["fish"].to_numpy())


def compare_against_best(records: pd.DataFrame, arm: str, family: Sequence[str], metrics: Sequence[str],
                         alpha: float, arm_order: Sequence | None = None, resamples: int = 2000,
                         seed: int = 0) -> pd.DataFrame:
    """Each arm (e.g. model) against the family's best arm, per family (e.g. seq_len) and
    metric. Columns: *family, arm, metric, n, n_fish, mean, sem, best_arm, is_best, test,
    statistic (U of the arm's sample), p_value, p_adjusted (Holm within the family and
    metric), significant (p_adjusted < alpha), test_note (paper protocol: jobs pooled); then
    the fish-level columns of the module docstring (``resamples`` bootstrap draws from
    ``seed``)."""
    rows = []
    for family_key, family_records in records.groupby(list(family), sort=True):
        family_key = family_key if isinstance(family_key, tuple) else (family_key,)
        arms = _ordered(family_records[arm], arm_order)
        for metric in metrics:
            direction = METRICS[metric][1]
            samples = {a: family_records.loc[family_records[arm] == a, metric].to_numpy(float) for a in arms}
            summaries = {a: summarise(v) for a, v in samples.items()}
            means = np.array([summaries[a].mean for a in arms])
            best = arms[int(np.argmin(means) if direction == "lower" else np.argmax(means))]
            others = [a for a in arms if a != best]
            tests = dict(zip(others, holm_bonferroni([mann_whitney_u(samples[a], samples[best]) for a in others])))
            cells = {a: family_records[family_records[arm] == a] for a in arms}
            mixed = dict(zip(others, holm_bonferroni([_mixed_model(cells[a], cells[best], metric) for a in others])))
            for a in arms:
                rows.append({**dict(zip(family, family_key)), arm: a, "metric": metric,
                             "n": summaries[a].n, "n_fish": cells[a]["fish"].nunique(),
                             "mean": summaries[a].mean, "sem": summaries[a].sem,
                             "best_arm": best, "is_best": a == best, **_test_columns(tests.get(a), alpha),
                             **_fish_columns(cells[a], cells[best], metric, resamples, seed),
                             **_lmm_columns(mixed.get(a), alpha)})
    return pd.DataFrame(rows)


def baseline_rows(records: pd.DataFrame, arm: str, family: Sequence[str], metrics: Sequence[str],
                  resamples: int = 2000, seed: int = 0) -> pd.DataFrame:
    """Rows of the baseline decoders (:mod:`pipeline.train.baselines`) per seq_len and metric,
    in the layout of :func:`compare_against_best`: ``arm`` = the baseline's label, other
    family columns than seq_len = "baseline". A baseline is deterministic given fish, seq_len
    and split, so its unit is the fish: per-fish value = mean over the fish's jobs (equal up
    to rounding), n = n_fish, mean ± SEM and bootstrap CI over fish. Not tested against the
    best arm (``test_note`` = ``lmm_note`` = "baseline"); NaN where a metric is undefined
    (the training mean has no correlation) or the metrics files predate baselines."""
    rows = []
    for seq_len, cell in records.groupby("seq_len", sort=True):
        for name, label in BASELINES.items():
            for metric in metrics:
                per_fish = per_fish_means(cell[f"{name}_{metric}"], cell["fish"])
                defined = per_fish.notna().all()
                summary = summarise(per_fish.to_numpy()) if defined else None
                low, high = bootstrap_ci(per_fish.to_numpy(), resamples, seed) if defined else (np.nan, np.nan)
                rows.append({**{key: "baseline" for key in family}, "seq_len": seq_len, arm: label,
                             "metric": metric, "n": len(per_fish), "n_fish": len(per_fish),
                             "mean": summary.mean if defined else np.nan, "sem": summary.sem if defined else np.nan,
                             "best_arm": "", "is_best": False, **_test_columns(None, 0.05), "test_note": "baseline",
                             "fish_mean": summary.mean if defined else np.nan, "fish_ci_low": low,
                             "fish_ci_high": high, **_lmm_columns(None, 0.05), "lmm_note": "baseline"})
    return pd.DataFrame(rows)


def beyond_training_mean(records: pd.DataFrame, level: float = 0.95) -> pd.DataFrame:
    """Per fish, seq_len and model: test RMSE minus the training-mean predictor's RMSE on the
    same windows, over the runs (n = runs): mean and its two-sided ``level`` t confidence
    interval (NaN with one run); ``beats_mean`` when the whole interval is below 0."""
    from scipy import stats as scipy_stats

    rows = []
    for (fish, seq_len, model), cell in records.groupby(["fish", "seq_len", "model"], sort=True):
        difference = (cell["rmse"] - cell["mean_predictor_rmse"]).to_numpy(float)
        n, mean = difference.size, float(difference.mean())
        half = (scipy_stats.t.ppf(0.5 + level / 2, n - 1) * difference.std(ddof=1) / np.sqrt(n)) if n > 1 else np.nan
        rows.append({"fish": fish, "seq_len": seq_len, "model": model, "n_runs": n, "difference_mean": mean,
                     "ci_low": mean - half, "ci_high": mean + half, "beats_mean": bool(mean + half < 0)})
    return pd.DataFrame(rows)


def table1_arm(records: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, str]]:
    """Table 1's rows: each model's pretrained jobs when it has any (the paper's Table 1 is
    the pretrained column of Table 2, App. A.10), else its jobs of its one weights option.
    Returns (records, model -> weights used)."""
    weights_used, kept = {}, []
    for model, cell in records.groupby("model", sort=False):
        options = set(cell["weights"])
        if "pretrained" in options:
            weights_used[model] = "pretrained"
        elif len(options) == 1:
            weights_used[model] = options.pop()
        else:
            raise ValueError(f"model {model}: jobs with weights {sorted(options)}; Table 1 needs one option")
        kept.append(cell[cell["weights"] == weights_used[model]])
    return pd.concat(kept).sort_index(), weights_used


def compare_paired_weights(records: pd.DataFrame, metrics: Sequence[str], alpha: float,
                           model_order: Sequence | None = None, resamples: int = 2000,
                           seed: int = 0, reference: str = "untrained") -> pd.DataFrame:
    """Pretrained vs the ``reference`` weights arm (``untrained`` or ``scratch_full``) per
    model and seq_len, paired by (fish, run). Columns: model, seq_len, reference, metric,
    n_pairs, n_fish, pretrained_mean/_sem, reference_mean/_sem, difference_mean/_sem
    (pretrained - reference, over pairs), test, statistic, p_value,
    p_adjusted (Holm over every (model, seq_len) of the metric), significant, test_note,
    unpaired_jobs (jobs without a twin, left out); the paper's Mann-Whitney U of the
    pretrained vs the untrained jobs (``paper_test``, ``paper_statistic``, ``paper_p_value``,
    ``paper_p_adjusted``, ``paper_significant``, ``paper_note``; Holm as above); the
    fish-level columns with pretrained as the arm. Models without both arms are left out
    (the caller lists them)."""
    cells = []
    for (model, seq_len), cell in records.groupby(["model", "seq_len"], sort=True):
        if not {"pretrained", reference} <= set(cell["weights"]):
            continue
        cell = cell[cell["weights"].isin(["pretrained", reference])]
        by_weights = {w: cell[cell["weights"] == w].set_index(["fish", "run"]) for w in ("pretrained", reference)}
        pairs = by_weights["pretrained"].index.intersection(by_weights[reference].index).sort_values()
        seeds_differ = by_weights["pretrained"].loc[pairs, "seed"].to_numpy() != \
            by_weights[reference].loc[pairs, "seed"].to_numpy()
        if seeds_differ.any():
            raise ValueError(f"{model} L{seq_len}: pretrained and {reference} twins with different seeds "
                             f"{list(pairs[seeds_differ])[:3]}; they are not paired by the design")
        unpaired = len(cell) - 2 * len(pairs)
        cells.append((model, seq_len, by_weights, pairs, unpaired, cell["fish"].nunique()))
    rows = []
    for metric in metrics:
        tests, paper_tests, mixed, partial = [], [], [], []
        for model, seq_len, by_weights, pairs, unpaired, n_fish in cells:
            pre = by_weights["pretrained"].loc[pairs, metric].to_numpy(float)
            un = by_weights[reference].loc[pairs, metric].to_numpy(float)
            tests.append(wilcoxon_signed_rank(pre, un))
            paper_tests.append(mann_whitney_u(pre, un))
            arm_cell, reference_cell = (by_weights[w].loc[pairs].reset_index() for w in ("pretrained", reference))
            mixed.append(_mixed_model(arm_cell, reference_cell, metric))
            s_pre, s_un, s_diff = summarise(pre), summarise(un), summarise(pre - un)
            partial.append({"model": model, "seq_len": seq_len, "reference": reference, "metric": metric,
                            "n_pairs": len(pairs), "n_fish": n_fish, "pretrained_mean": s_pre.mean,
                            "pretrained_sem": s_pre.sem, "reference_mean": s_un.mean, "reference_sem": s_un.sem,
                            "difference_mean": s_diff.mean, "difference_sem": s_diff.sem,
                            "unpaired_jobs": unpaired,
                            **_fish_columns(arm_cell, reference_cell, metric, resamples, seed)})
        for row, result, paper, lmm in zip(partial, holm_bonferroni(tests), holm_bonferroni(paper_tests),
                                           holm_bonferroni(mixed)):
            paper_columns = {f"paper_{k}": v for k, v in _test_columns(paper, alpha).items()}
            paper_columns["paper_note"] = paper_columns.pop("paper_test_note")
            rows.append({**row, **_test_columns(result, alpha), **paper_columns, **_lmm_columns(lmm, alpha)})
    frame = pd.DataFrame(rows)
    if not frame.empty and model_order:
        order = {m: i for i, m in enumerate(_ordered(frame["model"], model_order))}
        frame = frame.sort_values(["metric", "model", "seq_len"], key=lambda c: c.map(order) if c.name == "model"
                                  else c, kind="stable").reset_index(drop=True)
    return frame
