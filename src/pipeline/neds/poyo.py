"""POYO+ baseline (Azabou et al. 2023 "POYO", 2025 "POYO+"; as trained for NEDS, paper seed 002
App. C "POYO+" and App. F), single-session and multi-session, re-implemented after
torch_brain's ``POYOPlus`` (neuro-galaxy/torch_brain: models/poyo_plus.py,
nn/rotary_attention.py, nn/position_embeddings.py, nn/multitask_readout.py).

Why not the package: ``torch-brain`` on PyPI pulls ray and uv into the environment (and its
data layer, temporaldata / brainsets, expects its own recording format); the model itself
is a few modules, written here against the binned session files of the pipeline.

Design (as ``POYOPlus``):

- Input tokens: every spike is a token = its unit's embedding + a token-type embedding
  (spike), at the spike's time (s); every unit also has a start token at 0 s and an end
  token at the trial's end (types start / end), so a silent unit is still seen. The binned
  file keeps counts, not spike times: a spike's time is its 20 ms bin's centre. A trial
  with more than ``max_spikes`` spikes keeps a uniformly random subset (fixed per trial
  and seed; memory is O(tokens x latents) per trial).
- Rotary time embedding (RoPE on time in seconds): half of each head's dimensions rotate
  with periods log-spaced from 2 bins (40 ms) to 2.0627 s (torch_brain: 1e-4 s to 2.0627 s;
  times here are bin centres, on which a period under 2 bins aliases), on queries and
  keys of every attention; the encoder's cross-attention and the self-attentions also
  rotate the values (and rotate the output back), the readout's cross-attention does not.
- Encoder: latent tokens (``latents_per_step`` learned embeddings repeated at every
  ``latent_step_s``, at the step's centre) cross-attend to the input tokens (1 head), then
  a GEGLU feed-forward; ``n_layers`` rotary self-attention + feed-forward blocks over the
  latents (pre-norm residual, dropout ``linear_dropout`` on the residual branches).
- Multi-task readout: output queries = session embedding + task embedding, one per bin for
  wheel speed and whisker motion energy (at the bin's centre) and one per trial for choice
  and block (at the trial's end), cross-attend to the latents (1 head) + feed-forward; one
  linear readout per task. Loss: MSE of the standardised behaviours x ``regression_weight``
  (the paper weighs regression by 20) + cross-entropy of choice and block.
- Unit and session embeddings belong to their session (torch_brain's InfiniteVocabEmbedding
  grows a vocabulary; here one table per session, concatenated in session order), so a
  batch mixes trials of any sessions.
- Training: unit dropout (each unit's tokens hidden with probability ``unit_dropout`` in a
  training trial; the paper uses unit dropout, torch_brain samples how many units to keep),
  AdamW with the learning rate constant, then cosine-decayed over the last
  ``decay_fraction`` of the steps (the paper: LAMB, same schedule); the epoch with the best
  validation decoding score (:func:`pipeline.neds.evaluate.task_scores`, averaged over
  sessions) is kept (:func:`pipeline.neds.fitting.fit`).

Single session (:func:`train_poyo`): trained from scratch on one session's training trials.
Multi-session: :func:`pretrain_poyo` trains on the pooled training trials of the pretraining
sessions; :func:`finetune_poyo` adds a held-out session's unit and session embeddings and
first trains only those (unit identification, POYO Sec. 3.4: the rest of the model frozen),
then every weight ("fine-tuned on the 10 held-out sessions" with early stopping, App. C).

Differences from the paper's POYO+, by necessity: spike times are bin centres; trials are
trial-aligned 2 s windows without temporal jitter (as the NEDS authors did); rotary periods
from 2 bins, not 1e-4 s; AdamW, not LAMB
(not in torch); unit dropout as a fixed per-unit probability.
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

from pipeline.neds.config import PoyoMultiSessionParams, PoyoParams, check_pretrained_params
from pipeline.neds.data import CONTINUOUS, DISCRETE, SessionData
from pipeline.neds.evaluate import decoding_metrics, task_scores
from pipeline.neds.fitting import constant_then_cosine, fit
from pipeline.seeding import derive_seed
from pipeline.train.checkpoint import load_checkpoint, save_checkpoint

#: Token types of the input sequence (torch_brain: start / end tokens per unit, then spikes).
SPIKE, START, END = 0, 1, 2
#: Readout tasks in query order: one query per bin for each continuous, one per trial for each discrete task.
TASKS: tuple[str, ...] = (*CONTINUOUS, *DISCRETE)
#: Longest rotary period (s): torch_brain's t_max (the shortest is 2 bins, module docstring).
ROTARY_MAX_PERIOD_S = 2.0627
EMBEDDING_INIT_SCALE = 0.02


def spike_tokens(counts: np.ndarray, bin_size_s: float, max_spikes: int, seed: int) -> dict[str, torch.Tensor]:
    """Input tokens of ``counts`` (trials, T, N) spike counts: ``unit`` (trials, S) int64
    local unit index, ``time`` (trials, S) float32 s, ``kind`` (trials, S) int64 token type,
    ``valid`` (trials, S) bool (False: padding). Per trial: N start tokens (0 s), N end
    tokens (T * bin_size_s), then min(spikes, ``max_spikes``) spike tokens at bin centres."""
    rng = np.random.default_rng(seed)
    n_trials, n_bins, n_units = counts.shape
    units = np.arange(n_units)
    per_trial = []
    for trial in counts.astype(np.int64):
        bins, spiking = np.nonzero(trial)
        repeats = trial[bins, spiking]
        bins, spiking = np.repeat(bins, repeats), np.repeat(spiking, repeats)
        if bins.size > max_spikes:
            keep = np.sort(rng.choice(bins.size, max_spikes, replace=False))
            bins, spiking = bins[keep], spiking[keep]
        per_trial.append((bins, spiking))
    width = 2 * n_units + max(b.size for b, _ in per_trial)
    unit = np.zeros((n_trials, width), np.int64)
    times = np.zeros((n_trials, width), np.float32)
    kind = np.full((n_trials, width), SPIKE, np.int64)
    valid = np.zeros((n_trials, width), bool)
    for i, (bins, spiking) in enumerate(per_trial):
        n = 2 * n_units + bins.size
        unit[i, :n] = np.concatenate([units, units, spiking])
        times[i, :n] = np.concatenate([np.zeros(n_units), np.full(n_units, n_bins * bin_size_s),
                                       (bins + 0.5) * bin_size_s])
        kind[i, :2 * n_units] = np.repeat([START, END], n_units)
        valid[i, :n] = True
    return {name: torch.as_tensor(values) for name, values in
            {"unit": unit, "time": times, "kind": kind, "valid": valid}.items()}


class RotaryTime(nn.Module):
    """Rotary embedding of times (s) for heads of ``head_dim``: the first head_dim / 4 pairs
    of dimensions rotate with periods log-spaced from ``min_period_s`` to
    :data:`ROTARY_MAX_PERIOD_S`, the rest do not (torch_brain's ``RotaryTimeEmbedding`` with
    rotate_dim = head_dim / 2, interleaved pairs)."""

    def __init__(self, head_dim: int, min_period_s: float):
        super().__init__()
        periods = torch.logspace(math.log10(min_period_s), math.log10(ROTARY_MAX_PERIOD_S), head_dim // 4)
        omega = torch.zeros(head_dim // 2)
        omega[: head_dim // 4] = 2 * math.pi / periods
        self.register_buffer("omega", omega)

    def forward(self, times: torch.Tensor) -> torch.Tensor:
        """(..., L) s -> (..., L, 2 * head_dim): cos and sin of each dimension's angle."""
        angles = (times[..., None] * self.omega).repeat_interleave(2, dim=-1)
        return torch.cat([angles.cos(), angles.sin()], dim=-1)


