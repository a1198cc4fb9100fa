"""NDT2 baseline (Ye et al. 2023, "Neural Data Transformer 2"; as re-implemented for NEDS,
paper seed 002 App. C "NDT2"), single session.

Re-implemented here (no package: the official code, joel99/context_general_bci, is a research
code base tied to its own data pipeline; the NEDS authors re-implemented it too). Steps:

1. Tokens: space-time patches. A trial's counts (T bins, N neurons) are zero-padded to a
   multiple of ``patch_size`` neurons and cut into N_p = ceil(N / patch_size) groups of
   neighbouring neurons (file order); one token per (bin, group) holds the group's
   ``patch_size`` counts (spikes/bin), embedded by a linear map of log1p(counts) plus a
   learned time-bin and a learned patch embedding -> (T * N_p, D).
2. Self-supervised pretraining: a fraction ``mask_ratio`` of each trial's tokens is replaced
   by a learned mask token (BERT-style; NDT2 drops them from the encoder, MAE-style; same
   objective); a transformer encoder and a linear read-out predict the masked patches'
   log-rates, loss = Poisson NLL of their counts (padding neurons excluded).
3. Supervised decoding with the encoder FROZEN (as the NEDS authors did): per bin, the
   encoder output is averaged over the bin's N_p patches -> (T, D), a small transformer
   decoder with a learned time embedding over those T tokens, then linear heads: wheel and
   whisker per bin (MSE on standardised values), choice and block from the decoder's tokens
   averaged over the trial (cross-entropy). The paper queries the LAST bin because NDT2's
   decoder attends causally; ours is bidirectional, so every token sees the whole trial, and
   the average (as NEDS averages its per-bin logits) trained reliably where the last token
   stayed at chance on small sessions. The frozen encoder's outputs of the training and
   validation trials are computed once (eval mode) and reused every decoder epoch: memory
   trials x T x N_p x D floats (e.g. 500 x 100 x 10 x 512 x 4 B = 1 GB at paper size).

Both phases: AdamW, linear warm-up + cosine decay (the NEDS schedule), gradient norm clipped
at 1 (the NEDS default), the epoch with the
best validation score kept (pretraining: masked Poisson NLL of the validation trials with a
fixed mask; decoding: :func:`pipeline.neds.evaluate.task_scores` decoding score).
"""

from __future__ import annotations

import logging
import math
import time

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from pipeline.neds.config import Ndt2Params
from pipeline.neds.data import CONTINUOUS, DISCRETE, SessionData
from pipeline.neds.evaluate import decoding_metrics, task_scores
from pipeline.neds.train import _schedule
from pipeline.seeding import derive_seed

log = logging.getLogger(__name__)


def _encoder(params: Ndt2Params, n_layers: int) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(params.embed_dim, params.n_heads, params.mlp_dim, params.dropout,
                                       batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)


