"""Reservoir computer: spectral radius, leaky update (Eq. 2), closed-form ridge readout (Eq. 3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.data.windows import WindowSet
from pipeline.models.config import ReservoirParams
from pipeline.models.reservoir import ReservoirDecoder


def test_recurrent_matrix_has_the_configured_spectral_radius():
    model = ReservoirDecoder(12, ReservoirParams(reservoir_size=80, spectral_radius=0.8), seed=0)
    assert np.abs(np.linalg.eigvals(model.recurrent.double().numpy())).max() == pytest.approx(0.8, rel=1e-5)
    assert not list(model.parameters())  # nothing is gradient-trained


def test_state_update_is_the_leaky_echo_state_equation():
    params = ReservoirParams(reservoir_size=10, leak_rate=0.4)
    model = ReservoirDecoder(3, params, seed=1)
    u = torch.randn(1, 4, 3)
    a, w, w_in = 0.4, model.recurrent.double().numpy(), model.input_weights.double().numpy()
    r = np.zeros(10)
    for t in range(4):
        r = (1 - a) * r + a * np.tanh(w @ r + w_in @ u[0, t].double().numpy())
    np.testing.assert_allclose(model.states(u)[0, -1].double().numpy(), r, rtol=1e-5, atol=1e-6)


def test_ridge_readout_equals_the_closed_form_solution():
    rng = np.random.default_rng(0)
    inputs, targets = rng.standard_normal((60, 5)), rng.standard_normal((60, 6))
    windows = WindowSet(inputs, targets, seq_len=4)
    params = ReservoirParams(reservoir_size=20, ridge=0.5, washout=1)
    model = ReservoirDecoder(5, params, seed=2)
    model.fit_readout(windows, windows, batch_size=7)  # streamed over uneven batches
    # Explicit R (states after washout, plus a bias row) and Y, then W = Y R^T (R R^T + beta I)^-1.
    x, y = windows.batch(torch.arange(len(windows)))
    states = model.states(x)[:, 1:].reshape(-1, 20).double().numpy()
    big_r = np.concatenate([states, np.ones((states.shape[0], 1))], axis=1).T
    big_y = y[:, 1:].reshape(-1, 6).double().numpy().T
    expected = big_y @ big_r.T @ np.linalg.inv(big_r @ big_r.T + 0.5 * np.eye(21))
    np.testing.assert_allclose(model.readout.double().numpy(), expected, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="washout"):
        ReservoirDecoder(5, ReservoirParams(reservoir_size=20, washout=4), seed=2).fit_readout(windows, windows)


def test_washout_is_the_same_in_fit_prediction_and_validation_and_beta_is_chosen_on_validation():
    rng = np.random.default_rng(1)
    inputs = rng.standard_normal((120, 5))
    signal = np.tanh(inputs[:, :1] + np.roll(inputs[:, 1:2], 1))
    targets = np.repeat(signal, 6, axis=1) + 0.3 * rng.standard_normal((120, 6))
    train, val = WindowSet(inputs[:80], targets[:80], seq_len=5), WindowSet(inputs[80:], targets[80:], seq_len=5)
    grid = (1e-3, 1.0, 1e3)
    model = ReservoirDecoder(5, ReservoirParams(reservoir_size=30, ridge=grid, washout=2), seed=3)
    chosen_mse = model.fit_readout(train, val, batch_size=16)
    x, y = val.batch(torch.arange(len(val)))
    predicted = model(x)
    # prediction: the washout steps are the training mean (0 in z-units), not an unfitted readout
    assert torch.all(predicted[:, :2] == 0) and torch.all(predicted[:, 2:] != 0)
    # the validation score is the MSE of exactly what is predicted after the washout
    assert chosen_mse == pytest.approx(float(((predicted[:, 2:] - y[:, 2:]) ** 2).mean()), rel=1e-4)
    # beta: the grid value with the lowest validation MSE when each is fitted alone
    scores = {}
    for beta in grid:
        single = ReservoirDecoder(5, ReservoirParams(reservoir_size=30, ridge=beta, washout=2), seed=3)
        scores[beta] = single.fit_readout(train, val, batch_size=16)
    assert float(model.ridge_strength) == min(scores, key=scores.get)
    assert chosen_mse == pytest.approx(min(scores.values()))


def test_bad_parameters_are_rejected():
    for bad in ({"leak_rate": 0}, {"connectivity": 1.5}, {"reservoir_size": 0}, {"ridge": -1}):
        with pytest.raises(ValueError):
            ReservoirParams(**bad)
