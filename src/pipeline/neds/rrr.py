"""Multi-session reduced-rank regression (RRR) encoder and decoder (Zhang et al. 2024, as the
NEDS paper's RRR baseline; paper seed 002, Sec. 6.1 and App. C).

The full linear map between a trial's behaviour and its spikes has a weight for every
(neuron, input bin, output bin) triple. RRR factorises it into per-session NEURON weights
and a TEMPORAL BASIS shared by all sessions, of rank R (``encoder_rank`` /
``decoder_rank``), so sessions with few trials borrow strength from each other:

- encoder, session i, trial k, behaviour features x_k (T bins x F features, F = 2
  continuous + 2 choice + 3 block one-hot, standardised with training statistics)::

      z_k[r, t] = sum_{f, t'} x_k[t', f] V[r, f, t', t] + c[r, t]      (shared, R x T latents)
      yhat_k[t, n] = sum_r z_k[r, t] U_i[n, r] + b_i[t, n]              (session i's neurons)

  y = spike counts z-scored per neuron with training statistics over trials and bins (App. C:
  "both the behavior inputs and spike count outputs are z-scored", MSE loss; per neuron rather
  than per neuron and bin, because with sparse firing a (bin, neuron) cell often has one or no
  training spike, and its SD would blow a prediction up; the bin's mean is learned by b_i);
  predictions are mapped back to counts and clipped at ``rate_floor`` for bits per spike.
- decoder, one per behaviour, spikes s_k (T x N_i) z-scored per neuron::

      h_k[r, t'] = sum_n s_k[t', n] U_i[n, r]                            (session i's neurons)
      yhat_k[t] = sum_{r, t'} h_k[r, t'] V[r, t', t] + c_i[t]            (continuous, MSE)
      logits_k[c] = sum_{r, t'} h_k[r, t'] V[r, t', c] + c_i[c]          (choice / block, cross-entropy)

Fitted jointly on the training trials of all given sessions by full-batch L-BFGS
(``rrr_iterations`` iterations, strong-Wolfe line search) with an L2 penalty ``rrr_l2`` on
U and V (mean squared weight), from a seeded random start.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from pipeline.neds.config import BaselineParams
from pipeline.neds.data import BEHAVIORS, CONTINUOUS, DISCRETE, SessionData
from pipeline.neds.evaluate import decoding_metrics, encoding_metrics


@dataclass
class RrrModel:
    """Fitted factors: ``neuron_weights`` session -> U_i (N_i, R); ``basis`` V; biases."""

    neuron_weights: dict[str, torch.Tensor]
    basis: torch.Tensor
    shared_bias: torch.Tensor
    session_bias: dict[str, torch.Tensor]


def _fit(model: RrrModel, loss_fn, l2: float, iterations: int) -> RrrModel:
    parameters = [*model.neuron_weights.values(), model.basis, model.shared_bias, *model.session_bias.values()]
    for p in parameters:
        p.requires_grad_(True)
    optimizer = torch.optim.LBFGS(parameters, lr=1.0, max_iter=iterations, line_search_fn="strong_wolfe")

    def closure():
        optimizer.zero_grad()
        penalty = sum(w.pow(2).mean() for w in model.neuron_weights.values()) + model.basis.pow(2).mean()
        loss = loss_fn(model) + l2 * penalty
        loss.backward()
        return loss

    optimizer.step(closure)
    for p in parameters:
        p.requires_grad_(False)
    return model


def _init(shapes: dict[str, int], rank: int, basis_shape: tuple[int, ...], shared_bias_shape: tuple[int, ...],
          session_bias_shape, seed: int) -> RrrModel:
    generator = torch.Generator().manual_seed(seed)
    return RrrModel(
        neuron_weights={sid: 0.1 * torch.randn(n, rank, generator=generator, dtype=torch.float64)
                        for sid, n in sorted(shapes.items())},
        basis=0.01 * torch.randn(*basis_shape, generator=generator, dtype=torch.float64),
        shared_bias=torch.zeros(*shared_bias_shape, dtype=torch.float64),
        session_bias={sid: torch.zeros(*session_bias_shape(n), dtype=torch.float64) for sid, n in sorted(shapes.items())},
    )


@dataclass
class RrrEncoder:
    """Multi-session RRR encoder (module docstring); arrays are per session."""

    model: RrrModel
    x_scale: tuple[np.ndarray, np.ndarray]  # feature mean, SD (F,)
    y_scale: dict[str, tuple[np.ndarray, np.ndarray]]  # session -> count mean, SD (N,)

    def predict(self, session_id: str, features: np.ndarray) -> np.ndarray:
        """Predicted counts (trials, T, N) from ``features`` (trials, T, F)."""
        x = torch.as_tensor((features - self.x_scale[0]) / self.x_scale[1], dtype=torch.float64)
        y = _encode(self.model, session_id, x).numpy()
        mean, sd = self.y_scale[session_id]
        return y * sd + mean


def _encode(model: RrrModel, sid: str, x: torch.Tensor) -> torch.Tensor:
    z = torch.einsum("ksf,rfsu->kru", x, model.basis) + model.shared_bias  # (K, R, T)
    return torch.einsum("kru,nr->kun", z, model.neuron_weights[sid]) + model.session_bias[sid]


def _standardise(values: np.ndarray, axis) -> tuple[np.ndarray, np.ndarray]:
    mean, sd = values.mean(axis=axis), values.std(axis=axis)
    return mean, np.where(sd > 0, sd, 1.0)


def fit_rrr_encoder(features: dict[str, np.ndarray], counts: dict[str, np.ndarray], rank: int, l2: float,
                    iterations: int, seed: int) -> RrrEncoder:
    """Fit on ``features`` (trials, T, F) and ``counts`` (trials, T, N_i) of every session."""
    pooled = np.concatenate([f.reshape(-1, f.shape[-1]) for f in features.values()])
    x_scale = _standardise(pooled, 0)
    y_scale = {sid: _standardise(c.reshape(-1, c.shape[-1]), 0) for sid, c in counts.items()}
    xs = {sid: torch.as_tensor((f - x_scale[0]) / x_scale[1], dtype=torch.float64) for sid, f in features.items()}
    ys = {sid: torch.as_tensor((c - y_scale[sid][0]) / y_scale[sid][1], dtype=torch.float64) for sid, c in counts.items()}
    n_bins, n_features = next(iter(features.values())).shape[1:]
    model = _init({sid: c.shape[2] for sid, c in counts.items()}, rank, (rank, n_features, n_bins, n_bins),
                  (rank, n_bins), lambda n: (n_bins, n), seed)
    n_total = sum(y.numel() for y in ys.values())

    def loss(m):
        return sum(((_encode(m, sid, xs[sid]) - ys[sid]) ** 2).sum() for sid in xs) / n_total

    return RrrEncoder(_fit(model, loss, l2, iterations), x_scale, y_scale)


@dataclass
class RrrDecoder:
    """Multi-session RRR decoder of one behaviour (module docstring)."""

    model: RrrModel
    behavior: str
    x_scale: dict[str, tuple[np.ndarray, np.ndarray]]  # session -> spike mean, SD (N,)

    def predict(self, session_id: str, spikes: np.ndarray) -> np.ndarray:
        """(trials, T) values of a continuous behaviour or (trials,) classes of a discrete one."""
        mean, sd = self.x_scale[session_id]
        out = _decode(self.model, session_id, torch.as_tensor((spikes - mean) / sd, dtype=torch.float64)).numpy()
        return out if self.behavior in CONTINUOUS else out.argmax(axis=1)


def _decode(model: RrrModel, sid: str, spikes: torch.Tensor) -> torch.Tensor:
    h = torch.einsum("ktn,nr->krt", spikes, model.neuron_weights[sid])  # (K, R, T)
    return torch.einsum("krt,rto->ko", h, model.basis) + model.session_bias[sid]


def fit_rrr_decoder(spikes: dict[str, np.ndarray], targets: dict[str, np.ndarray], behavior: str, rank: int,
                    l2: float, iterations: int, seed: int) -> RrrDecoder:
    """Fit on ``spikes`` (trials, T, N_i) and ``targets`` ((trials, T) values of a continuous
    behaviour, or (trials,) classes of a discrete one) of every session."""
    x_scale = {sid: _standardise(s.reshape(-1, s.shape[-1]), 0) for sid, s in spikes.items()}
    xs = {sid: torch.as_tensor((s - x_scale[sid][0]) / x_scale[sid][1], dtype=torch.float64)
          for sid, s in spikes.items()}
    n_bins = next(iter(spikes.values())).shape[1]
    n_out = n_bins if behavior in CONTINUOUS else DISCRETE[behavior]
    model = _init({sid: s.shape[2] for sid, s in spikes.items()}, rank, (rank, n_bins, n_out), (0,),
                  lambda n: (n_out,), seed)
    ys = {sid: torch.as_tensor(t, dtype=torch.float64 if behavior in CONTINUOUS else torch.int64)
          for sid, t in targets.items()}
    n_total = sum(y.numel() for y in ys.values())

    def loss(m):
        if behavior in CONTINUOUS:
            return sum(((_decode(m, sid, xs[sid]) - ys[sid]) ** 2).sum() for sid in xs) / n_total
        return sum(F.cross_entropy(_decode(m, sid, xs[sid]), ys[sid], reduction="sum") for sid in xs) / n_total

    return RrrDecoder(_fit(model, loss, l2, iterations), behavior, x_scale)


def encoder_inputs(arrays: dict[str, np.ndarray], behaviors: tuple[str, ...] = BEHAVIORS) -> np.ndarray:
    """(trials, T, F): the named behaviours per bin (continuous: 1 column; discrete: one-hot,
    replicated over the bins); all four give F = 7."""
    n_trials, n_bins = arrays["wheel_speed"].shape
    columns = []
    for name in behaviors:
        if name in CONTINUOUS:
            columns.append(arrays[name][..., None])
        else:
            k = DISCRETE[name]
            columns.append(np.broadcast_to(np.eye(k)[arrays[name]][:, None, :], (n_trials, n_bins, k)))
    return np.concatenate(columns, axis=2).astype(np.float64)


def evaluate_multi_session_rrr(sessions: dict[str, SessionData], params: BaselineParams,
                               seed: int) -> dict[str, dict]:
    """Fit the encoder (all behaviours, and each behaviour alone for ``bps_<behaviour>``) and
    one decoder per behaviour on the training trials of all ``sessions`` jointly; test-split
    metrics per session, keyed like :func:`pipeline.neds.evaluate.evaluate_model`."""
    train = {sid: data.arrays("train") for sid, data in sessions.items()}
    test = {sid: data.arrays("test") for sid, data in sessions.items()}
    train_spikes = {sid: a["spikes"].astype(np.float64) for sid, a in train.items()}
    metrics: dict[str, dict] = {sid: {} for sid in sessions}
    for behaviors in (BEHAVIORS, *((name,) for name in BEHAVIORS)):
        encoder = fit_rrr_encoder({sid: encoder_inputs(a, behaviors) for sid, a in train.items()}, train_spikes,
                                  params.encoder_rank, params.rrr_l2, params.rrr_iterations, seed)
        for sid, arrays in test.items():
            rates = np.maximum(encoder.predict(sid, encoder_inputs(arrays, behaviors)), params.rate_floor)
            scores = encoding_metrics(arrays["spikes"], rates)
            metrics[sid].update(scores if behaviors == BEHAVIORS else {f"bps_{behaviors[0]}": scores["bps"]})
    predicted: dict[str, dict] = {sid: {} for sid in sessions}
    for name in BEHAVIORS:
        decoder = fit_rrr_decoder(train_spikes, {sid: a[name] for sid, a in train.items()}, name, params.decoder_rank,
                                  params.rrr_l2, params.rrr_iterations, seed)
        for sid, arrays in test.items():
            predicted[sid][name] = decoder.predict(sid, arrays["spikes"].astype(np.float64))
    for sid, arrays in test.items():
        metrics[sid].update(decoding_metrics(arrays, predicted[sid]))
    return metrics
