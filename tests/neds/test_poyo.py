"""POYO+ baseline: tokens, rotary time embedding, padding / unit masking, training steps,
unit identification of a new session, and the pretrained-model file."""

from dataclasses import replace

import numpy as np
import pytest
import torch

from neds_toy_sessions import toy_session
from pipeline.neds.config import PoyoMultiSessionParams, PoyoParams
from pipeline.neds.poyo import (
    END,
    SPIKE,
    START,
    Poyo,
    RotaryTime,
    finetune_poyo,
    load_poyo,
    multitask_loss,
    pretrain_poyo,
    rotate,
    save_poyo,
    spike_tokens,
    train_poyo,
)

TINY = PoyoParams(embed_dim=16, head_dim=8, n_heads=2, n_layers=1, latent_step_s=0.05, latents_per_step=2,
                  ffn_dropout=0.0, linear_dropout=0.0, attention_dropout=0.0, unit_dropout=0.0, epochs=2,
                  batch_size=8, learning_rate=0.003)


def test_spike_tokens_are_one_per_spike_plus_start_and_end_per_unit():
    counts = np.zeros((2, 4, 3), np.int64)
    counts[0, 1, 2] = 2  # two spikes of unit 2 in bin 1
    counts[1, 3, 0] = 1
    tokens = spike_tokens(counts, bin_size_s=0.5, max_spikes=10, seed=0)
    assert tokens["unit"].shape == (2, 2 * 3 + 2)
    first = {k: v[0] for k, v in tokens.items()}
    assert first["valid"].all() and tokens["valid"][1].sum() == 7
    assert first["kind"].tolist() == [START] * 3 + [END] * 3 + [SPIKE] * 2
    assert first["time"][:3].eq(0).all() and first["time"][3:6].eq(2.0).all()  # 4 bins x 0.5 s
    assert first["unit"][6:].tolist() == [2, 2] and first["time"][6:].tolist() == [0.75, 0.75]  # bin centre
    bounded = spike_tokens(np.full((1, 4, 3), 5), bin_size_s=0.5, max_spikes=7, seed=0)
    assert bounded["valid"].sum() == 6 + 7  # 60 spikes, 7 kept


def test_rotary_attention_scores_depend_only_on_time_differences():
    rotary = RotaryTime(head_dim=8, min_period_s=0.04)
    q, k = torch.randn(1, 1, 1, 8), torch.randn(1, 1, 1, 8)

    def score(t_q, t_k):
        return (rotate(q, rotary(torch.tensor([[t_q]]))) * rotate(k, rotary(torch.tensor([[t_k]])))).sum()

    assert torch.allclose(score(0.3, 0.1), score(1.3, 1.1), atol=1e-5)
    assert not torch.allclose(score(0.3, 0.1), score(0.3, 0.25), atol=1e-3)
    # half of the head's dimensions rotate, the other half keep their values at any time
    moved = rotate(q, rotary(torch.tensor([[0.7]])))
    assert torch.equal(moved[..., 4:], q[..., 4:]) and torch.allclose(moved.norm(), q.norm())


def test_padding_and_dropped_units_do_not_change_the_outputs():
    model = Poyo(TINY, {"a": 5}, n_bins=10, bin_size_s=0.02).eval()
    data = toy_session("a", n_neurons=5)
    tokens = spike_tokens(data.spikes[:3].astype(np.int64), 0.02, 1000, 0)
    session = torch.zeros(3, dtype=torch.long)
    with torch.no_grad():
        out = model(tokens["unit"], tokens["time"], tokens["kind"], tokens["valid"], session)
        shifted = {**tokens, "unit": torch.where(tokens["valid"], tokens["unit"], 4),
                   "time": torch.where(tokens["valid"], tokens["time"], 0.13)}
        again = model(shifted["unit"], shifted["time"], shifted["kind"], shifted["valid"], session)
    assert out["wheel_speed"].shape == (3, 10) and out["choice"].shape == (3, 2) and out["block"].shape == (3, 3)
    assert all(torch.allclose(out[k], again[k], atol=1e-5) for k in out)


def test_a_few_steps_fit_the_training_batch():
    data = toy_session("a")
    torch.manual_seed(0)
    model = Poyo(replace(TINY, latent_step_s=data.bin_size_s), {"a": data.n_neurons}, data.n_bins, data.bin_size_s)
    tokens = spike_tokens(data.spikes.astype(np.int64), data.bin_size_s, 1000, 0)
    batch = {**tokens, "session": torch.zeros(len(data.spikes), dtype=torch.long),
             **{k: torch.as_tensor(v) for k, v in data.arrays("train").items() if k != "spikes"}}
    batch = {k: v[data.splits["train"]] if k in tokens or k == "session" else v for k, v in batch.items()}
    optimizer = torch.optim.AdamW(model.parameters(), lr=0.003)
    losses = []
    for _ in range(100):
        loss = multitask_loss(model, batch, torch.Generator().manual_seed(0))
        optimizer.zero_grad()
        loss.backward()
        assert all(p.grad is not None for p in model.parameters())  # every weight is on the loss's path
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_unit_identification_trains_only_the_new_session_embeddings(tmp_path):
    params = PoyoMultiSessionParams(**{**TINY.to_dict(), "epochs": 1, "identify_epochs": 2, "finetune_epochs": 0})
    sessions = {"a": toy_session("a", seed=1), "b": toy_session("b", n_neurons=4, seed=2)}
    model, summary = pretrain_poyo(sessions, params, seed=0, device=torch.device("cpu"))
    assert summary["pretraining"]["best_epoch"] == 0 and model.unit_offset("b") == 6
    save_poyo(tmp_path / "pretrained.pt", model, {"sessions": ["a", "b"]})
    model = load_poyo(tmp_path / "pretrained.pt", params, torch.device("cpu"))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    new = toy_session("c", n_neurons=7, seed=3)
    summary = finetune_poyo(model, new, seed=0, device=torch.device("cpu"))
    after = model.state_dict()
    assert set(summary) >= {"identification"} and "finetuning" not in summary
    assert all(torch.equal(before[k], after[k]) for k in before)  # pretrained weights untouched
    assert after["unit_embed.c"].shape == (7, 16) and model.unit_offset("c") == 10
    with pytest.raises(ValueError, match="not held out"):
        finetune_poyo(model, sessions["a"], seed=0, device=torch.device("cpu"))
    other = PoyoMultiSessionParams(**{**params.to_dict(), "n_layers": 2})
    with pytest.raises(ValueError, match="pretrained with other n_layers"):
        load_poyo(tmp_path / "pretrained.pt", other, torch.device("cpu"))


def test_single_session_training_keeps_a_finite_best_epoch():
    model, summary = train_poyo(toy_session("a"), TINY, seed=0, device=torch.device("cpu"))
    assert 0 <= summary["training"]["best_epoch"] < TINY.epochs and np.isfinite(summary["training"]["best_val_score"])
    assert summary["n_parameters"] == sum(p.numel() for p in model.parameters())
