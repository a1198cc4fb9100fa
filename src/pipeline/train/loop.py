"""The NLP4Neuro training loop: read it top to bottom.

Gradient-trained decoders (LSTM: Adam; language models: AdamW, as in the paper Sec. 3.4) are
trained on mean-squared error over every step and tail segment of the training windows,
evaluated on the validation windows after each epoch; the weights with the lowest
validation loss are kept. The reservoir computer is fitted in closed form instead.

Resumption: ``last.pt`` is written after every epoch, every ``checkpoint_every_s`` seconds
and, on a stop signal (SLURM's early warning SIGURG, its SIGTERM at preemption or time
limit, SIGINT), after the current batch; a rerun with the same params fingerprint continues
from there (one of other params is discarded: ``pipeline.train.checkpoint``). The batch
order of an epoch depends only on (seed, epoch), and the RNG states are checkpointed, so an
interrupted-and-resumed run produces the same weights as an uninterrupted one (CPU).
Checkpoints hold only the *trainable* tensors (plus buffers) of the model: for a LoRA-wrapped
7B backbone that is the adapters, embedding and head, not the frozen base weights.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from pipeline.data.windows import DecodingSplits, WindowSet
from pipeline.train.config import TrainingParams
from pipeline.train.checkpoint import (
    CHECKPOINT_EVERY_S,
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


@dataclass
class TrainingResult:
    """What :func:`train_decoder` measured. Losses are mean squared errors (rad²)."""

    history: list[dict] = field(default_factory=list)  # per epoch: epoch, train_loss, val_loss, seconds
    best_epoch: int = -1
    best_val_loss: float = float("inf")
    train_windows_per_s: float = float("nan")  # training throughput over the epochs run here
    resumed_from_epoch: float | None = None  # epoch (fractional: mid-epoch) the run resumed at


def select_device(requested: str = "auto") -> torch.device:
    """``auto``: the first CUDA GPU if there is one, else the CPU; asking for ``cuda`` on a
    machine without one is an error (rather than a silent, much slower CPU run)."""
    if requested == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if requested.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device {requested!r} requested but no CUDA device is available")
    return torch.device(requested)


def trainable_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The tensors a checkpoint must hold: trainable parameters and all buffers (fitted
    embeddings, reservoir matrices), not frozen backbone weights."""
    state = model.state_dict(keep_vars=True)
    keep = {name for name, p in model.named_parameters() if p.requires_grad}
    keep |= {name for name, _ in model.named_buffers()}
    return {name: t.detach().clone() for name, t in state.items() if name in keep}