def rotate(x: torch.Tensor, embedding: torch.Tensor) -> torch.Tensor:
    """Rotate ``x`` (batch, heads, L, head_dim) by ``embedding`` (batch, L, 2 * head_dim) of
    :class:`RotaryTime`; the negated embedding (sin -> -sin) rotates back."""
    cos, sin = embedding[:, None].chunk(2, dim=-1)
    pairs = x.unflatten(-1, (-1, 2))
    rotated_half = torch.stack([-pairs[..., 1], pairs[..., 0]], dim=-1).flatten(-2)
    return x * cos + rotated_half * sin


def _invert(embedding: torch.Tensor) -> torch.Tensor:
    cos, sin = embedding.chunk(2, dim=-1)
    return torch.cat([cos, -sin], dim=-1)


class RotaryAttention(nn.Module):
    """Pre-norm multi-head attention of queries (batch, Lq, D) on a context (batch, Lk, D)
    (itself when ``context`` is None) with rotary time embeddings; ``valid`` (batch, Lk)
    masks padding; ``rotate_value``: values rotated by their time and outputs back by the
    query's (torch_brain's ``RotaryCrossAttention`` / ``RotarySelfAttention``). Returns the
    residual branch (batch, Lq, D)."""

    def __init__(self, dim: int, heads: int, head_dim: int, dropout: float, rotate_value: bool, cross: bool):
        super().__init__()
        inner = heads * head_dim
        self.heads, self.dropout, self.rotate_value = heads, dropout, rotate_value
        self.norm = nn.LayerNorm(dim)
        self.norm_context = nn.LayerNorm(dim) if cross else None
        self.to_q = nn.Linear(dim, inner, bias=False)
        self.to_kv = nn.Linear(dim, 2 * inner, bias=False)
        self.to_out = nn.Linear(inner, dim)

    def _split(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (self.heads, -1)).transpose(1, 2)

    def forward(self, x, x_rotary, context=None, context_rotary=None, valid=None):
        x = self.norm(x)
        context, context_rotary = (x, x_rotary) if context is None else (self.norm_context(context), context_rotary)
        q = rotate(self._split(self.to_q(x)), x_rotary)
        k, v = (self._split(t) for t in self.to_kv(context).chunk(2, dim=-1))
        k = rotate(k, context_rotary)
        if self.rotate_value:
            v = rotate(v, context_rotary)
        mask = None if valid is None else valid[:, None, None, :]
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=self.dropout if self.training else 0.0)
        if self.rotate_value:
            out = rotate(out, _invert(x_rotary))
        return self.to_out(out.transpose(1, 2).flatten(2))


