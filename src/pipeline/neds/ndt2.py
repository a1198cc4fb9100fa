"""NDT2 baseline (Ye et al. 2023, "Neural Data Transformer 2"; as re-implemented for NEDS,
paper seed 002 App. C "NDT2"), single-session and multi-session.

Re-implemented here (no package: the official code, joel99/context_general_bci, is a research
code base tied to its own data pipeline; the NEDS authors re-implemented it too). Steps:

1. Tokens: space-time patches. A trial's counts (T bins, N neurons) are zero-padded to a
   multiple of ``patch_size`` neurons and cut into N_p = ceil(N / patch_size) groups of
   neighbouring neurons (file order); one token per (bin, group) holds the group's
   ``patch_size`` counts (spikes/bin), embedded by a linear map of log1p(counts) plus a
   learned time-bin and a learned patch embedding -> (T * N_p, D). One learned context
   token per session (NDT2's session context embedding) is prepended to the encoder's
   sequence, so one encoder serves many sessions.
2. Self-supervised pretraining: a fraction ``mask_ratio`` of each trial's tokens is replaced
   by a learned mask token (BERT-style; NDT2 drops them from the encoder, MAE-style; same
   objective); a transformer encoder and a linear read-out predict the masked patches'
   log-rates, loss = Poisson NLL of their counts (padding neurons excluded).
3. Supervised decoding with the encoder FROZEN (as the NEDS authors did): per bin, the
   session's own linear map of the bin's N_p patch outputs -> (T, D), a small transformer
   decoder with a learned time embedding over those T tokens, then linear heads: wheel and
   whisker per bin (MSE on standardised values), choice and block from the decoder's tokens
   averaged over the trial (cross-entropy). The paper queries the LAST bin because NDT2's
   decoder attends causally; ours is bidirectional, so every token sees the whole trial, and
   the average (as NEDS averages its per-bin logits) trained reliably where the last token
   stayed at chance on small sessions. One decoder for the four targets (the paper trains
   one per target and 4 learning rates; multi-task here, as NEDS and POYO+, to keep the
   job count of the DAG at one per session). The frozen encoder's outputs of the training
   and validation trials are computed once (eval mode) and reused every decoder epoch:
   memory trials x T x N_p x D floats (e.g. 500 x 100 x 10 x 512 x 4 B = 1 GB at paper size).

Per-session parts (the stitching of sessions with different neurons): the patch (space)
embedding, the context token and the decoder's input map (N_p differs between sessions).
Shared: patch in / out maps, time embedding, mask token, encoder, decoder, heads.

Single session (:func:`train_ndt2`): steps 1-3 on one session's training trials.
Multi-session (App. C "NDT2": pretrain, SSL fine-tune on the session of interest, then a new
decoder on the frozen encoder): :func:`pretrain_ndt2` runs step 2 on the training trials of
every pretraining session (each batch from one session: their token counts differ);
:func:`finetune_ndt2` adds the held-out session's own parts, continues step 2 on its
training trials (every encoder weight trains), then step 3.

Every phase: :func:`pipeline.neds.fitting.fit` (AdamW, linear warm-up + cosine decay,
gradient norm clipped at 1; the epoch with the best validation score kept: SSL phases the
masked Poisson NLL of the validation trials with a fixed mask, averaged over sessions;
decoding the :func:`pipeline.neds.evaluate.task_scores` decoding score).
"""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Mapping

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from pipeline.neds.config import Ndt2MultiSessionParams, Ndt2Params, check_pretrained_params
from pipeline.neds.data import CONTINUOUS, DISCRETE, SessionData
from pipeline.neds.evaluate import decoding_metrics, task_scores
from pipeline.neds.fitting import fit, warmup_cosine
from pipeline.seeding import derive_seed
from pipeline.train.checkpoint import load_checkpoint, save_checkpoint


