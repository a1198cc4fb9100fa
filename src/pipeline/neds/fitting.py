"""The minibatch loop of the transformer baselines (NDT2: :mod:`pipeline.neds.ndt2`, POYO+:
:mod:`pipeline.neds.poyo`): AdamW, a learning-rate schedule, gradient norm clipped at 1
(the NEDS default), the epoch with the best validation score kept.

Batches never mix groups: ``train`` maps a group (a session for NDT2, whose token count
depends on the session's neurons; one pooled group for POYO+, whose spike tokens of any
session share a batch) to its training tensors; each epoch cuts every group into
``batch_size`` trials and visits those batches in one random order. A batch whose loss is
not finite is logged and skipped (no update; counted in ``skipped_batches``); an epoch whose
validation score is not finite cannot be selected; no usable epoch is an error.
"""

from __future__ import annotations

import logging
import math
from typing import Callable, Mapping

import torch
from torch import nn
from tqdm import tqdm

from pipeline.neds.train import _schedule

log = logging.getLogger(__name__)


def warmup_cosine(total_steps: int, warmup_fraction: float) -> Callable[[int], float]:
    """Learning-rate factor per step: linear warm-up over ``warmup_fraction`` of the steps,
    then cosine decay to 0 (the NEDS schedule)."""
    return _schedule(total_steps, warmup_fraction)


def constant_then_cosine(total_steps: int, decay_fraction: float) -> Callable[[int], float]:
    """Learning-rate factor per step: 1, then cosine decay to 0 over the last
    ``decay_fraction`` of the steps (POYO+ as trained for NEDS, App. F: the last 25 %)."""
    start = int(round((1 - decay_fraction) * total_steps))

    def factor(step: int) -> float:
        if step < start:
            return 1.0
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - start) / max(1, total_steps - start))))

    return factor


def fit(model: nn.Module, parameters: list[nn.Parameter], train: Mapping[str, Mapping[str, torch.Tensor]],
        epochs: int, *, batch_size: int, learning_rate: float, weight_decay: float,
        schedule: Callable[[int, float], Callable[[int], float]], schedule_fraction: float, seed: int,
        batch_loss: Callable[[str, dict[str, torch.Tensor], torch.Generator], torch.Tensor],
        validation_score: Callable[[], float], description: str = "fit", progress: bool = False) -> dict:
    """Train ``parameters`` of ``model`` for ``epochs`` (module docstring); ``train``: group
    -> name -> tensor with trials first; ``batch_loss(group, batch, generator)``;
    ``validation_score()`` (higher is better) runs after each epoch in eval mode under
    ``torch.no_grad``. ``schedule(total_steps, schedule_fraction)``: :func:`warmup_cosine`
    or :func:`constant_then_cosine`. Loads the best epoch's state; returns ``epochs``,
    ``best_epoch``, ``best_val_score``, ``val_curve`` and ``skipped_batches``."""
    sizes = {group: next(iter(tensors.values())).shape[0] for group, tensors in train.items()}
    steps = epochs * sum(math.ceil(n / batch_size) for n in sizes.values())
    optimizer = torch.optim.AdamW(parameters, lr=learning_rate, weight_decay=weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, schedule(steps, schedule_fraction))
    generator = torch.Generator().manual_seed(seed)
    best, best_epoch, best_state, curve, skipped = -math.inf, -1, None, [], 0
    for epoch in tqdm(range(epochs), desc=description, disable=not progress):
        model.train()
        batches = [(group, order[start:start + batch_size]) for group, n in sizes.items()
                   for order in [torch.randperm(n, generator=generator)] for start in range(0, n, batch_size)]
        for index in torch.randperm(len(batches), generator=generator).tolist():
            group, rows = batches[index]
            loss = batch_loss(group, {k: v[rows.to(v.device)] for k, v in train[group].items()}, generator)
            if not torch.isfinite(loss):
                log.warning("%s epoch %d: non-finite loss on a batch of %s, skipped", description, epoch, group)
                skipped += 1
                scheduler.step()
                continue
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(parameters, 1.0)
            optimizer.step()
            scheduler.step()
        model.eval()
        with torch.no_grad():
            score = float(validation_score())
        curve.append(score)
        log.info("%s epoch %d: validation score %.4f", description, epoch, score)
        if math.isfinite(score) and score > best:
            best, best_epoch = score, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if best_state is None:
        raise ValueError(f"{description}: no epoch gave a finite validation score")
    model.load_state_dict(best_state)
    return {"epochs": epochs, "best_epoch": best_epoch, "best_val_score": best, "val_curve": curve,
            "skipped_batches": skipped}
