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
from pipeline.neds.metrics import accuracy, co_bps, single_trial_r2
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
    """``<behaviour>_r2`` for continuous and ``<behaviour>_accuracy`` for discrete behaviours."""
    metrics = {f"{name}_r2": single_trial_r2(observed[name], predicted[name]) for name in CONTINUOUS}
    metrics.update({f"{name}_accuracy": accuracy(observed[name], predicted[name]) for name in DISCRETE})
    return metrics


def evaluate_model(model: Neds, session_id: str, data: SessionData, tasks: tuple[str, ...],
                   split: str = "test", per_variable: bool = True) -> dict[str, float]:
    """Metrics of ``tasks`` on ``split``: ``bps`` and (``per_variable``) ``bps_<behaviour>``
    (encoding), ``<behaviour>_r2`` / ``<behaviour>_accuracy`` (decoding)."""
    device = next(model.parameters()).device
    inputs = data.tensors(split, device)
    observed = data.arrays(split)
    metrics: dict[str, float] = {}
    if "encoding" in tasks:
        metrics["bps"] = co_bps(observed["spikes"], predict(model, session_id, inputs, "encoding")["spikes"])
        for name in BEHAVIORS if per_variable else ():
            rates = predict(model, session_id, inputs, "encoding", visible_behavior=name)["spikes"]
            metrics[f"bps_{name}"] = co_bps(observed["spikes"], rates)
    if "decoding" in tasks:
        metrics.update(decoding_metrics(observed, predict(model, session_id, inputs, "decoding")))
    return metrics


def chance_metrics(data: SessionData, split: str = "test") -> dict[str, float]:
    """What a predictor without neural (or behavioural) information scores: the training
    trials' majority class for choice / block, the training mean per bin (the trial-averaged
    behaviour) for wheel and whisker, and the training mean rate per neuron and bin for bps."""
    train, evaluated = data.arrays("train"), data.arrays(split)
    metrics = {f"{name}_r2": single_trial_r2(evaluated[name], np.broadcast_to(train[name].mean(axis=0), evaluated[name].shape))
               for name in CONTINUOUS}
    for name in DISCRETE:
        majority = np.bincount(train[name], minlength=DISCRETE[name]).argmax()
        metrics[f"{name}_accuracy"] = accuracy(evaluated[name], np.full_like(evaluated[name], majority))
    rates = np.broadcast_to(np.maximum(train["spikes"].mean(axis=0), 1e-3), evaluated["spikes"].shape)
    metrics["bps"] = co_bps(evaluated["spikes"], rates)
    return metrics


def task_scores(metrics: dict[str, float]) -> dict[str, float]:
    """Validation score of each task present in ``metrics`` (higher is better): ``encoding``
    = bps; ``decoding`` = the mean of the wheel and whisker R² and the choice and block
    accuracies. Metrics, not losses: the cross-entropy of a few validation trials grows with
    overconfidence while the accuracy still improves."""
    scores = {}
    if "bps" in metrics:
        scores["encoding"] = float(metrics["bps"])
    decoding = [metrics[k] for k in (*(f"{n}_r2" for n in CONTINUOUS), *(f"{n}_accuracy" for n in DISCRETE))
                if k in metrics]
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
