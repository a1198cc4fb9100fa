"""Resampling continuous signals to bins, checked against direct references, including the
REAL wheel recordings (1 kHz encoder counts and irregular radians)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from pipeline.ibl.signals import bin_mean_velocity, bin_means

from helpers import require_real_ibl_fixtures


def test_bin_means_is_exact_for_piecewise_linear_signals():
    t = np.array([0.0, 1.0, 3.0, 4.0])
    x = np.array([0.0, 2.0, 2.0, 6.0])
    edges = np.array([[-1.0, 0.0, 0.5, 1.0, 2.5, 4.0, 5.0]])
    # held constant outside the samples; linear between them
    expected = [0.0, 0.5, 1.5, 2.0, (2.0 * 0.5 + 0.5 * (2 + 6) * 1.0) / 1.5, 6.0]
    np.testing.assert_allclose(bin_means(t, x, edges)[0], expected)


def test_bin_means_of_a_dense_signal_equals_the_sample_average():
    t = np.arange(0, 10, 0.001)
    x = np.sin(t)
    edges = np.arange(1.0, 9.0, 0.02)
    reference = [x[(t >= a) & (t < b)].mean() for a, b in zip(edges[:-1], edges[1:])]
    np.testing.assert_allclose(bin_means(t, x, edges), reference, atol=1e-3)  # left Riemann sum vs integral


def finite_difference_speed(t, position, edges, rate_hz=1000.0):
    """Reference: resample the position on a uniform 1 kHz grid starting at each bin's
    left edge, take finite differences, average them over the bin, take |.|."""
    speeds = []
    for a, b in zip(edges[:-1], edges[1:]):
        grid = a + np.arange(int(round((b - a) * rate_hz)) + 1) / rate_hz
        samples = np.interp(grid, t, position)
        speeds.append(abs(np.mean(np.diff(samples) * rate_hz)))
    return np.array(speeds)


@pytest.mark.parametrize(
    "folder, to_rad",
    [("wheel_encoder_1khz", 2 * math.pi / 4096), ("wheel_radians_irregular", 1.0)],
)
def test_wheel_speed_on_real_recordings_matches_finite_differences(folder, to_rad):
    fixtures = require_real_ibl_fixtures()
    t = np.load(fixtures / folder / "wheel.timestamps.npy")
    position = np.load(fixtures / folder / "wheel.position.npy") * to_rad
    moves = np.load(fixtures / folder / "wheelMoves.intervals.npy")
    # bins over the first movements (where the wheel turns) and a quiet stretch
    edges = np.concatenate([np.arange(start - 0.1, end + 0.1, 0.02) for start, end in moves[:5]])
    edges = np.unique(np.round(edges, 9))
    speed = np.abs(bin_mean_velocity(t, position, edges))
    reference = finite_difference_speed(t, position, edges)
    np.testing.assert_allclose(speed, reference, rtol=1e-6, atol=1e-6)
    assert speed.max() > 0.5  # the movements are there (rad/s)
    assert speed.max() < 30.0  # and in mouse units, not encoder counts per second
