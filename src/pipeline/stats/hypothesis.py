"""Summaries and hypothesis tests used by the paper tables and figures.

Definitions
-----------
- mean +/- SEM: arithmetic mean of the n values; SEM = s / sqrt(n) with s the sample
  standard deviation (ddof = 1). Undefined (NaN) for n < 2.
- Mann-Whitney U (two-sided): ``scipy.stats.mannwhitneyu(a, b, alternative="two-sided",
  method="auto")`` (exact p for small samples without ties, normal approximation with tie
  correction otherwise). U is the statistic of the first sample. Not computable when either
  sample has fewer than 2 values or every value of both samples is equal.
- Wilcoxon signed-rank (two-sided, paired): ``scipy.stats.wilcoxon(a, b,
  zero_method="wilcox", alternative="two-sided")`` on the differences a_i - b_i; zero
  differences are dropped. Not computable with fewer than 2 pairs or fewer than 2 non-zero
  differences.
- Holm-Bonferroni: for m computable p-values sorted ascending p_(1) <= ... <= p_(m), the
  adjusted value is max_{j<=i} min(1, (m - j + 1) p_(j)); it controls the family-wise error
  rate at alpha. Computed by ``statsmodels.stats.multitest.multipletests(method="holm")``.
  Tests that are not computable are not counted in m.

A test that cannot be computed is a :class:`HypothesisTestResult` with ``computable = False``, NaN
statistic and p-values, and the reason, so tables print the reason instead of a p-value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

MANN_WHITNEY = "Mann-Whitney U (two-sided)"
WILCOXON = "Wilcoxon signed-rank (two-sided, paired)"


@dataclass(frozen=True)
class Summary:
    """n, mean and standard error of the mean of one cell's values."""

    n: int
    mean: float
    sem: float  # NaN when n < 2


def summarise(values: Sequence[float]) -> Summary:
    """Mean and SEM (sample standard deviation with ddof=1, over sqrt(n)); NaN values are
    errors (a training job always reports finite metrics)."""
    array = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"non-finite values in {array.tolist()}")
    n = int(array.size)
    if n == 0:
        return Summary(0, math.nan, math.nan)
    sem = float(array.std(ddof=1) / math.sqrt(n)) if n >= 2 else math.nan
    return Summary(n, float(array.mean()), sem)


@dataclass(frozen=True)
class HypothesisTestResult:
    """One hypothesis test. ``p_adjusted`` is filled by :func:`holm_bonferroni`."""

    test: str
    n_a: int  # values in the first sample (pairs for a paired test)
    n_b: int
    statistic: float = math.nan
    p_value: float = math.nan
    p_adjusted: float = math.nan
    not_computable_reason: str = ""  # empty when computable
    effect: float = math.nan  # estimated effect (arm - reference) where the test estimates one

    @property
    def computable(self) -> bool:
        return not self.not_computable_reason

    def significant(self, alpha: float) -> bool:
        """Adjusted p below alpha (False when not computable or not yet adjusted)."""
        return self.computable and bool(self.p_adjusted < alpha)


def _clean(values: Sequence[float]) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if not np.all(np.isfinite(array)):
        raise ValueError(f"non-finite values in {array.tolist()}")
    return array


def mann_whitney_u(a: Sequence[float], b: Sequence[float]) -> HypothesisTestResult:
    """Two-sided Mann-Whitney U test of samples a and b (U of sample a)."""
    a, b = _clean(a), _clean(b)
    if a.size < 2 or b.size < 2:
        return HypothesisTestResult(MANN_WHITNEY, a.size, b.size,
                          not_computable_reason=f"not computable: n = {a.size} vs {b.size} (needs >= 2 each)")
    if np.unique(np.concatenate([a, b])).size == 1:
        return HypothesisTestResult(MANN_WHITNEY, a.size, b.size,
                                    not_computable_reason="not computable: all values tied")
    from scipy import stats  # imported on use: the Snakefile reads pipeline.neds.report's names at parse time

    result = stats.mannwhitneyu(a, b, alternative="two-sided", method="auto")
    return HypothesisTestResult(MANN_WHITNEY, a.size, b.size, float(result.statistic), float(result.pvalue))


def wilcoxon_signed_rank(a: Sequence[float], b: Sequence[float]) -> HypothesisTestResult:
    """Two-sided Wilcoxon signed-rank test of paired samples (a_i, b_i); zero differences
    dropped (``zero_method="wilcox"``). The statistic is scipy's (the smaller rank sum)."""
    a, b = _clean(a), _clean(b)
    if a.size != b.size:
        raise ValueError(f"paired samples differ in length: {a.size} vs {b.size}")
    n_pairs = a.size
    n_nonzero = int(np.count_nonzero(a - b))
    if n_pairs < 2:
        return HypothesisTestResult(WILCOXON, n_pairs, n_pairs,
                          not_computable_reason=f"not computable: {n_pairs} pair(s) (needs >= 2)")
    if n_nonzero < 2:
        return HypothesisTestResult(WILCOXON, n_pairs, n_pairs,
                          not_computable_reason=f"not computable: {n_nonzero} non-zero difference(s) (needs >= 2)")
    from scipy import stats

    result = stats.wilcoxon(a, b, zero_method="wilcox", alternative="two-sided")
    return HypothesisTestResult(WILCOXON, n_pairs, n_pairs, float(result.statistic), float(result.pvalue))


def holm_adjust(p_values: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (same order as the input; NaN entries are not
    tests and stay NaN, and do not count in m)."""
    from statsmodels.stats.multitest import multipletests

    p = np.asarray(p_values, dtype=float)
    adjusted = np.full(p.shape, np.nan)
    valid = np.isfinite(p)
    if valid.any():
        adjusted[valid] = multipletests(p[valid], method="holm")[1]
    return adjusted


def holm_bonferroni(results: Sequence[HypothesisTestResult]) -> list[HypothesisTestResult]:
    """The results with ``p_adjusted`` set by Holm-Bonferroni over this family (the
    computable tests among ``results``)."""
    adjusted = holm_adjust([r.p_value if r.computable else math.nan for r in results])
    return [replace(r, p_adjusted=float(q)) for r, q in zip(results, adjusted)]
