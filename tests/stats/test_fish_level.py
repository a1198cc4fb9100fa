"""Fish-level statistics: the mixed model recovers a planted effect and keeps its false-positive
rate where the paper's pooled Mann-Whitney U (runs as independent samples) does not."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.stats.fish_level import bootstrap_ci, mixed_model_test, per_fish_means
from pipeline.stats.hypothesis import mann_whitney_u


def simulate(rng, effect, n_fish=5, n_runs=5, fish_sd=0.002, fish_arm_sd=0.01, run_sd=0.002):
    """RMSE-like values of two arms: a fish offset, a (fish, arm) offset shared by the fish's
    runs (same data, same test block) and run noise; the arm adds ``effect``."""
    values, is_arm, fish = [], [], []
    for f in range(n_fish):
        offset = rng.normal(0, fish_sd)
        for arm in (False, True):
            cell = 0.05 + offset + rng.normal(0, fish_arm_sd) + effect * arm
            values += list(cell + rng.normal(0, run_sd, n_runs))
            is_arm += [arm] * n_runs
            fish += [f"fish{f}"] * n_runs
    return np.array(values), np.array(is_arm), np.array(fish)


def test_mixed_model_recovers_a_known_effect_where_pooled_mann_whitney_is_anti_conservative():
    rng = np.random.default_rng(7)
    values, is_arm, fish = simulate(rng, effect=0.03, n_fish=8)
    result = mixed_model_test(values, is_arm, fish)
    assert result.effect == pytest.approx(0.03, abs=0.01) and result.p_value < 0.01
    # no effect: the pooled test rejects far more often than alpha, the mixed model about alpha
    rejections = {"pooled Mann-Whitney": 0, "mixed model": 0}
    n_datasets = 30
    for _ in range(n_datasets):
        values, is_arm, fish = simulate(rng, effect=0.0)
        rejections["pooled Mann-Whitney"] += mann_whitney_u(values[is_arm], values[~is_arm]).p_value < 0.05
        rejections["mixed model"] += mixed_model_test(values, is_arm, fish).p_value < 0.05
    rates = {name: count / n_datasets for name, count in rejections.items()}
    print("false-positive rates at alpha 0.05 (30 null datasets, 5 fish x 5 runs):", rates)
    assert rates["pooled Mann-Whitney"] >= 0.3 and rates["mixed model"] <= 0.15, rates


def test_mixed_model_needs_two_fish_with_both_arms():
    result = mixed_model_test([0.1, 0.2, 0.1, 0.3], [True, True, False, False], ["a", "a", "a", "a"])
    assert not result.computable and "1 fish with both arms" in result.not_computable_reason


def test_bootstrap_ci_over_fish_brackets_the_mean_and_is_seeded():
    means = per_fish_means([1.0, 3.0, 2.0, 4.0, 10.0, 12.0], ["a", "a", "b", "b", "c", "c"])
    assert list(means) == [2.0, 3.0, 11.0]
    low, high = bootstrap_ci(means, 2000, seed=3)
    assert low <= means.mean() <= high and (low, high) == bootstrap_ci(means, 2000, seed=3)
    assert 2.0 <= low and high <= 11.0
    assert np.isnan(bootstrap_ci([1.0], 100, 0)).all()
