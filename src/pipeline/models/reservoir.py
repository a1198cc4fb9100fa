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
the fit streams over any number of windows.

Each window is run from the zero state (the model sees the same ``seq_len`` frames as every
other decoder); ``washout`` leading steps of each window are excluded from the readout fit
because their states still carry the zero initial condition.
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
    ridge: float = 1e-2  # β in Eq. 3
    washout: int = 1  # leading steps of each window left out of the readout fit (< seq_len)

    def __post_init__(self) -> None:
        self._coerce_field_types()
        if self.reservoir_size < 1:
            raise ValueError("ReservoirParams.reservoir_size must be >= 1")
        if not 0 < self.spectral_radius:
            raise ValueError("ReservoirParams.spectral_radius must be > 0")
        if not 0 < self.leak_rate <= 1:
            raise ValueError("ReservoirParams.leak_rate must be in (0, 1]")
        if not 0 < self.connectivity <= 1:
            raise ValueError("ReservoirParams.connectivity must be in (0, 1]")
        if self.ridge < 0 or self.input_scaling <= 0 or self.washout < 0:
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
        return self._with_bias(self.states(windows)) @ self.readout.T

    @torch.no_grad()
    def fit_readout(self, train: WindowSet, batch_size: int = 256) -> None:
        """Closed-form ridge readout (Eq. 3) over every training window, streamed in batches."""
        washout = self.params.washout
        if washout >= train.seq_len:
            raise ValueError(f"washout={washout} leaves no step of a seq_len={train.seq_len} window to fit")
        size = self.params.reservoir_size + 1
        gram = torch.zeros(size, size, dtype=torch.float64)  # R Rᵀ
        cross = torch.zeros(N_TAIL_SEGMENTS, size, dtype=torch.float64)  # Y Rᵀ
        for start in range(0, len(train), batch_size):
            inputs, targets = train.batch(torch.arange(start, min(start + batch_size, len(train))))
            states = self._with_bias(self.states(inputs.to(self.readout.device)))[:, washout:]
            states = states.reshape(-1, size).double().cpu()
            gram += states.T @ states
            cross += targets[:, washout:].reshape(-1, N_TAIL_SEGMENTS).double().T @ states
        regularised = gram + self.params.ridge * torch.eye(size, dtype=torch.float64)
        self.readout.copy_(torch.linalg.solve(regularised, cross.T).T.float())
