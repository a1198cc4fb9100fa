"""The comparisons behind Tables 1-3 and Figs. 2a, 2b and 3, computed from the records of
:mod:`pipeline.stats.records` (one row per training job).

- :func:`compare_against_best` (Table 1: models within each seq_len; Table 3: embedding
  strategies within each model and seq_len): per arm, mean +/- SEM over every (fish, run)
  of the cell; the best arm is the one with the lowest mean RMSE (highest mean Pearson r);
  every other arm is tested against it with a two-sided Mann-Whitney U test on the
  per-job values, and the p-values of one family (the arms of one seq_len, or of one model
  and seq_len) are Holm-Bonferroni adjusted.
- :func:`compare_paired_weights` (Table 2): pretrained vs untrained twins of one model and
  seq_len are paired by (fish, run) -- the twins share fish, seq_len, run and seed -- and
  compared with a two-sided Wilcoxon signed-rank test on the differences; the p-values of
  all (model, seq_len) cells of one metric are Holm-Bonferroni adjusted.

Both return tidy frames (one row per cell and metric) with the tests' n, statistic,
p-value, adjusted p-value, significance at ``alpha`` and, for a test that cannot be
computed, the reason.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd

from pipeline.stats.hypothesis import (
    HypothesisTestResult,
    holm_bonferroni,
    mann_whitney_u,
    summarise,
    wilcoxon_signed_rank,
)
from pipeline.stats.records import METRICS


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


def compare_against_best(records: pd.DataFrame, arm: str, family: Sequence[str], metrics: Sequence[str],
                         alpha: float, arm_order: Sequence | None = None) -> pd.DataFrame:
    """Each arm (e.g. model) against the family's best arm, per family (e.g. seq_len) and
    metric. Columns: *family, arm, metric, n, n_fish, mean, sem, best_arm, is_best, test,
    statistic (U of the arm's sample), p_value, p_adjusted (Holm within the family and
    metric), significant (p_adjusted < alpha), test_note."""
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
            for a in arms:
                cell = family_records[family_records[arm] == a]
                rows.append({**dict(zip(family, family_key)), arm: a, "metric": metric,
                             "n": summaries[a].n, "n_fish": cell["fish"].nunique(),
                             "mean": summaries[a].mean, "sem": summaries[a].sem,
                             "best_arm": best, "is_best": a == best, **_test_columns(tests.get(a), alpha)})
    return pd.DataFrame(rows)


def compare_paired_weights(records: pd.DataFrame, metrics: Sequence[str], alpha: float,
                           model_order: Sequence | None = None) -> pd.DataFrame:
    """Pretrained vs untrained per model and seq_len, paired by (fish, run). Columns:
    model, seq_len, metric, n_pairs, n_fish, pretrained_mean/_sem, untrained_mean/_sem,
    difference_mean/_sem (pretrained - untrained, over pairs), test, statistic, p_value,
    p_adjusted (Holm over every (model, seq_len) of the metric), significant, test_note,
    unpaired_jobs (jobs without a twin, left out). Models without both weights are left
    out (the caller lists them)."""
    cells = []
    for (model, seq_len), cell in records.groupby(["model", "seq_len"], sort=True):
        if set(cell["weights"]) != {"pretrained", "untrained"}:
            continue
        by_weights = {w: cell[cell["weights"] == w].set_index(["fish", "run"]) for w in ("pretrained", "untrained")}
        pairs = by_weights["pretrained"].index.intersection(by_weights["untrained"].index).sort_values()
        seeds_differ = by_weights["pretrained"].loc[pairs, "seed"].to_numpy() != \
            by_weights["untrained"].loc[pairs, "seed"].to_numpy()
        if seeds_differ.any():
            raise ValueError(f"{model} L{seq_len}: pretrained and untrained twins with different seeds "
                             f"{list(pairs[seeds_differ])[:3]}; they are not paired by the design")
        unpaired = len(cell) - 2 * len(pairs)
        cells.append((model, seq_len, by_weights, pairs, unpaired, cell["fish"].nunique()))
    rows = []
    for metric in metrics:
        tests, partial = [], []
        for model, seq_len, by_weights, pairs, unpaired, n_fish in cells:
            pre = by_weights["pretrained"].loc[pairs, metric].to_numpy(float)
            un = by_weights["untrained"].loc[pairs, metric].to_numpy(float)
            tests.append(wilcoxon_signed_rank(pre, un))
            s_pre, s_un, s_diff = summarise(pre), summarise(un), summarise(pre - un)
            partial.append({"model": model, "seq_len": seq_len, "metric": metric, "n_pairs": len(pairs),
                            "n_fish": n_fish, "pretrained_mean": s_pre.mean, "pretrained_sem": s_pre.sem,
                            "untrained_mean": s_un.mean, "untrained_sem": s_un.sem,
                            "difference_mean": s_diff.mean, "difference_sem": s_diff.sem,
                            "unpaired_jobs": unpaired})
        for row, result in zip(partial, holm_bonferroni(tests)):
            rows.append({**row, **_test_columns(result, alpha)})
    frame = pd.DataFrame(rows)
    if not frame.empty and model_order:
        order = {m: i for i, m in enumerate(_ordered(frame["model"], model_order))}
        frame = frame.sort_values(["metric", "model", "seq_len"], key=lambda c: c.map(order) if c.name == "model"
                                  else c, kind="stable").reset_index(drop=True)
    return frame