def load_trainable_state(model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    missing = set(trainable_state(model)) - set(state)
    if missing:
        raise KeyError(f"checkpoint lacks {len(missing)} trainable tensors, e.g. {sorted(missing)[:3]}")
    model.load_state_dict(state, strict=False)


def autocast(device: torch.device):
    """bf16 autocast on CUDA (paper: quantised / mixed-precision fine-tuning); off on CPU,
    where it would only change numerics."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


@torch.no_grad()
def predict(model: nn.Module, windows: WindowSet, batch_size: int, device: torch.device) -> np.ndarray:
    """Predictions (n_windows, seq_len, 6) for every window of a block, in window order."""
    model.eval()
    outputs = []
    for start in range(0, len(windows), batch_size):
        inputs, _ = windows.batch(torch.arange(start, min(start + batch_size, len(windows))))
        with autocast(device):
            outputs.append(model(inputs.to(device)).float().cpu())
    return torch.cat(outputs).numpy()


def mean_squared_error(model: nn.Module, windows: WindowSet, batch_size: int, device: torch.device) -> float:
    predicted = predict(model, windows, batch_size, device)
    targets = windows.targets[windows.frame_index(torch.arange(len(windows)))].numpy()
    return float(np.mean((predicted - targets) ** 2))


def _optimizer(model: nn.Module, params: TrainingParams, kind: str) -> torch.optim.Optimizer:
    """Adam (LSTM) or AdamW (language models); bitsandbytes' 8-bit AdamW where the model asks
    for it (``optimizer_name`` "adamw8bit": the from-scratch all-weights arm on CUDA)."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    if kind == "transformer" and getattr(model, "optimizer_name", "adamw") == "adamw8bit":
        import bitsandbytes as bnb

        return bnb.optim.AdamW8bit(trainable, lr=params.learning_rate, weight_decay=params.weight_decay)
    if kind == "transformer":
        return torch.optim.AdamW(trainable, lr=params.learning_rate, weight_decay=params.weight_decay)
    return torch.optim.Adam(trainable, lr=params.learning_rate)


def train_decoder(
    model: nn.Module,
    kind: str,
    splits: DecodingSplits,
    params: TrainingParams,
    seed: int,
    checkpoint_dir: str | Path,
    device: torch.device,
    on_batch_end: Callable[[int, int], None] | None = None,
    fingerprint: str = "",
    checkpoint_every_s: float = CHECKPOINT_EVERY_S,
) -> TrainingResult:
    """Fit ``model`` on ``splits.train``, select on ``splits.val``, leave the best weights
    loaded. ``kind`` is the catalog kind (``reservoir``, ``lstm``, ``transformer``).

    ``checkpoint_dir`` holds ``last.pt`` (resume state) and ``best.pt`` (best weights);
    ``last.pt`` is resumed only if it carries ``fingerprint`` (the hash of the job's params)
    and is rewritten after every epoch and every ``checkpoint_every_s`` seconds of training.
    ``on_batch_end(epoch, batch)`` is called after each optimiser step (progress hooks).
    Raises :class:`TrainingInterrupted` after checkpointing if a stop signal arrives.
    """
    last_path, best_path = checkpoint_paths(checkpoint_dir)
    Path(checkpoint_dir).mkdir(parents=True, exist_ok=True)
    result = TrainingResult()
    model.to(device)

    if getattr(model, "closed_form", False):
        started = time.perf_counter()
        model.fit_readout(splits.train, splits.val, batch_size=params.eval_batch_size)
        seconds = time.perf_counter() - started
        val_loss = mean_squared_error(model, splits.val, params.eval_batch_size, device)
        train_loss = mean_squared_error(model, splits.train, params.eval_batch_size, device)
        result.history.append({"epoch": 0, "train_loss": train_loss, "val_loss": val_loss, "seconds": seconds})
        result.best_epoch, result.best_val_loss = 0, val_loss
        result.train_windows_per_s = len(splits.train) / seconds
        save_checkpoint(best_path, model=trainable_state(model), epoch=0, val_loss=val_loss)
        return result

    optimizer = _optimizer(model, params, kind)
    n_batches = -(-len(splits.train) // params.batch_size)
    epoch, next_batch, running_loss = 0, 0, 0.0
    state = resumable_state(last_path, fingerprint)
    if state is not None:
        load_trainable_state(model, state["model"])
        optimizer.load_state_dict(state["optimizer"])
        set_rng_state(state["rng"])
        epoch, next_batch, running_loss = state["epoch"], state["next_batch"], state["running_loss"]
        result.history = list(state["history"])
        result.best_epoch, result.best_val_loss = state["best_epoch"], state["best_val_loss"]
        result.resumed_from_epoch = epoch + next_batch / n_batches
        log.info("resuming from %s at epoch %d, batch %d/%d", last_path, epoch, next_batch, n_batches)

    def checkpoint_last(epoch_: int, next_batch_: int, running_loss_: float) -> None:
        save_checkpoint(
            last_path, model=trainable_state(model), optimizer=optimizer.state_dict(), rng=rng_state(),
            epoch=epoch_, next_batch=next_batch_, running_loss=running_loss_, history=result.history,
            best_epoch=result.best_epoch, best_val_loss=result.best_val_loss, fingerprint=fingerprint,
        )
        last_saved[0] = time.monotonic()

    windows_trained, seconds_trained = 0, 0.0
    last_saved = [time.monotonic()]  # when last.pt was last written (monotonic s)
    with StopSignal() as stop:
        while epoch < params.epochs:
            model.train()
            batches = epoch_batch_order(len(splits.train), params.batch_size, seed, epoch)
            epoch_started = time.perf_counter()
            progress = tqdm(range(next_batch, n_batches), desc=f"epoch {epoch + 1}/{params.epochs}",
                            initial=next_batch, total=n_batches, mininterval=5.0)
            for batch_number in progress:
                inputs, targets = splits.train.batch(batches[batch_number])
                inputs, targets = inputs.to(device), targets.to(device)
                with autocast(device):
                    loss = nn.functional.mse_loss(model(inputs).float(), targets)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                if params.max_grad_norm > 0:
                    nn.utils.clip_grad_norm_(
                        [p for p in model.parameters() if p.requires_grad], params.max_grad_norm
                    )
                optimizer.step()
                running_loss += loss.item() * len(batches[batch_number])
                windows_trained += len(batches[batch_number])
                if on_batch_end is not None:
                    on_batch_end(epoch, batch_number)
                if stop.requested:
                    checkpoint_last(epoch, batch_number + 1, running_loss)
                    raise TrainingInterrupted(
                        f"stopped by signal at epoch {epoch + 1}, batch {batch_number + 1}/{n_batches}; "
                        f"state saved to {last_path}"
                    )
                if time.monotonic() - last_saved[0] >= checkpoint_every_s and batch_number + 1 < n_batches:
                    checkpoint_last(epoch, batch_number + 1, running_loss)
            seconds = time.perf_counter() - epoch_started
            seconds_trained += seconds
            val_loss = mean_squared_error(model, splits.val, params.eval_batch_size, device)
            result.history.append({
                "epoch": epoch, "train_loss": running_loss / len(splits.train), "val_loss": val_loss,
                "seconds": seconds,
            })
            log.info("epoch %d/%d: train MSE %.5f, val MSE %.5f (%.1f s)", epoch + 1, params.epochs,
                     running_loss / len(splits.train), val_loss, seconds)
            if val_loss < result.best_val_loss:
                result.best_epoch, result.best_val_loss = epoch, val_loss
                save_checkpoint(best_path, model=trainable_state(model), epoch=epoch, val_loss=val_loss)
            epoch, next_batch, running_loss = epoch + 1, 0, 0.0
            checkpoint_last(epoch, next_batch, running_loss)

    result.train_windows_per_s = windows_trained / seconds_trained if seconds_trained > 0 else float("nan")
    load_trainable_state(model, load_checkpoint(best_path)["model"])
    return result
