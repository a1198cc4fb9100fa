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


import torch
from torch import nn

from pipeline.data.windows import N_TAIL_SEGMENTS, WindowSet
from pipeline.models.config import ReservoirParams


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
