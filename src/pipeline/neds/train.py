"""Training NEDS: single-session, multi-session pretraining and fine-tuning (Sec. 5.1, 5.2).

One loop serves all three: batches are drawn from one session at a time (sessions differ
in their number of neurons), each sample gets its own masking scheme and mask
(:func:`pipeline.neds.masking.sample_masks`), and the loss is the sum of the per-modality
losses (:func:`pipeline.neds.model.masked_losses`). AdamW with linear warm-up and cosine
decay. After every epoch the validation metrics (deterministic evaluation masks: encoding
and/or decoding, see :func:`evaluated_tasks`; :func:`pipeline.neds.evaluate.selection_score`)
pick the best epoch, whose weights are the result.

Resumption (:mod:`pipeline.train.checkpoint`): ``last.pt`` after every epoch and when
SIGTERM arrives (then :class:`~pipeline.train.checkpoint.TrainingInterrupted` is raised);
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
from pipeline.neds.evaluate import evaluate_model, selection_score
from pipeline.neds.masking import MODALITIES, sample_masks
from pipeline.neds.model import Neds, count_parameters, init_log_rate_bias, masked_losses
from pipeline.provenance import config_hash
from pipeline.seeding import derive_seed, rng_for
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
    """The pretrained shared transformer, mask token, modality embeddings and behaviour
    decoders, with a NEW adapter (stitchers, session embedding, neural decoder) for ``session``."""
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


def _schedule(total_steps: int, warmup_fraction: float):
    warmup = max(1, int(round(warmup_fraction * total_steps)))

    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / warmup
        progress = (step - warmup) / max(1, total_steps - warmup)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return factor


def epoch_batches(sessions: dict[str, SessionData], batch_size: int, seed: int, epoch: int) -> list[tuple[str, np.ndarray]]:
    """(session, training-split positions) of every batch of an epoch, sessions interleaved;
    a function of (seed, epoch) only."""
    batches = [(sid, batch) for sid, data in sorted(sessions.items())
               for batch in epoch_batch_order(data.splits["train"].size, batch_size, derive_seed(seed, sid), epoch)]
    order = rng_for(seed, "session_interleave", epoch).permutation(len(batches))
    return [batches[i] for i in order]


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
    epoch's weights at the end. Returns a summary: epochs, best epoch and validation loss,
    per-epoch history, training tokens/s (M x T tokens per trial), device, parameters.
    ``fingerprint`` identifies the job's configuration (with the model's architecture and the
    schemes): a ``last.pt`` of another one is discarded (pipeline.train.checkpoint.resumable_state)."""
    for sid, data in sessions.items():
        if data.splits["val"].size == 0:
            raise ValueError(f"{data.path}: session {sid} has no validation trial")
    model.to(device)
    tasks = evaluated_tasks(schemes)
    train_inputs = {sid: data.tensors("train", device) for sid, data in sessions.items()}
    n_bins = model.n_bins
    steps_per_epoch = len(epoch_batches(sessions, params.batch_size, seed, 0))
    optimizer = torch.optim.AdamW(model.parameters(), lr=params.learning_rate, weight_decay=params.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, _schedule(params.epochs * steps_per_epoch, params.warmup_fraction))
    last_path, best_path = checkpoint_paths(checkpoint_dir)
    state = {"epoch": 0, "position": 0, "best_score": -math.inf, "best_epoch": -1, "history": [],
             "train_seconds": 0.0, "train_tokens": 0}
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
            epoch_losses = []
            for position in range(state["position"], len(batches)):
                if stop.requested:
                    state["position"] = position
                    state["train_seconds"] += time.perf_counter() - started
                    checkpoint(last_path)
                    raise TrainingInterrupted(f"stopped at epoch {epoch}, batch {position}; state in {last_path}")
                sid, rows = batches[position]
                rows_t = torch.as_tensor(rows, device=device)
                inputs = {name: values[rows_t] for name, values in train_inputs[sid].items()}
                generator = torch.Generator().manual_seed(derive_seed(seed, "mask", epoch, position))
                mask = sample_masks(len(rows), n_bins, schemes, masking.mask_ratio,
                                    masking.single_behavior_probability, generator)
                loss = sum(masked_losses(model(sid, inputs, mask), inputs, mask).values())
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if params.grad_clip_norm > 0:
                    torch.nn.utils.clip_grad_norm_(model.parameters(), params.grad_clip_norm)
                optimizer.step()
                scheduler.step()
                epoch_losses.append(loss.item())
                state["train_tokens"] += len(rows) * len(MODALITIES) * n_bins
            if device.type == "cuda":
                torch.cuda.synchronize()
            state["train_seconds"] += time.perf_counter() - started
            val_metrics = {sid: evaluate_model(model, sid, data, tasks, split="val", per_variable=False)
                           for sid, data in sessions.items()}
            score = float(np.mean([selection_score(m) for m in val_metrics.values()]))
            state["history"].append({"epoch": epoch, "train_loss": float(np.mean(epoch_losses)) if epoch_losses else None,
                                     "val_score": score, "val_metrics": val_metrics})
            log.info("epoch %d: train loss %.4f, val score %.4f %s", epoch, state["history"][-1]["train_loss"], score,
                     {sid: {k: round(v, 3) for k, v in m.items()} for sid, m in val_metrics.items()})
            state["epoch"], state["position"] = epoch + 1, 0
            if score > state["best_score"]:
                state["best_score"], state["best_epoch"] = score, epoch
                save_checkpoint(best_path, model=model.state_dict())
            checkpoint(last_path)
            bar.update(1)
            bar.set_postfix(loss=state["history"][-1]["train_loss"], val_score=score)
        bar.close()
    model.load_state_dict(load_checkpoint(best_path, map_location=device)["model"])
    model.eval()
    tokens_per_s = state["train_tokens"] / state["train_seconds"] if state["train_seconds"] > 0 else float("nan")
    log.info("best epoch %d (val score %.4f); %.0f training tokens/s on %s", state["best_epoch"], state["best_score"],
             tokens_per_s, device)
    return {"epochs": state["epoch"], "best_epoch": state["best_epoch"], "best_val_score": state["best_score"],
            "history": state["history"], "tokens_per_s": tokens_per_s, "train_seconds": state["train_seconds"],
            "device": str(device), "n_parameters": count_parameters(model), "schemes": list(schemes),
            "tokens_per_trial": len(MODALITIES) * n_bins, "tasks": list(tasks)}

