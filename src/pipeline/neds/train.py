"""Training NEDS: single-session, multi-session pretraining and fine-tuning (Sec. 5.1, 5.2).

One loop serves all three. Every batch holds ``batch_size`` trials drawn from the pooled
training trials of ALL sessions (:func:`epoch_batches`), so the configured batch size is the
real one in multi-session pretraining; the model runs once per session present in the batch
(sessions differ in their number of neurons) and the batch loss is the trial-weighted mean of
those groups' losses, followed by one optimizer step. Each sample gets its own masking scheme
and mask (:func:`pipeline.neds.masking.sample_masks`); a group's loss is its per-modality
losses (:func:`pipeline.neds.model.masked_losses`, the discrete behaviours' cross-entropy
class-balanced on the session's training trials:
:func:`pipeline.neds.model.balanced_class_weights`) combined by
:func:`pipeline.neds.model.balanced_objective`: the spike loss's gradient on the shared
transformer is scaled per batch so that its norm on the last shared layer is
``spike_gradient_ratio`` x the mean behaviour's, whatever the number of neurons. AdamW with
linear warm-up and cosine decay.

Best epoch: after every epoch the validation trials are scored per task (deterministic
evaluation masks; encoding and/or decoding, see :func:`evaluated_tasks`;
:func:`pipeline.neds.evaluate.task_scores`, averaged over sessions) and the epoch with the
best :func:`pipeline.neds.evaluate.selection_score` (encoding and decoding weigh equally) is
kept. The summary holds the per-task validation curves, each task's own best epoch and the
selected epoch's shortfall against it (``task_shortfall``), so a trade is reported.

Non-finite values: a batch whose loss is NaN / infinite is logged and skipped (no update;
counted in ``skipped_batches``); an epoch whose validation predictions or scores are not
finite is logged and cannot be selected; a job in which no epoch is usable fails naming it.

Resumption (:mod:`pipeline.train.checkpoint`): ``last.pt`` after every epoch and when
a stop signal arrives (SIGTERM, SLURM's early warning SIGURG: ``STOP_SIGNALS``; then :class:`~pipeline.train.checkpoint.TrainingInterrupted` is raised);
the batch order is a function of (seed, epoch) and each batch's masks of (seed, epoch,
batch), so a resumed run continues exactly where it stopped.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from pipeline.neds.config import MaskingParams, ModelParams, TrainingParams
from pipeline.neds.data import SessionData
from pipeline.neds.evaluate import evaluate_model, selection_score, task_scores
from pipeline.neds.masking import MODALITIES, Mask, sample_masks
from pipeline.neds.metrics import NonFinitePrediction
from pipeline.neds.model import (
    Neds,
    balanced_class_weights,
    balanced_objective,
    count_parameters,
    init_log_rate_bias,
    masked_losses,
)
from pipeline.provenance import config_hash
from pipeline.seeding import derive_seed
from pipeline.train.checkpoint import (
    StopSignal,
    TrainingInterrupted,
    checkpoint_paths,
    epoch_batch_order,
    load_checkpoint,
    resumable_state,
    rng_state,
    save_checkpoint,
    set_rng_state,
)

log = logging.getLogger(__name__)


def evaluated_tasks(schemes: tuple[str, ...]) -> tuple[str, ...]:
    """Tasks a model trained with ``schemes`` is evaluated (and selected) on: the unimodal
    variants only on their own task, every other scheme set on encoding and decoding."""
    if tuple(schemes) == ("neural",):
        return ("encoding",)
    if tuple(schemes) == ("behavior",):
        return ("decoding",)
    return ("encoding", "decoding")


def build_model(params: ModelParams, sessions: dict[str, SessionData], seed: int) -> Neds:
    """A freshly initialised model (weights from ``seed``) with one adapter per session, the
    neural decoders' biases at each neuron's mean training rate."""
    n_bins = {data.n_bins for data in sessions.values()}
    if len(n_bins) != 1:
        raise ValueError(f"sessions have different numbers of bins: { {s: d.n_bins for s, d in sessions.items()} }")
    torch.manual_seed(derive_seed(seed, "neds_init"))
    model = Neds(params, {sid: data.n_neurons for sid, data in sessions.items()}, n_bins.pop())
    for sid, data in sessions.items():
        init_log_rate_bias(model, sid, torch.as_tensor(data.arrays("train")["spikes"].mean(axis=(0, 1))))
    return model


def save_model(path: str | Path, model: Neds, **metadata) -> None:
    """The trained model (weights + architecture) and ``metadata``, loadable with weights_only."""
    save_checkpoint(path, state_dict=model.state_dict(), architecture=model.architecture(), **metadata)


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[Neds, dict]:
    """Model and the whole saved record (architecture, metadata) from :func:`save_model`."""
    record = load_checkpoint(path, map_location=device)
    model = Neds.from_architecture(record["architecture"])
    model.load_state_dict(record["state_dict"])
    return model.to(device), record


def model_for_finetuning(pretrained_path: str | Path, session: SessionData, seed: int) -> Neds:
    """The pretrained shared transformer, mask token, modality and time embeddings, with a
    NEW adapter (stitchers, session embedding, neural and behaviour decoders) for ``session``."""
    pretrained, _ = load_model(pretrained_path)
    torch.manual_seed(derive_seed(seed, "neds_finetune_init", session.session_id))
    model = Neds(pretrained.params, {session.session_id: session.n_neurons}, pretrained.n_bins)
    shared = {k: v for k, v in pretrained.state_dict().items() if not k.startswith("adapters.")}
    missing, unexpected = model.load_state_dict(shared, strict=False)
    if unexpected or any(not k.startswith("adapters.") for k in missing):
        raise ValueError(f"{pretrained_path}: shared weights do not match the model (missing {missing}, "
                         f"unexpected {unexpected})")
    init_log_rate_bias(model, session.session_id,
                       torch.as_tensor(session.arrays("train")["spikes"].mean(axis=(0, 1))))
    return model


def windowed_score(history: list[dict], window: int) -> float:
    """Selection score of the LAST epoch of ``history`` (per-epoch records with ``val_score``,
    None when not finite): the mean of the finite scores of the last ``window`` epochs, NaN
    when the last epoch's own score is not finite (its weights cannot be kept).

    The validation scores of one epoch are noisy: the decoding score averages balanced
    accuracies of a few dozen validation trials (one trial moves it by ~0.01-0.03), while the
    encoding score (bps) changes by ~0.001 per epoch, so the epoch with the best single score
    is mostly the one with the luckiest decoding draw, whatever its encoding. A running mean
    over the last epochs (the paper's remedy for NDT2's noisy validation curves, App. C: the
    last 10 validation epochs) keeps an epoch whose neighbourhood is good on both tasks."""
    if not history or history[-1]["val_score"] is None:
        return math.nan
    scores = [h["val_score"] for h in history[-window:] if h["val_score"] is not None]
    return float(np.mean(scores))


def _schedule(total_steps: int, warmup_fraction: float):
    warmup = max(1, int(round(warmup_fraction * total_steps)))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def epoch_batches(sessions: dict[str, SessionData], batch_size: int, seed: int,
                  epoch: int) -> list[list[tuple[str, np.ndarray]]]:
    """The batches of an epoch: the training trials of all sessions pooled, permuted and cut
    into ``batch_size`` trials (the last batch may be smaller); each batch is a list of
    (session, training-split positions) groups in session order. A function of (seed, epoch)."""
    pool = [(sid, position) for sid, data in sorted(sessions.items()) for position in range(data.splits["train"].size)]
    batches = []
    for rows in epoch_batch_order(len(pool), batch_size, seed, epoch):
        groups: dict[str, list[int]] = {}
        for row in rows:
            sid, position = pool[row]
            groups.setdefault(sid, []).append(position)
        batches.append([(sid, np.array(groups[sid])) for sid in sorted(groups)])
    return batches


def _drop_shared_gradients(model: Neds) -> None:
    """Discard the gradient of every weight outside the session adapters (adapter-only
    epochs): AdamW skips a weight without gradient, so it neither moves nor decays it. The
    gradients are computed and dropped rather than switched off, so that
    :func:`~pipeline.neds.model.balanced_objective` can compare the tasks on the shared layer."""
    for name, parameter in model.named_parameters():
        if not name.startswith("adapters."):
            parameter.grad = None


def _rows(mask: Mask, start: int, stop: int) -> Mask:
    return Mask(mask.hidden[start:stop], mask.target[start:stop], mask.scheme[start:stop])


def _validation_scores(model: Neds, sessions: dict[str, SessionData], tasks: tuple[str, ...]):
    """(per-session validation metrics, per-task scores averaged over sessions); scores are
    NaN when a prediction is not finite."""
    try:
        metrics = {sid: {k: v for k, v in evaluate_model(model, sid, data, tasks, split="val", per_variable=False).items()
                         if k != "bps_per_neuron"} for sid, data in sessions.items()}
    except NonFinitePrediction as err:
        log.warning("validation predictions are not finite (%s)", err)
        return None, {task: math.nan for task in tasks}
    per_session = [task_scores(m) for m in metrics.values()]
    return metrics, {task: float(np.mean([s[task] for s in per_session])) for task in tasks}


def train_model(
    model: Neds,
    sessions: dict[str, SessionData],
    schemes: tuple[str, ...],
    masking: MaskingParams,
    params: TrainingParams,
    *,
    seed: int,
    checkpoint_dir: str | Path,
    device: torch.device,
    fingerprint: str = "",
    progress: bool = True,
) -> dict:
    """Train ``model`` in place on the training trials of ``sessions``; load the best
    epoch's weights at the end (the best :func:`windowed_score` over ``params.selection_window``
    epochs). Returns a summary: epochs, best epoch, its windowed validation score (``best_val_score``)
    and its own per-task scores, each task's own best epoch and the selected epoch's shortfall
    against it, skipped batches, per-epoch history (train loss: the unweighted sum of the
    modality losses; mean training loss per modality, ``spike_gradient_weight``: the mean spike
    weight of :func:`~pipeline.neds.model.balanced_objective`,
    ``target_fraction``: the fraction of the epoch's trials in which each modality had target
    tokens, i.e. which heads the scheme mix trained how often; validation score, per-task
    scores, per-session metrics), training tokens/s (M x T tokens per trial), device, parameters.
    ``fingerprint`` identifies the job's configuration (with the model's architecture and the
    schemes): a ``last.pt`` of another one is discarded (pipeline.train.checkpoint.resumable_state)."""
    for sid, data in sessions.items():
        if data.splits["val"].size == 0:
            raise ValueError(f"{data.path}: session {sid} has no validation trial")
    model.to(device)
    tasks = evaluated_tasks(schemes)
    train_inputs = {sid: data.tensors("train", device) for sid, data in sessions.items()}
    class_weights = {sid: balanced_class_weights(inputs) for sid, inputs in train_inputs.items()}
    n_bins = model.n_bins
    steps_per_epoch = len(epoch_batches(sessions, params.batch_size, seed, 0))
    n_train = sum(data.splits["train"].size for data in sessions.values())
    if params.batch_size > n_train:
        log.warning("batch_size %d exceeds the %d training trials: every batch holds %d", params.batch_size, n_train,
                    n_train)
    optimizer = torch.optim.AdamW(model.parameters(), lr=params.learning_rate, weight_decay=params.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _schedule(params.epochs * steps_per_epoch, params.warmup_fraction))
    last_path, best_path = checkpoint_paths(checkpoint_dir)
    state = {"epoch": 0, "position": 0, "best_score": -math.inf, "best_epoch": -1, "history": [],
             "train_seconds": 0.0, "train_tokens": 0, "skipped_batches": 0}
    fingerprint = config_hash([fingerprint, model.architecture(), list(schemes)])
    saved = resumable_state(last_path, fingerprint, map_location=device)
    if saved is not None:
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        scheduler.load_state_dict(saved["scheduler"])
        set_rng_state(saved["rng"])
        state = saved["progress"]
        log.info("resuming from %s at epoch %d, batch %d", last_path, state["epoch"], state["position"])

    def checkpoint(path: Path) -> None:
        save_checkpoint(path, model=model.state_dict(), optimizer=optimizer.state_dict(),
                        scheduler=scheduler.state_dict(), rng=rng_state(), progress=state,
                        architecture=model.architecture(), schemes=list(schemes), fingerprint=fingerprint)

    log.info("training %d parameters on %s, schemes %s, %d steps/epoch", count_parameters(model), device,
             list(schemes), steps_per_epoch)
    with StopSignal() as stop:
        bar = tqdm(total=params.epochs, initial=state["epoch"], desc="epochs", unit="epoch", disable=not progress)
        while state["epoch"] < params.epochs:
            epoch = state["epoch"]
            batches = epoch_batches(sessions, params.batch_size, seed, epoch)
            model.train()
            started = time.perf_counter()
            epoch_losses, epoch_modality_losses, epoch_spike_weights = [], {}, []
            target_trials, epoch_trials = torch.zeros(len(MODALITIES)), 0
            for position in range(state["position"], len(batches)):
                if stop.requested:
                    state["position"] = position
                    state["train_seconds"] += time.perf_counter() - started
                    checkpoint(last_path)
                    raise TrainingInterrupted(f"stopped at epoch {epoch}, batch {position}; state in {last_path}")
                groups = batches[position]
                n_trials = sum(len(rows) for _, rows in groups)
                generator = torch.Generator().manual_seed(derive_seed(seed, "mask", epoch, position))
                mask = sample_masks(n_trials, n_bins, schemes, masking.mask_ratio,
                                    masking.single_behavior_probability, generator)
                target_trials += mask.target.any(dim=-1).sum(dim=0)
                epoch_trials += n_trials
                loss, plain_loss, start = 0.0, 0.0, 0
                for sid, rows in groups:
                    rows_t = torch.as_tensor(rows, device=device)
                    inputs = {name: values[rows_t] for name, values in train_inputs[sid].items()}
                    group_mask = _rows(mask, start, start + len(rows))
                    hidden = model.hidden_states(sid, inputs, group_mask)
                    modality_losses = masked_losses(model.readout(sid, hidden), inputs, group_mask,
                                                    class_weights[sid])
                    for name, value in modality_losses.items():
                        epoch_modality_losses.setdefault(name, []).append(value.detach())  # read at the epoch's end: no device sync per batch
                    objective, spike_weight = balanced_objective(modality_losses, hidden, model.last_shared_weight(),
                                                                   params.spike_gradient_ratio)
                    epoch_spike_weights.append(spike_weight.detach())
                    share = len(rows) / n_trials
                    loss = loss + objective * share
                    plain_loss = plain_loss + sum(modality_losses.values()).detach() * share
                    start += len(rows)
                optimizer.zero_grad(set_to_none=True)
                if torch.isfinite(loss):
                    loss.backward()
                    if epoch < params.adapter_only_epochs:
                        _drop_shared_gradients(model)
                    if params.grad_clip_norm > 0:
                        torch.nn.utils.clip_grad_norm_(model.parameters(), params.grad_clip_norm)
                    optimizer.step()
                    epoch_losses.append(float(plain_loss))
                else:
                    state["skipped_batches"] += 1
                    log.warning("epoch %d, batch %d: non-finite loss %s; batch skipped", epoch, position, loss.item())
                scheduler.step()
                state["train_tokens"] += n_trials * len(MODALITIES) * n_bins
            if device.type == "cuda":
                torch.cuda.synchronize()
            state["train_seconds"] += time.perf_counter() - started
            val_metrics, scores = _validation_scores(model, sessions, tasks)
            score = selection_score(scores)
            usable = math.isfinite(score)
            train_loss = float(np.mean(epoch_losses)) if epoch_losses else None
            state["history"].append({"epoch": epoch, "train_loss": train_loss,
                                     "train_modality_losses": {name: torch.stack(values).float().mean().item()
                                                               for name, values in epoch_modality_losses.items()},
                                     "spike_gradient_weight": (torch.stack(epoch_spike_weights).float().mean().item()
                                                               if epoch_spike_weights else None),
                                     "target_fraction": {name: float(target_trials[row]) / max(epoch_trials, 1)
                                                         for row, name in enumerate(MODALITIES)},
                                     "val_score": score if usable else None,
                                     "val_task_scores": {t: v if math.isfinite(v) else None for t, v in scores.items()},
                                     "val_metrics": val_metrics})
            if usable:
                log.info("epoch %d: train loss %s, val score %.4f, per task %s", epoch, train_loss, score,
                         {t: round(v, 4) for t, v in scores.items()})
            else:
                log.warning("epoch %d: non-finite validation score (%s); epoch skipped for selection", epoch, scores)
            state["epoch"], state["position"] = epoch + 1, 0
            windowed = windowed_score(state["history"], params.selection_window)
            state["history"][-1]["selection_score"] = windowed if usable else None
            if usable and windowed > state["best_score"]:
                state["best_score"], state["best_epoch"] = windowed, epoch
                save_checkpoint(best_path, model=model.state_dict())
            checkpoint(last_path)
            bar.update(1)
            bar.set_postfix(loss=train_loss, val_score=score)
        bar.close()
    if state["best_epoch"] < 0:
        raise RuntimeError(f"no epoch of {params.epochs} had finite validation scores "
                           f"(checkpoints in {checkpoint_dir}); lower the learning rate or check the inputs")
    model.load_state_dict(load_checkpoint(best_path, map_location=device)["model"])
    model.eval()
    tokens_per_s = state["train_tokens"] / state["train_seconds"] if state["train_seconds"] > 0 else float("nan")
    selected = state["history"][state["best_epoch"]]["val_task_scores"]
    task_best = {task: max((h for h in state["history"] if h["val_task_scores"][task] is not None),
                           key=lambda h: h["val_task_scores"][task]) for task in tasks}
    shortfall = {task: task_best[task]["val_task_scores"][task] - selected[task] for task in tasks}
    log.info("best epoch %d (val score %.4f, per task %s); each task's own best epoch %s, shortfall %s; "
             "%.0f training tokens/s on %s", state["best_epoch"], state["best_score"], selected,
             {t: h["epoch"] for t, h in task_best.items()}, shortfall, tokens_per_s, device)
    return {"epochs": state["epoch"], "best_epoch": state["best_epoch"], "best_val_score": state["best_score"],
            "best_val_task_scores": selected, "task_best_epoch": {t: h["epoch"] for t, h in task_best.items()},
            "task_shortfall": shortfall, "skipped_batches": state["skipped_batches"],
            "history": state["history"], "tokens_per_s": tokens_per_s, "train_seconds": state["train_seconds"],
            "device": str(device), "n_parameters": count_parameters(model), "schemes": list(schemes),
            "tokens_per_trial": len(MODALITIES) * n_bins, "tasks": list(tasks)}

