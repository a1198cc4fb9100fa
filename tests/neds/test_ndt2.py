"""NDT2 baseline: patch shapes, masking, and a tiny session where it beats chance."""

from dataclasses import replace

import numpy as np
import torch

from pipeline.neds.config import Ndt2Params
from pipeline.neds.evaluate import chance_metrics
from pipeline.neds.ndt2 import Ndt2, evaluate_ndt2, masked_poisson_nll, random_token_mask, train_ndt2

TINY = Ndt2Params(patch_size=8, embed_dim=32, n_heads=2, n_layers=1, decoder_layers=1, mlp_dim=64,
                  pretrain_epochs=3, decode_epochs=30, batch_size=16, learning_rate=0.003)


def test_patches_pad_neurons_and_shapes():
    model = Ndt2(TINY, n_neurons=19, n_bins=5)
    counts = torch.arange(2 * 5 * 19, dtype=torch.float32).reshape(2, 5, 19)
    patches = model.patches(counts)
    assert patches.shape == (2, 5, 3, 8)
    assert torch.equal(patches.reshape(2, 5, 24)[..., :19], counts) and patches[..., 2, 3:].eq(0).all()
    hidden = model.encode(patches)
    assert hidden.shape == (2, 5, 3, 32) and model.reconstruct(hidden).shape == (2, 5, 3, 8)
    outputs = model.decode(hidden)
    assert outputs["wheel_speed"].shape == (2, 5) and outputs["block"].shape == (2, 3)


def test_mask_ratio_is_exact_and_masked_inputs_are_hidden():
    mask = random_token_mask((4, 10, 3), 0.2, torch.Generator().manual_seed(0))
    assert mask.sum(dim=(1, 2)).tolist() == [6, 6, 6, 6]
    model = Ndt2(TINY, n_neurons=19, n_bins=10).eval()
    patches = model.patches(torch.poisson(torch.ones(4, 10, 19)))
    loss = masked_poisson_nll(model, patches, mask)
    with torch.no_grad():
        hidden = model.encode(patches, mask)
        rates = model.reconstruct(hidden)
    assert torch.isfinite(loss)
    # a masked token's input is the mask token: changing its counts leaves the prediction unchanged
    perturbed = patches.clone()
    perturbed[mask] += 7
    with torch.no_grad():
        assert torch.allclose(model.reconstruct(model.encode(perturbed, mask)), rates, atol=1e-5)


def test_ndt2_beats_chance_on_a_tiny_session(sessions):
    data = sessions["sesA"]
    model, summary = train_ndt2(data, replace(TINY, patch_size=32), seed=1, device=torch.device("cpu"))
    metrics, chance = evaluate_ndt2(model, data), chance_metrics(data)
    assert summary["decoding"]["best_epoch"] >= 0
    # 35 test trials; chance of balanced accuracy is 0.5 (majority class: 0.57 plain accuracy)
    assert metrics["choice_balanced_accuracy"] > 0.6 and metrics["choice_accuracy"] > chance["choice_accuracy"]
    assert metrics["wheel_speed_r2"] > max(chance["wheel_speed_r2"], 0) + 0.1
    assert np.isfinite(summary["pretraining"]["best_val_score"])
