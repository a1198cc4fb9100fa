"""Input-gradient salience: exact on a linear model; on a synthetic fish the planted driver
neurons rank high (precision@k >= 3x chance) and left/right drivers have opposite signs."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import torch
from torch import nn

from pipeline.data.windows import WindowSet
from pipeline.models.catalog import ModelSpec
from pipeline.salience.gradients import input_gradient_salience
from pipeline.salience.ranking import precision_at_k, top_k
from pipeline.salience.job import run_salience_job
from pipeline.train.config import TrainingParams
from pipeline.train.job import DecodingJob, load_trained_decoder, run_decoding_job


class PerFrameLinear(nn.Module):
    """ŷ[w, q, k] = Σ_n A[k, n] x[w, q, n]: its salience is known in closed form."""

    def __init__(self, weights: torch.Tensor) -> None:
        super().__init__()
        self.weights = nn.Parameter(weights)

    def forward(self, windows):
        return windows @ self.weights.T


def test_salience_of_a_linear_model_is_its_weights_times_the_tail_scale():
    rng = np.random.default_rng(0)
    a = torch.tensor(rng.standard_normal((6, 5)), dtype=torch.float32)
    std = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6], dtype=np.float32)
    windows = WindowSet(rng.standard_normal((20, 5)), rng.standard_normal((20, 6)), seq_len=4)
    maps = input_gradient_salience(PerFrameLinear(a), windows, std, batch_size=3)
    expected_by_segment = np.abs(a.numpy()) * std[:, None]  # (6, neurons), the same at every frame
    np.testing.assert_allclose(maps.global_by_segment, expected_by_segment, rtol=1e-5)
    np.testing.assert_allclose(maps.moment, np.tile(expected_by_segment.sum(0), (20, 1)), rtol=1e-5)
    np.testing.assert_allclose(maps.global_salience, expected_by_segment.sum(0), rtol=1e-5)
    np.testing.assert_allclose(maps.signed_tail_sum, (a.numpy() * std[:, None]).sum(0), rtol=1e-4, atol=1e-6)


def test_moment_salience_averages_only_the_windows_containing_a_frame():
    """A model reading only the last step of each window: frame t is salient only through
    the window ending at t, so M(n, t) = |w| / (#windows containing t)."""

    class LastStep(nn.Module):
        def forward(self, windows):
            out = torch.zeros(*windows.shape[:2], 6)
            out[:, -1, :] = windows[:, -1, :1].expand(-1, 6)
            return out

    windows = WindowSet(np.ones((10, 2)), np.zeros((10, 6)), seq_len=3)
    maps = input_gradient_salience(LastStep(), windows, np.ones(6, dtype=np.float32))
    counts = np.array([1, 2, 3, 3, 3, 3, 3, 3, 2, 1])  # windows containing each frame
    ends_a_window = np.arange(10) >= 2
    np.testing.assert_allclose(maps.moment[:, 0], 6 * ends_a_window / counts)
    assert np.all(maps.moment[:, 1] == 0)


def test_top_k_and_precision():
    ranked = top_k(np.array([0.1, 0.9, 0.5, 0.9]), 3)
    assert ranked.tolist() == [1, 3, 2]
    assert precision_at_k(ranked, np.array([False, True, False, False]), 3) == (pytest.approx(1 / 3), 0.25)


def test_planted_drivers_rank_high_on_a_synthetic_fish(salience_fish, tmp_path):
    torch.set_num_threads(1)
    neural, behavior, truth = salience_fish
    job = DecodingJob(experiment="test", fish="synthetic", model="lstm", weights="untrained", embedding="linear",
                      seq_len=10, run=0, seed=11, split_fractions=(0.7, 0.15, 0.15))
    run_decoding_job(neural, behavior, job, ModelSpec(kind="lstm", architecture={"hidden_size": 32}),
                     TrainingParams(epochs=8, batch_size=16, learning_rate=1e-3), {}, checkpoint_dir=tmp_path / "ck",
                     model_path=tmp_path / "model.pt", predictions_path=tmp_path / "p.h5",
                     metrics_path=tmp_path / "m.json", device="cpu")
    model, checkpoint = load_trained_decoder(tmp_path / "model.pt")
    assert checkpoint["job"]["model"] == "lstm" and not model.training
    summary = run_salience_job(tmp_path / "model.pt", neural, behavior, tmp_path / "salience.h5", split="all", k=8,
                               truth_path=truth, device="cpu")
    # 16 of 80 neurons are drivers (chance 0.2); precision@8 of Eq. 21 over the whole recording.
    assert summary["precision_at_k"] >= 3 * summary["chance_at_k"]
    # App. A.13: replacing the top-k salient neurons' activity hurts far more than replacing k random ones
    rise_top = summary["ablation_rmse_top_k"] - summary["ablation_rmse_intact"]
    rise_random = summary["ablation_rmse_random_k"] - summary["ablation_rmse_intact"]
    assert rise_top >= 2 * rise_random and rise_top > 0, summary
    with h5py.File(tmp_path / "salience.h5", "r") as f:
        side = f["neurons/driver_side"].asstr()[()]
        signed = f["salience/signed_tail_sum"][()]
        n_frames = f["frames/index"].shape[0]
        assert f["salience/moment"].shape == (n_frames, side.size) and n_frames == 800  # the whole recording
        assert f["frames/predicted_tail_sum_rad"].shape == (n_frames,)
        # App. A.13 PCA: replacing the salient neurons moves the representation more than random ones
        intact, top, random_k = (f[f"pca/{name}"][()] for name in ("intact", "top_k_replaced", "random_k_replaced"))
        assert intact.shape == (summary_windows := top.shape[0], 2) and summary_windows > 0
        assert np.linalg.norm(top - intact, axis=1).mean() > np.linalg.norm(random_k - intact, axis=1).mean()
        assert f["salience/global"].attrs["units"] == "rad per z-unit"
    # Left and right drivers push the tail to opposite sides (paper Fig. 5 asymmetry).
    assert np.sign(signed[side == "left"].mean()) == -np.sign(signed[side == "right"].mean())
    assert (side == "left").sum() == (side == "right").sum() == 8
