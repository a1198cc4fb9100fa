"""Reservoir computer (echo-state network) decoder, NLP4Neuro paper seed 000, App. A (Eq. 2-3).

State update (Eq. 2), for input u(t) (neurons,) and reservoir state r(t) (reservoir_size,):

    r(t) = (1 - a) r(t-1) + a tanh(A r(t-1) + W_in u(t)),      r(-1) = 0

with leak rate ``a``, a fixed random recurrent matrix ``A`` rescaled to the configured
spectral radius, and a fixed random input matrix ``W_in`` (uniform in [-1, 1], times
``input_scaling / sqrt(neurons)`` so the drive stays O(input_scaling) for any population
size). The readout is linear, ŷ(t) = W_out [r(t); 1], and is fitted in closed form by ridge
regression (Eq. 3), never by gradient descent:

    W_out = Y Rᵀ (R Rᵀ + β I)⁻¹

where the columns of R are the states [r(t); 1] of every training window step after the
washout and Y holds the matching tail angles. R Rᵀ and Y Rᵀ are accumulated over batches, so
the fit streams over any number of windows. β is chosen from the ``ridge`` grid by the
lowest validation MSE (computed from the validation windows' accumulated R Rᵀ, Y Rᵀ and
Y Yᵀ, one pass); the chosen β is kept in the ``ridge_strength`` buffer.

Each window is run from the zero state (the model sees the same ``seq_len`` frames as every
other decoder). Washout, identically in fit, prediction and metrics: the ``washout`` leading
steps of each window, whose states still carry the zero initial condition, are left out of
the readout fit and the validation score, and the model predicts the training mean for them
(0 in the z-scored units the decoders work in) instead of applying a readout that was never
fitted there. Metrics then score every step of every window, as for every other decoder.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from pipeline.data.windows import N_TAIL_SEGMENTS, WindowSet
from pipeline.params import Params


@dataclass(frozen=True)
class ReservoirParams(Params):
    reservoir_size: int = 500  # reservoir units N_r
    spectral_radius: float = 0.9  # largest |eigenvalue| of A after rescaling (< 1: echo-state property)
    input_scaling: float = 1.0  # W_in entries are U(-1, 1) * input_scaling / sqrt(neurons)
    leak_rate: float = 0.3  # a in Eq. 2, in (0, 1]
    connectivity: float = 0.1  # fraction of non-zero entries of A
    ridge: tuple[float, ...] = (1e-2, 1e-1, 1.0, 1e1, 1e2, 1e3, 1e4)  # β grid (Eq. 3); chosen on validation
    washout: int = 1  # leading steps of each window: not fitted, predicted as the training mean (< seq_len)

    def __post_init__(self) -> None:
        if isinstance(self.ridge, (int, float)):  # a single β is a grid of one
            object.__setattr__(self, "ridge", (self.ridge,))
        self._coerce_field_types()
        if not self.ridge:
            raise ValueError("ReservoirParams.ridge must hold at least one β")
        if self.reservoir_size < 1:
            raise ValueError("ReservoirParams.reservoir_size must be >= 1")
        if not 0 < self.spectral_radius:
            raise ValueError("ReservoirParams.spectral_radius must be > 0")
        if not 0 < self.leak_rate <= 1:
            raise ValueError("ReservoirParams.leak_rate must be in (0, 1]")
        if not 0 < self.connectivity <= 1:
            raise ValueError("ReservoirParams.connectivity must be in (0, 1]")
        if min(self.ridge) < 0 or self.input_scaling <= 0 or self.washout < 0:
            raise ValueError("ReservoirParams: ridge >= 0, input_scaling > 0 and washout >= 0 are required")


class ReservoirDecoder(nn.Module):
    """Echo-state network: windows (batch, seq_len, neurons) -> tail (batch, seq_len, 6).

    ``A``, ``W_in`` and the fitted ``W_out`` are buffers (not parameters): nothing here is
    trained by gradients, but the forward pass is differentiable w.r.t. the inputs
    (salience maps).
    """

    closed_form = True

    def __init__(self, n_neurons: int, params: ReservoirParams, seed: int) -> None:
        super().__init__()
        self.params = params
        generator = torch.Generator().manual_seed(seed)
        n = params.reservoir_size
        recurrent = torch.rand(n, n, generator=generator) * 2 - 1
        recurrent *= torch.rand(n, n, generator=generator) < params.connectivity
        radius = torch.linalg.eigvals(recurrent.double()).abs().max().item()
        if radius > 0:
            recurrent *= params.spectral_radius / radius
        w_in = (torch.rand(n, n_neurons, generator=generator) * 2 - 1) * (params.input_scaling / n_neurons**0.5)
        self.register_buffer("recurrent", recurrent.float())  # A (N_r, N_r)
        self.register_buffer("input_weights", w_in.float())  # W_in (N_r, neurons)
        self.register_buffer("readout", torch.zeros(N_TAIL_SEGMENTS, n + 1))  # W_out (6, N_r + 1)
        self.register_buffer("ridge_strength", torch.tensor(float("nan")))  # β chosen on validation

    def states(self, windows: torch.Tensor) -> torch.Tensor:
        """Reservoir states (batch, seq_len, N_r) from the zero state (Eq. 2)."""
        a = self.params.leak_rate
        drive = windows @ self.input_weights.T  # (batch, seq_len, N_r)
        state = windows.new_zeros(windows.shape[0], self.params.reservoir_size)
        states = []
        for t in range(windows.shape[1]):
            state = (1 - a) * state + a * torch.tanh(state @ self.recurrent.T + drive[:, t])
            states.append(state)
        return torch.stack(states, dim=1)

    @staticmethod
    def _with_bias(states: torch.Tensor) -> torch.Tensor:
        return torch.cat([states, states.new_ones(*states.shape[:-1], 1)], dim=-1)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        """Tail (batch, seq_len, 6) in z-scored units; the washout steps are 0 (training mean)."""
        predicted = self._with_bias(self.states(windows)) @ self.readout.T
        fitted = (torch.arange(windows.shape[1], device=windows.device) >= self.params.washout).to(predicted.dtype)
        return predicted * fitted[None, :, None]

    def _accumulate(self, windows: WindowSet, batch_size: int) -> tuple[torch.Tensor, torch.Tensor, float, int]:
        """R Rᵀ (size, size), Y Rᵀ (6, size), tr(Y Yᵀ) and the number of steps, over the steps
        after the washout of every window, streamed in batches (float64)."""
        washout, size = self.params.washout, self.params.reservoir_size + 1
        gram = torch.zeros(size, size, dtype=torch.float64)
        cross = torch.zeros(N_TAIL_SEGMENTS, size, dtype=torch.float64)
        target_power, n_steps = 0.0, 0
        for start in range(0, len(windows), batch_size):
            inputs, targets = windows.batch(torch.arange(start, min(start + batch_size, len(windows))))
            states = self._with_bias(self.states(inputs.to(self.readout.device)))[:, washout:]
            states = states.reshape(-1, size).double().cpu()
            targets = targets[:, washout:].reshape(-1, N_TAIL_SEGMENTS).double()
            gram += states.T @ states
            cross += targets.T @ states
            target_power += float((targets**2).sum())
            n_steps += states.shape[0]
        return gram, cross, target_power, n_steps

    @torch.no_grad()
    def fit_readout(self, train: WindowSet, val: WindowSet, batch_size: int = 256) -> float:
        """Closed-form ridge readout (Eq. 3) over every training window, β chosen from the
        ``ridge`` grid by validation MSE over the steps after the washout. Returns that MSE
        (z-score units²)."""
        washout = self.params.washout
        if washout >= train.seq_len:
            raise ValueError(f"washout={washout} leaves no step of a seq_len={train.seq_len} window to fit")
        gram, cross, _, _ = self._accumulate(train, batch_size)
        val_gram, val_cross, val_power, val_steps = self._accumulate(val, batch_size)
        identity = torch.eye(gram.shape[0], dtype=torch.float64)
        best = None
        for beta in self.params.ridge:
            readout = torch.linalg.solve(gram + beta * identity, cross.T).T  # W (6, size)
            # ||Y - W R||² = tr(Y Yᵀ) - 2 tr(W R Yᵀ) + tr(W R Rᵀ Wᵀ)
            squared_error = (val_power - 2 * float((readout * val_cross).sum())
                             + float(((readout @ val_gram) * readout).sum()))
            mse = squared_error / (val_steps * N_TAIL_SEGMENTS)
            if best is None or mse < best[0]:
                best = (mse, beta, readout)
        mse, beta, readout = best
        self.readout.copy_(readout.float())
        self.ridge_strength.fill_(beta)
        return mse
