"""In-memory toy sessions for the transformer-baseline unit tests (no file, no generator):
Poisson counts whose rates carry the behaviours, so a model can fit them in a few steps."""

from __future__ import annotations

import numpy as np

from pipeline.neds.data import SessionData


def toy_session(session_id: str, n_neurons: int = 6, n_trials: int = 24, n_bins: int = 10, seed: int = 0,
                bin_size_s: float = 0.02) -> SessionData:
    """``n_trials`` trials (16 train / 4 val / 4 test when 24) of ``n_bins`` bins; neuron 0
    fires with the wheel speed, neuron 1 with the choice, neuron 2 with the block."""
    rng = np.random.default_rng(seed)
    wheel = rng.standard_normal((n_trials, n_bins)).astype(np.float32)
    whisker = (0.5 * wheel + rng.standard_normal((n_trials, n_bins))).astype(np.float32)
    choice, block = rng.integers(0, 2, n_trials), rng.integers(0, 3, n_trials)
    rates = np.full((n_trials, n_bins, n_neurons), 0.3)
    rates[..., 0] = np.exp(wheel)
    rates[..., 1] += 2.0 * choice[:, None]
    rates[..., 2] += block[:, None]
    order = rng.permutation(n_trials)
    n_val = n_test = max(1, n_trials // 6)
    splits = {"train": order[n_val + n_test:], "val": order[:n_val], "test": order[n_val:n_val + n_test]}
    return SessionData(session_id=session_id, path=f"<toy {session_id}>",
                       spikes=rng.poisson(rates).astype(np.float32), wheel_speed=wheel, whisker_motion_energy=whisker,
                       choice=choice.astype(np.int64), block=block.astype(np.int64),
                       regions=np.array(["PO"] * n_neurons), splits=splits,
                       behavior_scale={"wheel_speed": (0.0, 1.0), "whisker_motion_energy": (0.0, 1.0)},
                       bin_size_s=bin_size_s)