class FeedForward(nn.Module):
    """Pre-norm GEGLU feed-forward (width 4 D), torch_brain's ``FeedForward``; returns the residual branch."""

    def __init__(self, dim: int, dropout: float):
        super().__init__()
        self.norm, self.inner = nn.LayerNorm(dim), nn.Linear(dim, 8 * dim)
        self.dropout, self.outer = nn.Dropout(dropout), nn.Linear(4 * dim, dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values, gates = self.inner(self.norm(x)).chunk(2, dim=-1)
        return self.outer(self.dropout(values * F.gelu(gates)))


def _embedding(*shape: int) -> nn.Parameter:
    return nn.Parameter(torch.randn(*shape) * EMBEDDING_INIT_SCALE)


class Poyo(nn.Module):
    """POYO+ over sessions ``n_units`` (session id -> units), trials of ``n_bins`` bins of
    ``bin_size_s`` s (module docstring). :meth:`add_session` adds a session's unit and
    session embeddings; :meth:`forward` input tokens with GLOBAL unit indices
    (:meth:`unit_offset` + local) and each trial's session position -> wheel / whisker
    (trials, T), choice / block logits (trials, classes)."""

    def __init__(self, params: PoyoParams, n_units: Mapping[str, int], n_bins: int, bin_size_s: float):
        super().__init__()
        d, duration = params.embed_dim, n_bins * bin_size_s
        self.params, self.n_bins, self.bin_size_s, self.n_units = params, n_bins, bin_size_s, {}
        self.unit_embed, self.session_embed = nn.ParameterDict(), nn.ParameterDict()
        self.token_type_embed = _embedding(3, d)
        self.task_embed = _embedding(len(TASKS), d)
        self.latent_embed = _embedding(params.latents_per_step, d)
        steps = max(1, round(duration / params.latent_step_s))
        step_times = (torch.arange(steps) + 0.5) * duration / steps
        self.register_buffer("latent_times", step_times.repeat_interleave(params.latents_per_step))
        query_times = [(torch.arange(n_bins) + 0.5) * bin_size_s] * len(CONTINUOUS)
        query_times += [torch.full((1,), duration)] * len(DISCRETE)
        self.register_buffer("query_times", torch.cat(query_times))
        self.register_buffer("query_task", torch.cat([torch.full((n_bins,), i) for i in range(len(CONTINUOUS))]
                                                     + [torch.full((1,), len(CONTINUOUS) + i)
                                                        for i in range(len(DISCRETE))]))
        self.rotary = RotaryTime(params.head_dim, 2 * bin_size_s)
        self.encode_attention = RotaryAttention(d, 1, params.head_dim, params.attention_dropout, True, cross=True)
        self.encode_ffn = FeedForward(d, params.ffn_dropout)
        self.process = nn.ModuleList(
            nn.ModuleList([RotaryAttention(d, params.n_heads, params.head_dim, params.attention_dropout, True,
                                           cross=False), FeedForward(d, params.ffn_dropout)])
            for _ in range(params.n_layers))
        self.dropout = nn.Dropout(params.linear_dropout)
        self.decode_attention = RotaryAttention(d, 1, params.head_dim, params.attention_dropout, False, cross=True)
        self.decode_ffn = FeedForward(d, params.ffn_dropout)
        self.readout = nn.ModuleDict({n: nn.Linear(d, 1) for n in CONTINUOUS})
        self.readout.update({n: nn.Linear(d, k) for n, k in DISCRETE.items()})
        for session_id, n in n_units.items():
            self.add_session(session_id, n)

    def add_session(self, session_id: str, n_units: int) -> None:
        """New unit embeddings (n_units, D) and session embedding (D) of a session, appended
        to the session order (existing sessions keep their global unit indices)."""
        device = self.task_embed.device
        self.n_units[session_id] = n_units
        self.unit_embed[session_id] = _embedding(n_units, self.params.embed_dim).to(device)
        self.session_embed[session_id] = _embedding(self.params.embed_dim).to(device)

    def session_position(self, session_id: str) -> int:
        return list(self.n_units).index(session_id)

    def unit_offset(self, session_id: str) -> int:
        """Global index of the session's first unit (units of the sessions before it come first)."""
        sessions = list(self.n_units)
        return sum(self.n_units[sid] for sid in sessions[:sessions.index(session_id)])

    def new_session_parameters(self, session_id: str) -> list[nn.Parameter]:
        """What unit identification trains: the session's unit and session embeddings."""
        return [self.unit_embed[session_id], self.session_embed[session_id]]

    def forward(self, unit: torch.Tensor, times: torch.Tensor, kind: torch.Tensor, valid: torch.Tensor,
                session: torch.Tensor) -> dict[str, torch.Tensor]:
        """``unit`` (B, S) global unit index, ``times`` (B, S) s, ``kind`` (B, S) token
        type, ``valid`` (B, S) bool, ``session`` (B,) session position."""
        n_trials = unit.shape[0]
        units = torch.cat(list(self.unit_embed.values()))
        inputs = units[unit] + self.token_type_embed[kind]
        latents = self.latent_embed.repeat(self.latent_times.numel() // self.latent_embed.shape[0], 1)
        latents = latents.expand(n_trials, -1, -1)
        latent_rotary = self.rotary(self.latent_times).expand(n_trials, -1, -1)
        latents = latents + self.encode_attention(latents, latent_rotary, inputs, self.rotary(times), valid)
        latents = latents + self.encode_ffn(latents)
        for attention, ffn in self.process:
            latents = latents + self.dropout(attention(latents, latent_rotary))
            latents = latents + self.dropout(ffn(latents))
        sessions = torch.stack(list(self.session_embed.values()))[session]
        queries = sessions[:, None] + self.task_embed[self.query_task][None]
        query_rotary = self.rotary(self.query_times).expand(n_trials, -1, -1)
        queries = queries + self.decode_attention(queries, query_rotary, latents, latent_rotary)
        out = queries + self.decode_ffn(queries)
        outputs, start = {}, 0
        for n in CONTINUOUS:
            outputs[n] = self.readout[n](out[:, start:start + self.n_bins]).squeeze(-1)
            start += self.n_bins
        for n in DISCRETE:
            outputs[n] = self.readout[n](out[:, start])
            start += 1
        return outputs


def _tokens(model: Poyo, data: SessionData, split: str, seed: int) -> dict[str, torch.Tensor]:
    """Input tokens (global unit indices), the trial's session position and the behaviours of ``split``."""
    arrays = data.arrays(split)
    tokens = spike_tokens(arrays["spikes"], data.bin_size_s, model.params.max_spikes,
                          derive_seed(seed, "poyo_tokens", data.session_id, split))
    tokens["unit"] += model.unit_offset(data.session_id)
    tokens["session"] = torch.full((arrays["spikes"].shape[0],), model.session_position(data.session_id))
    return {**tokens, **{n: torch.as_tensor(arrays[n]) for n in TASKS}}


def _pool(token_sets: list[dict[str, torch.Tensor]], device: torch.device) -> dict[str, torch.Tensor]:
    """Concatenate the trials of several sessions, padding the token axis to the widest
    (padding: invalid tokens of unit 0 at 0 s)."""
    width = max(t["unit"].shape[1] for t in token_sets)
    pooled = {}
    for name in token_sets[0]:
        parts = []
        for tokens in token_sets:
            part = tokens[name]
            if name in ("unit", "time", "kind", "valid"):
                padded = torch.zeros(part.shape[0], width, dtype=part.dtype)
                padded[:, :part.shape[1]] = part
                part = padded
            parts.append(part)
        pooled[name] = torch.cat(parts).to(device)
    return pooled


def _inputs(batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, ...]:
    return batch["unit"], batch["time"], batch["kind"], batch["valid"], batch["session"]


def predict(model: Poyo, tokens: dict[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """Predicted behaviours (continuous (trials, T), classes (trials,)), eval mode, in batches."""
    model.eval()
    n, size = tokens["unit"].shape[0], model.params.batch_size
    with torch.no_grad():
        chunks = [model(*_inputs({k: v[i:i + size] for k, v in tokens.items()})) for i in range(0, n, size)]
    predicted = {t: torch.cat([c[t] for c in chunks]).cpu().numpy() for t in CONTINUOUS}
    predicted.update({t: torch.cat([c[t] for c in chunks]).argmax(dim=-1).cpu().numpy() for t in DISCRETE})
    return predicted


def multitask_loss(model: Poyo, batch: dict[str, torch.Tensor], generator: torch.Generator | None) -> torch.Tensor:
    """``regression_weight`` x MSE (wheel, whisker) + cross-entropy (choice, block) of a
    batch; with a ``generator`` (training) each unit's tokens are hidden with probability
    ``unit_dropout`` per trial."""
    valid = batch["valid"]
    if generator is not None and model.params.unit_dropout > 0:
        n_units = sum(model.n_units.values())
        dropped = torch.rand(valid.shape[0], n_units, generator=generator) < model.params.unit_dropout
        valid = valid & ~dropped.to(valid.device).gather(1, batch["unit"])
        valid[:, 0] |= ~valid.any(dim=1)  # a trial keeps at least one token (attention over nothing is NaN)
    outputs = model(batch["unit"], batch["time"], batch["kind"], valid, batch["session"])
    regression = sum(F.mse_loss(outputs[n], batch[n]) for n in CONTINUOUS)
    return model.params.regression_weight * regression + sum(F.cross_entropy(outputs[n], batch[n]) for n in DISCRETE)


def _check_sessions(sessions: Mapping[str, SessionData], n_bins: int, bin_size_s: float) -> None:
    for data in sessions.values():
        if data.splits["val"].size == 0:
            raise ValueError(f"{data.path}: session {data.session_id} has no validation trial")
        if not np.isfinite(data.bin_size_s) or data.bin_size_s <= 0:
            raise ValueError(f"{data.path}: bin_size_s attribute missing or not positive")
        if (data.n_bins, data.bin_size_s) != (n_bins, bin_size_s):
            raise ValueError(f"{data.path}: trials of {data.n_bins} bins of {data.bin_size_s} s, the model's are "
                             f"{n_bins} bins of {bin_size_s} s")


def _train(model: Poyo, sessions: Mapping[str, SessionData], parameters: list[nn.Parameter], epochs: int, seed: int,
           device: torch.device, description: str) -> dict:
    """Supervised multi-task training of ``parameters`` on the pooled training trials of
    ``sessions``; best epoch by the validation decoding score averaged over sessions."""
    train = _pool([_tokens(model, data, "train", seed) for data in sessions.values()], device)
    validation = {sid: ({k: v.to(device) for k, v in _tokens(model, data, "val", seed).items()}, data.arrays("val"))
                  for sid, data in sessions.items()}
    trainable = {id(p) for p in parameters}
    for p in model.parameters():
        p.requires_grad_(id(p) in trainable)

    def score() -> float:
        return float(np.mean([task_scores(decoding_metrics(arrays, predict(model, tokens)))["decoding"]
                              for tokens, arrays in validation.values()]))

    p = model.params
    return fit(model, parameters, {"pooled": train}, epochs, batch_size=p.batch_size, learning_rate=p.learning_rate,
               weight_decay=p.weight_decay, schedule=constant_then_cosine, schedule_fraction=p.decay_fraction,
               seed=derive_seed(seed, description), batch_loss=lambda group, batch, g: multitask_loss(model, batch, g),
               validation_score=score, description=description, progress=True)


def _summary(model: Poyo, sessions: Mapping[str, SessionData], started: float, device: torch.device,
             **phases) -> dict:
    return {**phases, "train_seconds": time.perf_counter() - started, "device": str(device),
            "n_parameters": sum(p.numel() for p in model.parameters()),
            "max_spikes_in_a_trial": int(max(data.spikes.sum(axis=(1, 2)).max() for data in sessions.values()))}


def _build(params: PoyoParams, sessions: Mapping[str, SessionData], seed: int, device: torch.device) -> Poyo:
    first = next(iter(sessions.values()))
    _check_sessions(sessions, first.n_bins, first.bin_size_s)
    torch.manual_seed(derive_seed(seed, "poyo_init"))
    return Poyo(params, {sid: data.n_neurons for sid, data in sessions.items()}, first.n_bins,
                first.bin_size_s).to(device)


def train_poyo(data: SessionData, params: PoyoParams, seed: int, device: torch.device) -> tuple[Poyo, dict]:
    """Single session: every weight trained on the session's training trials."""
    sessions = {data.session_id: data}
    model = _build(params, sessions, seed, device)
    started = time.perf_counter()
    training = _train(model, sessions, list(model.parameters()), params.epochs, seed, device, "poyo_train")
    return model, _summary(model, sessions, started, device, training=training)


def pretrain_poyo(sessions: Mapping[str, SessionData], params: PoyoMultiSessionParams, seed: int,
                  device: torch.device) -> tuple[Poyo, dict]:
    """Multi-session: every weight trained on the pooled training trials of ``sessions``."""
    model = _build(params, sessions, seed, device)
    started = time.perf_counter()
    training = _train(model, sessions, list(model.parameters()), params.epochs, seed, device, "poyo_pretrain")
    return model, _summary(model, sessions, started, device, pretraining=training)


def finetune_poyo(model: Poyo, data: SessionData, seed: int, device: torch.device) -> dict:
    """A held-out session: new unit and session embeddings, unit identification
    (``identify_epochs``, only those train), then ``finetune_epochs`` of every weight."""
    params: PoyoMultiSessionParams = model.params
    _check_sessions({data.session_id: data}, model.n_bins, model.bin_size_s)
    if data.session_id in model.n_units:
        raise ValueError(f"{data.path}: session {data.session_id} was in the pretraining; it is not held out")
    torch.manual_seed(derive_seed(seed, "poyo_new_session"))
    model.add_session(data.session_id, data.n_neurons)
    sessions, started = {data.session_id: data}, time.perf_counter()
    phases = {"identification": _train(model, sessions, model.new_session_parameters(data.session_id),
                                       params.identify_epochs, seed, device, "poyo_identify")}
    if params.finetune_epochs:
        phases["finetuning"] = _train(model, sessions, list(model.parameters()), params.finetune_epochs, seed, device,
                                      "poyo_finetune")
    return _summary(model, sessions, started, device, **phases)


def evaluate_poyo(model: Poyo, data: SessionData, seed: int, split: str = "test") -> dict[str, float]:
    """:func:`pipeline.neds.evaluate.decoding_metrics` of the model on ``split``."""
    device = next(model.parameters()).device
    tokens = {k: v.to(device) for k, v in _tokens(model, data, split, seed).items()}
    return decoding_metrics(data.arrays(split), predict(model, tokens))


def save_poyo(path: str | Path, model: Poyo, record: dict) -> None:
    """The model (weights, params, sessions' unit counts, trial shape) and its job record, atomically."""
    save_checkpoint(path, params=model.params.to_dict(), n_units=model.n_units, n_bins=model.n_bins,
                    bin_size_s=model.bin_size_s, state_dict=model.state_dict(), record=record)


def load_poyo(path: str | Path, params: PoyoMultiSessionParams, device: torch.device) -> Poyo:
    """A model written by :func:`save_poyo`, on ``device``, with ``params`` (the fine-tuning
    job's); every field but the fine-tuning ones must be those it was pretrained with."""
    saved = load_checkpoint(path, map_location=device)
    check_pretrained_params(path, saved["params"], params)
    model = Poyo(params, saved["n_units"], saved["n_bins"], saved["bin_size_s"]).to(device)
    model.load_state_dict(saved["state_dict"])
    return model
