"""Encoding and decoding metrics of a trained NEDS model on one session's test trials (Sec. 4.1).

Encoding: every spike token masked, behaviours visible (all of them: ``bps``; one at a time:
``bps_<behaviour>``, paper Table 1) -> predicted rates exp(log-rate) (spikes/bin) -> co-bps.
Decoding: every behaviour token masked, spikes visible -> single-trial R² of wheel speed and
whisker motion energy (standardised with training statistics; R² is unchanged by the
affine map back to rad/s and a.u.), accuracy of choice and block (class of the logits averaged
over the trial's T tokens).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from pipeline.neds.data import BEHAVIORS, CONTINUOUS, DISCRETE, SessionData
from pipeline.neds.masking import decoding_mask, encoding_mask
from pipeline.neds.metrics import accuracy, balanced_accuracy, bits_per_spike, co_bps, psth_r2, single_trial_r2
from pipeline.neds.model import Neds


def predict(model: Neds, session_id: str, inputs: dict[str, torch.Tensor], task: str,
            visible_behavior: str | None = None) -> dict[str, np.ndarray]:
    """Predictions for ``task`` (``encoding`` or ``decoding``) in eval mode, as NumPy arrays:
    ``spikes`` rates (trials, bins, neurons) spikes/bin, or continuous behaviours (trials,
    bins) and discrete classes (trials,)."""
    n_trials, n_bins = inputs["spikes"].shape[:2]
    mask = encoding_mask(n_trials, n_bins, visible_behavior) if task == "encoding" else decoding_mask(n_trials, n_bins)
    model.eval()
    with torch.no_grad():
        outputs = model(session_id, inputs, mask)
    if task == "encoding":
        return {"spikes": outputs["spikes"].exp().cpu().numpy()}
    predicted = {name: outputs[name].cpu().numpy() for name in CONTINUOUS}
    predicted.update({name: outputs[name].mean(dim=1).argmax(dim=-1).cpu().numpy() for name in DISCRETE})
    return predicted


def decoding_metrics(observed: dict[str, np.ndarray], predicted: dict[str, np.ndarray]) -> dict[str, float]:
    """``<behaviour>_r2`` (single trial) and ``<behaviour>_psth_r2`` for continuous,
    ``<behaviour>_accuracy`` and ``<behaviour>_balanced_accuracy`` for discrete behaviours."""
    metrics = {}
    for name in CONTINUOUS:
        metrics[f"{name}_r2"] = single_trial_r2(observed[name], predicted[name])
        metrics[f"{name}_psth_r2"] = psth_r2(observed[name], predicted[name])
    for name in DISCRETE:
        metrics[f"{name}_accuracy"] = accuracy(observed[name], predicted[name])
        metrics[f"{name}_balanced_accuracy"] = balanced_accuracy(observed[name], predicted[name])
    return metrics


def encoding_metrics(counts: np.ndarray, rates: np.ndarray) -> dict:
    """``bps`` (co-bps: mean over neurons with spikes) and ``bps_per_neuron`` (list, None for
    a neuron without spikes; for per-region bps) of predicted ``rates`` (trials, bins, neurons)."""
    per_neuron = bits_per_spike(counts, rates)
    return {"bps": float(np.nanmean(per_neuron)),
            "bps_per_neuron": [None if np.isnan(v) else float(v) for v in per_neuron]}


def evaluate_model(model: Neds, session_id: str, data: SessionData, tasks: tuple[str, ...],
                   split: str = "test", per_variable: bool = True) -> dict:
    """Metrics of ``tasks`` on ``split``: :func:`encoding_metrics` and (``per_variable``)
    ``bps_<behaviour>`` (encoding), :func:`decoding_metrics` (decoding)."""
    device = next(model.parameters()).device
    inputs = data.tensors(split, device)
    observed = data.arrays(split)
    metrics: dict[str, float] = {}
    if "encoding" in tasks:
        metrics.update(encoding_metrics(observed["spikes"], predict(model, session_id, inputs, "encoding")["spikes"]))
        for name in BEHAVIORS if per_variable else ():
            rates = predict(model, session_id, inputs, "encoding", visible_behavior=name)["spikes"]
            metrics[f"bps_{name}"] = co_bps(observed["spikes"], rates)
    if "decoding" in tasks:
        metrics.update(decoding_metrics(observed, predict(model, session_id, inputs, "decoding")))
    return metrics


def chance_metrics(data: SessionData, split: str = "test") -> dict:
    """What a predictor without neural (or behavioural) information scores: the training
    trials' majority class for choice / block, the training mean per bin (the trial-averaged
    behaviour) for wheel and whisker, and the training mean rate per neuron and bin for bps."""
    train, evaluated = data.arrays("train"), data.arrays(split)
    predicted = {name: np.broadcast_to(train[name].mean(axis=0), evaluated[name].shape) for name in CONTINUOUS}
    for name in DISCRETE:
        predicted[name] = np.full_like(evaluated[name], np.bincount(train[name], minlength=DISCRETE[name]).argmax())
    rates = np.broadcast_to(np.maximum(train["spikes"].mean(axis=0), 1e-3), evaluated["spikes"].shape)
    return {**encoding_metrics(evaluated["spikes"], rates), **decoding_metrics(evaluated, predicted)}


def task_scores(metrics: dict[str, float]) -> dict[str, float]:
    """Validation score of each task present in ``metrics`` (higher is better): ``encoding``
    = bps; ``decoding`` = the mean of the wheel and whisker R² and the choice and block
    BALANCED accuracies (as the released NEDS trainer scores its validation epochs: plain
    accuracy would let an epoch that predicts the majority block, e.g. the 0.5 block of the
    first 90 trials, win the selection while its block decoder is at chance). Metrics, not
    losses: the cross-entropy of a few validation trials grows with overconfidence while the
    accuracy still improves."""
    scores = {}
    if "bps" in metrics:
        scores["encoding"] = float(metrics["bps"])
    decoding = [metrics[k] for k in (*(f"{n}_r2" for n in CONTINUOUS),
                                     *(f"{n}_balanced_accuracy" for n in DISCRETE)) if k in metrics]
    if decoding and not np.isnan(decoding).all():
        scores["decoding"] = float(np.nanmean(decoding))  # an R² without variance (NaN) is left out
    elif decoding:
        scores["decoding"] = math.nan
    return scores


def selection_score(scores: dict[str, float]) -> float:
    """The best-epoch rule: the mean of the :func:`task_scores` (encoding and decoding weigh
    equally, whatever the number of decoding targets). The training summary records each
    task's own best epoch and what the selected epoch gives up against it, so a trade between
    the tasks is visible rather than silent."""
    return float(np.mean(list(scores.values())))