class Ndt2(nn.Module):
    """NDT2 for one session of ``n_neurons`` neurons and ``n_bins`` bins (module docstring).

    :meth:`patches` (trials, T, N) counts -> (trials, T, N_p, P); :meth:`encode` patches and
    a (trials, T, N_p) bool mask (True: masked) -> (trials, T, N_p, D); :meth:`reconstruct`
    -> log-rates (trials, T, N_p, P); :meth:`decode` -> wheel / whisker (trials, T) and
    choice / block logits (trials, classes)."""

    def __init__(self, params: Ndt2Params, n_neurons: int, n_bins: int):
        super().__init__()
        self.params, self.n_neurons, self.n_bins = params, n_neurons, n_bins
        self.n_patches = math.ceil(n_neurons / params.patch_size)
        d = params.embed_dim
        self.patch_in = nn.Linear(params.patch_size, d)
        self.time_embed = nn.Parameter(torch.randn(n_bins, d) * 0.02)
        self.space_embed = nn.Parameter(torch.randn(self.n_patches, d) * 0.02)
        self.mask_token = nn.Parameter(torch.zeros(d))
        self.dropout = nn.Dropout(params.dropout)
        self.encoder = _encoder(params, params.n_layers)
        self.encoder_norm = nn.LayerNorm(d)
        self.patch_out = nn.Linear(d, params.patch_size)
        self.decoder_in = nn.Linear(self.n_patches * d, d)
        self.decoder_time = nn.Parameter(torch.randn(n_bins, d) * 0.02)
        self.decoder = _encoder(params, params.decoder_layers)
        self.decoder_norm = nn.LayerNorm(d)
        self.heads = nn.ModuleDict({name: nn.Linear(d, 1) for name in CONTINUOUS})
        self.heads.update({name: nn.Linear(d, n) for name, n in DISCRETE.items()})

    def patches(self, counts: torch.Tensor) -> torch.Tensor:
        pad = self.n_patches * self.params.patch_size - self.n_neurons
        padded = F.pad(counts, (0, pad))
        return padded.reshape(*counts.shape[:2], self.n_patches, self.params.patch_size)

    def encode(self, patches: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        n_trials, n_bins, n_patches, _ = patches.shape
        tokens = self.patch_in(torch.log1p(patches))
        if mask is not None:
            tokens = torch.where(mask[..., None], self.mask_token.expand_as(tokens), tokens)
        tokens = tokens + self.time_embed[:n_bins, None] + self.space_embed[None]
        hidden = self.encoder(self.dropout(tokens.reshape(n_trials, n_bins * n_patches, -1)))
        return self.encoder_norm(hidden).reshape(n_trials, n_bins, n_patches, -1)

    def reconstruct(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.patch_out(hidden)

    def decode(self, hidden: torch.Tensor) -> dict[str, torch.Tensor]:
        per_bin = self.decoder_in(hidden.flatten(2)) + self.decoder_time[: hidden.shape[1]]
        out = self.decoder_norm(self.decoder(self.dropout(per_bin)))
        outputs = {name: self.heads[name](out).squeeze(-1) for name in CONTINUOUS}
        outputs.update({name: self.heads[name](out.mean(dim=1)) for name in DISCRETE})
        return outputs


def neuron_validity(model: Ndt2, device: torch.device) -> torch.Tensor:
    """(N_p, P) bool: True for real neurons, False for the zero padding of the last patch."""
    valid = torch.zeros(model.n_patches * model.params.patch_size, dtype=torch.bool, device=device)
    valid[: model.n_neurons] = True
    return valid.reshape(model.n_patches, model.params.patch_size)


def random_token_mask(shape: tuple[int, ...], ratio: float, generator: torch.Generator) -> torch.Tensor:
    """(trials, T, N_p) bool: exactly round(ratio * T * N_p) (at least 1) tokens masked per trial."""
    n_trials, n_tokens = shape[0], int(np.prod(shape[1:]))
    n_masked = max(1, int(round(ratio * n_tokens)))
    order = torch.rand(n_trials, n_tokens, generator=generator).argsort(dim=1)
    mask = torch.zeros(n_trials, n_tokens, dtype=torch.bool)
    mask.scatter_(1, order[:, :n_masked], True)
    return mask.reshape(shape)


def masked_poisson_nll(model: Ndt2, patches: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean Poisson NLL (nats per masked neuron-bin, up to the log k! constant) of the masked
    tokens' counts under the reconstructed log-rates."""
    log_rates = model.reconstruct(model.encode(patches, mask))
    weight = (mask[..., None] & neuron_validity(model, patches.device)).float()
    nll = F.poisson_nll_loss(log_rates, patches, log_input=True, full=False, reduction="none")
    return (nll * weight).sum() / weight.sum()


def decoding_loss(outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> torch.Tensor:
    """Sum over tasks of MSE (continuous, standardised) and cross-entropy (discrete)."""
    loss = sum(F.mse_loss(outputs[n], targets[n]) for n in CONTINUOUS)
    return loss + sum(F.cross_entropy(outputs[n], targets[n]) for n in DISCRETE)


def _fit(model: Ndt2, parameters: list[nn.Parameter], train: dict[str, torch.Tensor], epochs: int,
         params: Ndt2Params, seed: int, batch_loss, validation_score) -> dict:
    """AdamW + warm-up/cosine over ``epochs``; keeps the state of the epoch with the highest
    ``validation_score()``; returns the curve and the best epoch."""
    n_train = train["spikes"].shape[0]
    steps = epochs * math.ceil(n_train / params.batch_size)
    optimizer = torch.optim.AdamW(parameters, lr=params.learning_rate, weight_decay=params.weight_decay)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, _schedule(steps, params.warmup_fraction))
    generator = torch.Generator().manual_seed(seed)
    best, best_epoch, best_state, curve = -math.inf, -1, None, []
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(n_train, generator=generator)
        for start in range(0, n_train, params.batch_size):
            rows = order[start:start + params.batch_size]
            loss = batch_loss({k: v[rows] for k, v in train.items()}, generator)
            optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(parameters, 1.0)
            optimizer.step()
            scheduler.step()
        model.eval()
        with torch.no_grad():
            score = validation_score()
        curve.append(score)
        if math.isfinite(score) and score > best:
            best, best_epoch = score, epoch
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    if best_state is None:
        raise ValueError("NDT2: no epoch gave a finite validation score")
    model.load_state_dict(best_state)
    return {"epochs": epochs, "best_epoch": best_epoch, "best_val_score": best, "val_curve": curve}


def encoded(model: Ndt2, spikes: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Encoder outputs (trials, T, N_p, D) of ``spikes`` (trials, T, N), eval mode, in batches."""
    model.eval()
    with torch.no_grad():
        return torch.cat([model.encode(model.patches(spikes[i:i + batch_size]))
                          for i in range(0, spikes.shape[0], batch_size)])


def predict_behavior(model: Ndt2, hidden: torch.Tensor) -> dict[str, np.ndarray]:
    """Decoded behaviours from encoder outputs ``hidden`` (:func:`encoded`): continuous
    (trials, T), classes (trials,)."""
    model.eval()
    with torch.no_grad():
        outputs = model.decode(hidden)
    predicted = {n: outputs[n].cpu().numpy() for n in CONTINUOUS}
    predicted.update({n: outputs[n].argmax(dim=-1).cpu().numpy() for n in DISCRETE})
    return predicted


def train_ndt2(data: SessionData, params: Ndt2Params, seed: int, device: torch.device) -> tuple[Ndt2, dict]:
    """Pretrain (self-supervised) then train the decoder on the frozen encoder (module
    docstring) on the session's training trials; returns the model and a training summary."""
    if data.splits["val"].size == 0:
        raise ValueError(f"{data.path}: session {data.session_id} has no validation trial")
    torch.manual_seed(derive_seed(seed, "ndt2_init"))
    model = Ndt2(params, data.n_neurons, data.n_bins).to(device)
    train, val, val_arrays = data.tensors("train", device), data.tensors("val", device), data.arrays("val")
    val_patches = model.patches(val["spikes"])
    val_mask = random_token_mask(val_patches.shape[:3], params.mask_ratio,
                                 torch.Generator().manual_seed(derive_seed(seed, "ndt2_val_mask"))).to(device)
    started = time.perf_counter()

    def ssl_loss(batch, generator):
        patches = model.patches(batch["spikes"])
        mask = random_token_mask(patches.shape[:3], params.mask_ratio, generator).to(device)
        return masked_poisson_nll(model, patches, mask)

    encoder_parameters = [p for name, p in model.named_parameters()
                          if not name.startswith(("decoder", "heads"))]
    pretraining = _fit(model, encoder_parameters, train, params.pretrain_epochs, params,
                       derive_seed(seed, "ndt2_pretrain"), ssl_loss,
                       lambda: -float(masked_poisson_nll(model, val_patches, val_mask)))
    for p in encoder_parameters:
        p.requires_grad_(False)

    features = {**train, "spikes": encoded(model, train["spikes"], params.batch_size)}
    val_features = encoded(model, val["spikes"], params.batch_size)

    def supervised_loss(batch, generator):
        return decoding_loss(model.decode(batch["spikes"]), batch)

    decoder_parameters = [p for name, p in model.named_parameters() if name.startswith(("decoder", "heads"))]
    decoding = _fit(model, decoder_parameters, features, params.decode_epochs, params, derive_seed(seed, "ndt2_decode"),
                    supervised_loss,
                    lambda: task_scores(decoding_metrics(val_arrays, predict_behavior(model, val_features)))["decoding"])
    summary = {"pretraining": pretraining, "decoding": decoding, "train_seconds": time.perf_counter() - started,
               "device": str(device), "n_parameters": sum(p.numel() for p in model.parameters())}
    return model, summary


def evaluate_ndt2(model: Ndt2, data: SessionData, split: str = "test") -> dict[str, float]:
    """:func:`pipeline.neds.evaluate.decoding_metrics` of the model's predictions on ``split``."""
    device = next(model.parameters()).device
    hidden = encoded(model, data.tensors(split, device)["spikes"], model.params.batch_size)
    return decoding_metrics(data.arrays(split), predict_behavior(model, hidden))