def _encoder(params: Ndt2Params, n_layers: int) -> nn.TransformerEncoder:
    layer = nn.TransformerEncoderLayer(params.embed_dim, params.n_heads, params.mlp_dim, params.dropout,
                                       batch_first=True, norm_first=True)
    return nn.TransformerEncoder(layer, n_layers, enable_nested_tensor=False)


class Ndt2(nn.Module):
    """NDT2 over sessions ``n_neurons`` (session id -> neurons), ``n_bins`` bins per trial
    (module docstring). :meth:`add_session` adds a session's own parts.

    :meth:`patches` (trials, T, N) counts -> (trials, T, N_p, P); :meth:`encode` patches and
    a (trials, T, N_p) bool mask (True: masked) -> (trials, T, N_p, D); :meth:`reconstruct`
    -> log-rates (trials, T, N_p, P); :meth:`decode` -> wheel / whisker (trials, T) and
    choice / block logits (trials, classes)."""

    def __init__(self, params: Ndt2Params, n_neurons: Mapping[str, int], n_bins: int):
        super().__init__()
        self.params, self.n_bins, self.n_neurons = params, n_bins, {}
        d = params.embed_dim
        self.patch_in = nn.Linear(params.patch_size, d)
        self.time_embed = nn.Parameter(torch.randn(n_bins, d) * 0.02)
        self.mask_token = nn.Parameter(torch.zeros(d))
        self.space_embed, self.context = nn.ParameterDict(), nn.ParameterDict()
        self.dropout = nn.Dropout(params.dropout)
        self.encoder = _encoder(params, params.n_layers)
        self.encoder_norm = nn.LayerNorm(d)
        self.patch_out = nn.Linear(d, params.patch_size)
        self.decoder_in = nn.ModuleDict()
        self.decoder_time = nn.Parameter(torch.randn(n_bins, d) * 0.02)
        self.decoder = _encoder(params, params.decoder_layers)
        self.decoder_norm = nn.LayerNorm(d)
        self.heads = nn.ModuleDict({name: nn.Linear(d, 1) for name in CONTINUOUS})
        self.heads.update({name: nn.Linear(d, n) for name, n in DISCRETE.items()})
        for session_id, n in n_neurons.items():
            self.add_session(session_id, n)

    def add_session(self, session_id: str, n_neurons: int) -> None:
        """New (randomly initialised) space embedding, context token and decoder input map of a session."""
        d, n_patches = self.params.embed_dim, self.n_patches(n_neurons)
        device = self.mask_token.device
        self.n_neurons[session_id] = n_neurons
        self.space_embed[session_id] = nn.Parameter(torch.randn(n_patches, d, device=device) * 0.02)
        self.context[session_id] = nn.Parameter(torch.randn(d, device=device) * 0.02)
        self.decoder_in[session_id] = nn.Linear(n_patches * d, d).to(device)

    def n_patches(self, n_neurons: int) -> int:
        return math.ceil(n_neurons / self.params.patch_size)

    def patches(self, session_id: str, counts: torch.Tensor) -> torch.Tensor:
        n_patches = self.n_patches(self.n_neurons[session_id])
        padded = F.pad(counts, (0, n_patches * self.params.patch_size - counts.shape[-1]))
        return padded.reshape(*counts.shape[:2], n_patches, self.params.patch_size)

    def encode(self, session_id: str, patches: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        n_trials, n_bins, n_patches, _ = patches.shape
        tokens = self.patch_in(torch.log1p(patches))
        if mask is not None:
            tokens = torch.where(mask[..., None], self.mask_token.expand_as(tokens), tokens)
        tokens = tokens + self.time_embed[:n_bins, None] + self.space_embed[session_id][None]
        context = self.context[session_id].expand(n_trials, 1, -1)
        sequence = torch.cat([context, tokens.reshape(n_trials, n_bins * n_patches, -1)], dim=1)
        hidden = self.encoder(self.dropout(sequence))[:, 1:]
        return self.encoder_norm(hidden).reshape(n_trials, n_bins, n_patches, -1)

    def reconstruct(self, hidden: torch.Tensor) -> torch.Tensor:
        return self.patch_out(hidden)

    def decode(self, session_id: str, hidden: torch.Tensor) -> dict[str, torch.Tensor]:
        per_bin = self.decoder_in[session_id](hidden.flatten(2)) + self.decoder_time[: hidden.shape[1]]
        out = self.decoder_norm(self.decoder(self.dropout(per_bin)))
        outputs = {name: self.heads[name](out).squeeze(-1) for name in CONTINUOUS}
        outputs.update({name: self.heads[name](out.mean(dim=1)) for name in DISCRETE})
        return outputs

    def is_decoder_parameter(self, name: str) -> bool:
        """True for the weights of step 3 (decoder, its input maps, heads)."""
        return name.startswith(("decoder", "heads"))


def neuron_validity(model: Ndt2, session_id: str, device: torch.device) -> torch.Tensor:
    """(N_p, P) bool: True for the session's real neurons, False for the zero padding of the last patch."""
    n_neurons = model.n_neurons[session_id]
    n_patches = model.n_patches(n_neurons)
    valid = torch.zeros(n_patches * model.params.patch_size, dtype=torch.bool, device=device)
    valid[:n_neurons] = True
    return valid.reshape(n_patches, model.params.patch_size)


def random_token_mask(shape: tuple[int, ...], ratio: float, generator: torch.Generator) -> torch.Tensor:
    """(trials, T, N_p) bool: exactly round(ratio * T * N_p) (at least 1) tokens masked per trial."""
    n_trials, n_tokens = shape[0], int(np.prod(shape[1:]))
    n_masked = max(1, int(round(ratio * n_tokens)))
    order = torch.rand(n_trials, n_tokens, generator=generator).argsort(dim=1)
    mask = torch.zeros(n_trials, n_tokens, dtype=torch.bool)
    mask.scatter_(1, order[:, :n_masked], True)
    return mask.reshape(shape)


def masked_poisson_nll(model: Ndt2, session_id: str, patches: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean Poisson NLL (nats per masked neuron-bin, up to the log k! constant) of the masked
    tokens' counts under the reconstructed log-rates."""
    log_rates = model.reconstruct(model.encode(session_id, patches, mask))
    weight = (mask[..., None] & neuron_validity(model, session_id, patches.device)).float()
    nll = F.poisson_nll_loss(log_rates, patches, log_input=True, full=False, reduction="none")
    return (nll * weight).sum() / weight.sum()


def decoding_loss(outputs: dict[str, torch.Tensor], targets: dict[str, torch.Tensor]) -> torch.Tensor:
    """Sum over tasks of MSE (continuous, standardised) and cross-entropy (discrete)."""
    loss = sum(F.mse_loss(outputs[n], targets[n]) for n in CONTINUOUS)
    return loss + sum(F.cross_entropy(outputs[n], targets[n]) for n in DISCRETE)


def encoded(model: Ndt2, session_id: str, spikes: torch.Tensor, batch_size: int) -> torch.Tensor:
    """Encoder outputs (trials, T, N_p, D) of ``spikes`` (trials, T, N), eval mode, in batches."""
    model.eval()
    with torch.no_grad():
        return torch.cat([model.encode(session_id, model.patches(session_id, spikes[i:i + batch_size]))
                          for i in range(0, spikes.shape[0], batch_size)])


def predict_behavior(model: Ndt2, session_id: str, hidden: torch.Tensor) -> dict[str, np.ndarray]:
    """Decoded behaviours from encoder outputs ``hidden`` (:func:`encoded`): continuous
    (trials, T), classes (trials,)."""
    model.eval()
    with torch.no_grad():
        outputs = model.decode(session_id, hidden)
    predicted = {n: outputs[n].cpu().numpy() for n in CONTINUOUS}
    predicted.update({n: outputs[n].argmax(dim=-1).cpu().numpy() for n in DISCRETE})
    return predicted


def _check_sessions(sessions: Mapping[str, SessionData], n_bins: int | None = None) -> None:
    for data in sessions.values():
        if data.splits["val"].size == 0:
            raise ValueError(f"{data.path}: session {data.session_id} has no validation trial")
        if n_bins is not None and data.n_bins != n_bins:
            raise ValueError(f"{data.path}: {data.n_bins} bins per trial, the model has {n_bins}")


def _fit(model: Ndt2, parameters, train, epochs: int, params: Ndt2Params, seed: int, batch_loss, validation_score,
         description: str) -> dict:
    return fit(model, parameters, train, epochs, batch_size=params.batch_size, learning_rate=params.learning_rate,
               weight_decay=params.weight_decay, schedule=warmup_cosine, schedule_fraction=params.warmup_fraction,
               seed=seed, batch_loss=batch_loss, validation_score=validation_score, description=description,
               progress=True)


def self_supervised(model: Ndt2, sessions: Mapping[str, SessionData], epochs: int, seed: int,
                    device: torch.device, description: str) -> dict:
    """Step 2 on the training trials of ``sessions`` (all non-decoder weights train)."""
    params = model.params
    train = {sid: {"spikes": data.tensors("train", device)["spikes"]} for sid, data in sessions.items()}
    validation = {}
    for sid, data in sessions.items():
        patches = model.patches(sid, data.tensors("val", device)["spikes"])
        generator = torch.Generator().manual_seed(derive_seed(seed, "ndt2_val_mask", sid))
        validation[sid] = (patches, random_token_mask(patches.shape[:3], params.mask_ratio, generator).to(device))

    def ssl_loss(sid, batch, generator):
        patches = model.patches(sid, batch["spikes"])
        return masked_poisson_nll(model, sid, patches, random_token_mask(patches.shape[:3], params.mask_ratio,
                                                                         generator).to(device))

    encoder_parameters = [p for name, p in model.named_parameters() if not model.is_decoder_parameter(name)]
    for p in encoder_parameters:
        p.requires_grad_(True)
    return _fit(model, encoder_parameters, train, epochs, params, derive_seed(seed, description), ssl_loss,
                lambda: -float(np.mean([float(masked_poisson_nll(model, sid, patches, mask))
                                        for sid, (patches, mask) in validation.items()])), description)


def train_decoder(model: Ndt2, data: SessionData, epochs: int, seed: int, device: torch.device) -> dict:
    """Step 3 on one session: its decoder input map, the decoder and the heads train on the frozen encoder."""
    params, sid = model.params, data.session_id
    for name, p in model.named_parameters():
        p.requires_grad_(model.is_decoder_parameter(name))
    train = data.tensors("train", device)
    features = {**train, "spikes": encoded(model, sid, train["spikes"], params.batch_size)}
    val_features = encoded(model, sid, data.tensors("val", device)["spikes"], params.batch_size)
    val_arrays = data.arrays("val")
    decoder_parameters = [p for name, p in model.named_parameters() if model.is_decoder_parameter(name)]
    return _fit(model, decoder_parameters, {sid: features}, epochs, params, derive_seed(seed, "ndt2_decode"),
                lambda group, batch, generator: decoding_loss(model.decode(sid, batch["spikes"]), batch),
                lambda: task_scores(decoding_metrics(val_arrays, predict_behavior(model, sid, val_features)))["decoding"],
                "ndt2_decode")


def _summary(model: Ndt2, started: float, device: torch.device, **phases) -> dict:
    return {**phases, "train_seconds": time.perf_counter() - started, "device": str(device),
            "n_parameters": sum(p.numel() for p in model.parameters())}


def train_ndt2(data: SessionData, params: Ndt2Params, seed: int, device: torch.device) -> tuple[Ndt2, dict]:
    """Single session: pretrain (self-supervised) then train the decoder on the frozen encoder
    (module docstring) on the session's training trials; returns the model and a summary."""
    _check_sessions({data.session_id: data})
    torch.manual_seed(derive_seed(seed, "ndt2_init"))
    model = Ndt2(params, {data.session_id: data.n_neurons}, data.n_bins).to(device)
    started = time.perf_counter()
    pretraining = self_supervised(model, {data.session_id: data}, params.pretrain_epochs, seed, device,
                                  "ndt2_pretrain")
    decoding = train_decoder(model, data, params.decode_epochs, seed, device)
    return model, _summary(model, started, device, pretraining=pretraining, decoding=decoding)


def pretrain_ndt2(sessions: Mapping[str, SessionData], params: Ndt2MultiSessionParams, seed: int,
                  device: torch.device) -> tuple[Ndt2, dict]:
    """Multi-session self-supervised pretraining on the training trials of every session."""
    n_bins = next(iter(sessions.values())).n_bins
    _check_sessions(sessions, n_bins)
    torch.manual_seed(derive_seed(seed, "ndt2_init"))
    model = Ndt2(params, {sid: data.n_neurons for sid, data in sessions.items()}, n_bins).to(device)
    started = time.perf_counter()
    pretraining = self_supervised(model, sessions, params.pretrain_epochs, seed, device, "ndt2_pretrain")
    return model, _summary(model, started, device, pretraining=pretraining)


def finetune_ndt2(model: Ndt2, data: SessionData, seed: int, device: torch.device) -> dict:
    """A held-out session: its own parts added, SSL fine-tuning of the encoder on its
    training trials (``finetune_epochs``), then a decoder on the frozen encoder (``decode_epochs``)."""
    params: Ndt2MultiSessionParams = model.params
    _check_sessions({data.session_id: data}, model.n_bins)
    if data.session_id in model.n_neurons:
        raise ValueError(f"{data.path}: session {data.session_id} was in the pretraining; it is not held out")
    torch.manual_seed(derive_seed(seed, "ndt2_new_session"))
    model.add_session(data.session_id, data.n_neurons)
    started = time.perf_counter()
    finetuning = self_supervised(model, {data.session_id: data}, params.finetune_epochs, seed, device,
                                 "ndt2_finetune")
    decoding = train_decoder(model, data, params.decode_epochs, seed, device)
    return _summary(model, started, device, finetuning=finetuning, decoding=decoding)


def evaluate_ndt2(model: Ndt2, data: SessionData, split: str = "test") -> dict[str, float]:
    """:func:`pipeline.neds.evaluate.decoding_metrics` of the model's predictions on ``split``."""
    device = next(model.parameters()).device
    hidden = encoded(model, data.session_id, data.tensors(split, device)["spikes"], model.params.batch_size)
    return decoding_metrics(data.arrays(split), predict_behavior(model, data.session_id, hidden))


def save_ndt2(path: str | Path, model: Ndt2, record: dict) -> None:
    """The model (weights, params, sessions' neuron counts, bins) and its job record, atomically."""
    save_checkpoint(path, params=model.params.to_dict(), n_neurons=model.n_neurons, n_bins=model.n_bins,
                    state_dict=model.state_dict(), record=record)


def load_ndt2(path: str | Path, params: Ndt2MultiSessionParams, device: torch.device) -> Ndt2:
    """A model written by :func:`save_ndt2`, on ``device``, with ``params`` (the fine-tuning
    job's); every field but the fine-tuning ones must be those it was pretrained with."""
    saved = load_checkpoint(path, map_location=device)
    check_pretrained_params(path, saved["params"], params)
    model = Ndt2(params, saved["n_neurons"], saved["n_bins"]).to(device)
    model.load_state_dict(saved["state_dict"])
    return model
