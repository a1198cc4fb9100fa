"""Summaries, tests and correction against hand-computed values and scipy."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from pipeline.stats.hypothesis import (
    HypothesisTestResult,
    holm_adjust,
    holm_bonferroni,
    mann_whitney_u,
    summarise,
    wilcoxon_signed_rank,
)


def test_mean_and_sem_by_hand():
    summary = summarise([1.0, 2.0, 3.0, 4.0])
    # sample SD = sqrt(((1.5^2 + 0.5^2) * 2) / 3) = sqrt(5/3); SEM = SD / 2
    assert summary.n == 4 and summary.mean == 2.5
    assert summary.sem == pytest.approx(math.sqrt(5 / 3) / 2)
    assert summary.sem == pytest.approx(stats.sem([1.0, 2.0, 3.0, 4.0]))


def test_sem_of_one_value_is_undefined():
    summary = summarise([0.3])
    assert summary.n == 1 and summary.mean == 0.3 and math.isnan(summary.sem)


def test_non_finite_values_are_errors():
    with pytest.raises(ValueError, match="non-finite"):
        summarise([1.0, float("nan")])


def test_mann_whitney_by_hand_and_scipy():
    # complete separation of 3 vs 3: U = 0, exact two-sided p = 2 / C(6, 3) = 0.1
    result = mann_whitney_u([1.0, 2.0, 3.0], [4.0, 5.0, 6.0])
    assert result.computable and result.statistic == 0.0 and result.p_value == pytest.approx(0.1)
    a, b = [0.11, 0.25, 0.19, 0.3, 0.22], [0.31, 0.28, 0.4, 0.35]
    expected = stats.mannwhitneyu(a, b, alternative="two-sided")
    result = mann_whitney_u(a, b)
    assert (result.statistic, result.p_value) == (expected.statistic, expected.pvalue)
    assert (result.n_a, result.n_b) == (5, 4)


@pytest.mark.parametrize("a, b, reason", [
    ([0.1], [0.2, 0.3], "n = 1 vs 2"),
    ([0.1], [0.2], "n = 1 vs 1"),
    ([0.2, 0.2], [0.2, 0.2, 0.2], "all values tied"),
])
def test_mann_whitney_not_computable(a, b, reason):
    result = mann_whitney_u(a, b)
    assert not result.computable and reason in result.not_computable_reason
    assert math.isnan(result.p_value) and not result.significant(0.05)


def test_wilcoxon_by_hand_and_scipy():
    # five positive differences: W = 0 (sum of negative ranks), exact p = 2 / 2^5
    result = wilcoxon_signed_rank([2.0, 3.0, 4.0, 5.0, 6.0], [1.0, 1.0, 1.0, 1.0, 1.0])
    assert result.statistic == 0.0 and result.p_value == pytest.approx(0.0625)
    a, b = [0.5, 0.61, 0.42, 0.7, 0.55, 0.58], [0.52, 0.6, 0.47, 0.66, 0.6, 0.59]
    expected = stats.wilcoxon(a, b, zero_method="wilcox")
    result = wilcoxon_signed_rank(a, b)
    assert (result.statistic, result.p_value) == (expected.statistic, expected.pvalue)


@pytest.mark.parametrize("a, b, reason", [
    ([0.1], [0.2], "1 pair(s)"),
    ([0.1, 0.2, 0.3], [0.1, 0.2, 0.3], "0 non-zero"),
    ([0.1, 0.2, 0.3], [0.1, 0.2, 0.4], "1 non-zero"),
])
def test_wilcoxon_not_computable(a, b, reason):
    result = wilcoxon_signed_rank(a, b)
    assert not result.computable and reason in result.not_computable_reason and math.isnan(result.p_value)


def test_wilcoxon_needs_equal_lengths():
    with pytest.raises(ValueError, match="paired"):
        wilcoxon_signed_rank([1.0, 2.0], [1.0])


def test_holm_by_hand():
    # sorted 0.01, 0.03, 0.04, 0.2 -> 4*0.01, 3*0.03, max(0.09, 2*0.04), max(0.09, 0.2)
    adjusted = holm_adjust([0.01, 0.04, 0.03, 0.2])
    np.testing.assert_allclose(adjusted, [0.04, 0.09, 0.09, 0.2])
    np.testing.assert_allclose(holm_adjust([0.5, 0.6]), [1.0, 1.0])  # capped at 1


def test_holm_skips_tests_that_are_not_computable():
    results = [HypothesisTestResult("t", 3, 3, 1.0, 0.02),
               HypothesisTestResult("t", 1, 3, not_computable_reason="not computable: n"),
               HypothesisTestResult("t", 3, 3, 2.0, 0.04)]
    adjusted = holm_bonferroni(results)
    # m = 2 computable tests: 2 * 0.02 = 0.04, max(0.04, 1 * 0.04) = 0.04
    assert adjusted[0].p_adjusted == pytest.approx(0.04) and adjusted[2].p_adjusted == pytest.approx(0.04)
    assert math.isnan(adjusted[1].p_adjusted)
    assert adjusted[0].significant(0.05) and not adjusted[0].significant(0.04)
