"""Encoding and decoding metrics (paper seed 002, Sec. 4.1 and App. A).

Bits per spike of neuron n over the evaluated trials (all trials x bins pooled, index i)::

    bps_n = [ sum_i (y_i log l_i - l_i) - sum_i (y_i log m_n - m_n) ] / (S_n log 2)

with y_i the spike count, l_i the predicted rate (spikes/bin), m_n = mean of y over the
evaluated bins (the neuron's mean-rate null) and S_n = sum_i y_i its spike count (the log y!
terms cancel). bps > 0: the model predicts the spikes better than a constant mean rate.
The session's co-bps is the mean of bps_n over neurons with at least one spike (a silent
neuron has no bps).

Single-trial R² of a continuous behaviour: over all evaluated trials and bins pooled,
R² = 1 - sum (y - yhat)² / sum (y - ybar)² with ybar the mean over those trials and bins
(sklearn ``r2_score`` of the flattened arrays): the variance explained trial by trial, bin by
bin. PSTH R²: the same R² between the trial-averaged observed and predicted time courses
(T values, the mean over the evaluated trials of each bin): how well the average time course
is captured, beside the single-trial R² that also asks for the trial-to-trial variation.
Accuracy: fraction of trials whose predicted class is the true one. Balanced accuracy: the
mean over the classes present in the labels of the fraction of that class's trials predicted
as it (recall), so that predicting the majority block on a session dominated by one block
scores 1 / classes, not the majority fraction (sklearn ``balanced_accuracy_score``).

Predicted rates of 0 (a log-rate that underflows in exp) are raised to :data:`RATE_FLOOR`
spikes/bin, as the released NEDS code does; a non-finite prediction raises
:class:`NonFinitePrediction` (a diverged model), which training treats as an unusable epoch.
"""

from __future__ import annotations

import numpy as np

#: Predicted rates (spikes/bin) below this are raised to it (the released code's 1e-9).
RATE_FLOOR = 1e-9


class NonFinitePrediction(ValueError):
    """A prediction holds NaN or infinity."""


def bits_per_spike(counts: np.ndarray, rates: np.ndarray) -> np.ndarray:
    """bps per neuron (neurons,) from ``counts`` and predicted ``rates`` (spikes/bin), both
    (..., neurons); leading axes (trials, bins) are pooled. NaN for neurons without spikes.
    Rates must be finite (else :class:`NonFinitePrediction`) and >= 0 (else ValueError);
    rates below :data:`RATE_FLOOR` count as the floor."""
    counts = np.asarray(counts, np.float64).reshape(-1, np.shape(counts)[-1])
    rates = np.asarray(rates, np.float64).reshape(counts.shape)
    if not np.isfinite(rates).all():
        raise NonFinitePrediction("predicted rates must be finite")
    if (rates < 0).any():
        raise ValueError("predicted rates must be >= 0")
    rates = np.maximum(rates, RATE_FLOOR)
    spikes = counts.sum(axis=0)
    mean_rate = counts.mean(axis=0)
    log_likelihood = (counts * np.log(rates) - rates).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        null = spikes * np.log(mean_rate) - counts.shape[0] * mean_rate
        bps = (log_likelihood - null) / (spikes * np.log(2.0))
    return np.where(spikes > 0, bps, np.nan)


def co_bps(counts: np.ndarray, rates: np.ndarray) -> float:
    """Session bits per spike: mean of :func:`bits_per_spike` over neurons with spikes."""
    return float(np.nanmean(bits_per_spike(counts, rates)))


def single_trial_r2(observed: np.ndarray, predicted: np.ndarray) -> float:
    """R² over all trials and bins pooled (definition in the module docstring)."""
    observed = np.asarray(observed, np.float64).ravel()
    predicted = np.asarray(predicted, np.float64).ravel()
    if observed.shape != predicted.shape:
        raise ValueError(f"shapes differ: {observed.shape} vs {predicted.shape}")
    if not np.isfinite(predicted).all():
        raise NonFinitePrediction("predicted behaviour must be finite")
    total = np.sum((observed - observed.mean()) ** 2)
    return float(1.0 - np.sum((observed - predicted) ** 2) / total) if total > 0 else float("nan")


def accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    """Fraction of trials with ``predicted == labels``."""
    return float(np.mean(np.asarray(labels) == np.asarray(predicted)))


def psth_r2(observed: np.ndarray, predicted: np.ndarray) -> float:
    """R² of the trial-averaged time course: :func:`single_trial_r2` of the means over axis 0
    of ``observed`` and ``predicted`` (trials, bins)."""
    observed, predicted = np.asarray(observed, np.float64), np.asarray(predicted, np.float64)
    if observed.shape != predicted.shape or observed.ndim != 2:
        raise ValueError(f"need two (trials, bins) arrays of one shape, got {observed.shape} and {predicted.shape}")
    return single_trial_r2(observed.mean(axis=0), predicted.mean(axis=0))


def balanced_accuracy(labels: np.ndarray, predicted: np.ndarray) -> float:
    """Mean over the classes present in ``labels`` of the recall of that class."""
    labels, predicted = np.asarray(labels), np.asarray(predicted)
    return float(np.mean([np.mean(predicted[labels == c] == c) for c in np.unique(labels)]))
