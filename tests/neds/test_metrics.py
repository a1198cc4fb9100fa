"""Bits per spike, single-trial R² and accuracy against values computed by hand."""

import math

import numpy as np
import pytest

from pipeline.neds.metrics import (
    NonFinitePrediction,
    accuracy,
    balanced_accuracy,
    bits_per_spike,
    co_bps,
    psth_r2,
    single_trial_r2,
)


def test_bits_per_spike_matches_the_hand_computed_value():
    # one neuron, two bins: counts 0 and 2, predicted rates 0.5 and 1.5, mean-rate null 1.
    # LL_model = (0 - 0.5) + (2 ln 1.5 - 1.5) = -2 + 2 ln 1.5; LL_null = 2 ln 1 - 2 = -2
    # bps = 2 ln 1.5 / (2 ln 2) = log2(1.5) = 0.5849625
    bps = bits_per_spike(np.array([[0.0], [2.0]]), np.array([[0.5], [1.5]]))
    assert bps[0] == pytest.approx(0.5849625007, abs=1e-9)


def test_bits_per_spike_is_zero_for_the_mean_rate_and_negative_for_a_worse_prediction():
    counts = np.array([[[1, 0], [3, 2]], [[0, 4], [2, 2]]], float)  # (trials, bins, neurons)
    mean = np.broadcast_to(counts.reshape(-1, 2).mean(axis=0), counts.shape)
    assert np.allclose(bits_per_spike(counts, mean), 0.0)
    assert (bits_per_spike(counts, 2 * mean) < 0).all()
    # neuron 0: counts 1,3,0,2 (S = 6, mean 1.5), rates 1,3,0.1,2 (ln0.1 weighs 0 spikes)
    rates = np.stack([np.array([[1, 3], [0.1, 2]]), mean[..., 1]], axis=-1)
    ll = 1 * math.log(1) - 1 + 3 * math.log(3) - 3 + 0 - 0.1 + 2 * math.log(2) - 2
    null = 6 * math.log(1.5) - 4 * 1.5
    assert bits_per_spike(counts, rates)[0] == pytest.approx((ll - null) / (6 * math.log(2)))


def test_co_bps_averages_over_neurons_with_spikes_only():
    counts = np.array([[0.0, 0.0], [2.0, 0.0]])  # the second neuron never fires
    rates = np.array([[0.5, 0.1], [1.5, 0.1]])
    assert np.isnan(bits_per_spike(counts, rates)[1])
    assert co_bps(counts, rates) == pytest.approx(math.log2(1.5))


def test_zero_rates_are_floored_and_non_finite_or_negative_rates_rejected():
    # a rate that underflowed to 0 counts as 1e-9: counts 0 and 2, rates 1e-9 and 2, null mean 1
    # LL = (0 - 1e-9) + (2 ln 2 - 2); null = 2 ln 1 - 2 -> bps = 2 ln 2 / (2 ln 2) = 1 (to 1e-9)
    assert bits_per_spike(np.array([[0.0], [2.0]]), np.array([[0.0], [2.0]]))[0] == pytest.approx(1.0, abs=1e-8)
    with pytest.raises(NonFinitePrediction):
        bits_per_spike(np.ones((2, 1)), np.array([[1.0], [np.nan]]))
    with pytest.raises(ValueError, match=">= 0"):
        bits_per_spike(np.ones((2, 1)), np.array([[1.0], [-0.5]]))
    with pytest.raises(NonFinitePrediction):
        single_trial_r2(np.ones(3), np.array([1.0, np.inf, 0.0]))


def test_single_trial_r2_pools_trials_and_bins():
    # y = 1,2,3,4 (mean 2.5, SS_tot = 5), prediction 1,2,3,3 (SS_res = 1) -> R² = 0.8
    observed = np.array([[1.0, 2.0], [3.0, 4.0]])
    assert single_trial_r2(observed, np.array([[1.0, 2.0], [3.0, 3.0]])) == pytest.approx(0.8)
    assert single_trial_r2(observed, np.full((2, 2), 2.5)) == pytest.approx(0.0)
    assert single_trial_r2(observed, observed) == 1.0


def test_accuracy():
    assert accuracy(np.array([0, 1, 2, 1]), np.array([0, 1, 1, 1])) == 0.75


def test_balanced_accuracy_by_hand():
    # labels: class 0 x4, class 1 x2 (class 2 absent); predictions all 0 -> recalls 1 and 0 -> 0.5
    labels = np.array([0, 0, 0, 0, 1, 1])
    assert balanced_accuracy(labels, np.zeros(6, int)) == 0.5
    assert accuracy(labels, np.zeros(6, int)) == pytest.approx(4 / 6)  # the majority class looks better
    # recalls: class 0 3/4, class 1 1/2 -> 0.625
    assert balanced_accuracy(labels, np.array([0, 0, 0, 1, 1, 0])) == pytest.approx(0.625)


def test_psth_r2_compares_trial_averaged_time_courses():
    observed = np.array([[0.0, 2.0, 4.0], [2.0, 2.0, 2.0]])  # PSTH 1, 2, 3 (mean 2, SS_tot 2)
    predicted = np.array([[1.0, 2.0, 2.0], [1.0, 2.0, 2.0]])  # PSTH 1, 2, 2 -> SS_res 1 -> R² 0.5
    assert psth_r2(observed, predicted) == pytest.approx(0.5)
    assert single_trial_r2(observed, predicted) < psth_r2(observed, predicted)
