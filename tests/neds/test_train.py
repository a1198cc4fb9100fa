"""Training mechanics: exact resumption after SIGTERM, multi-session pretraining and
fine-tuning with a new session adapter, checkpoint fingerprints, mixed-session batches of the
configured size, and non-finite losses / validation epochs that are skipped, not fatal."""

import dataclasses

import numpy as np
import pytest
import torch

from pipeline.neds.config import MaskingParams, ModelParams, TrainingParams
from pipeline.neds.evaluate import evaluate_model
from pipeline.neds.train import build_model, load_model, model_for_finetuning, save_model, train_model
from pipeline.train.checkpoint import TrainingInterrupted

MICRO = ModelParams(embed_dim=8, n_heads=2, n_layers=1, mlp_dim=8)
SHORT = TrainingParams(epochs=2, batch_size=16)
CPU = torch.device("cpu")


def small(data, n_train=32, n_val=4):
    """The session with fewer training / validation trials (fast)."""
    return dataclasses.replace(data, splits={**data.splits, "train": data.splits["train"][:n_train],
                                             "val": data.splits["val"][:n_val]})


def _train(data, checkpoint_dir, **kwargs):
    model = build_model(MICRO, {data.session_id: data}, seed=9)
    summary = train_model(model, {data.session_id: data}, MaskingParams().schemes, MaskingParams(), SHORT, seed=9,
                          checkpoint_dir=checkpoint_dir, device=CPU, progress=False, **kwargs)
    return model, summary


def test_interrupted_training_resumes_to_the_same_weights(sessions, tmp_path, monkeypatch):
    data = small(sessions["sesA"])
    reference, _ = _train(data, tmp_path / "uninterrupted")

    import pipeline.neds.train as train_module

    class StopAfterThreeBatches(train_module.StopSignal):
        polls = 0

        @property
        def requested(self):
            StopAfterThreeBatches.polls += 1
            return StopAfterThreeBatches.polls == 4  # SIGTERM arrives before the 4th batch (mid epoch 1)

        @requested.setter
        def requested(self, value):
            pass

    monkeypatch.setattr(train_module, "StopSignal", StopAfterThreeBatches)
    with pytest.raises(TrainingInterrupted, match="epoch 1, batch 1"):
        _train(data, tmp_path / "interrupted")
    monkeypatch.undo()
    resumed, summary = _train(data, tmp_path / "interrupted")
    assert summary["epochs"] == 2
    for name, value in reference.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[name]), name


def test_a_checkpoint_of_another_configuration_is_not_resumed(sessions, tmp_path):
    data = small(sessions["sesA"])
    _train(data, tmp_path, fingerprint="config-1")
    _, summary = _train(data, tmp_path, fingerprint="config-2")  # starts over: runs both epochs
    assert [h["epoch"] for h in summary["history"]] == [0, 1]


def test_pretraining_then_finetuning_on_a_new_session(sessions, tmp_path):
    pretrain = {sid: small(sessions[sid]) for sid in ("sesA", "sesB")}
    model = build_model(MICRO, pretrain, seed=1)
    summary = train_model(model, pretrain, MaskingParams().schemes, MaskingParams(), SHORT, seed=1,
                          checkpoint_dir=tmp_path / "pre", device=CPU, progress=False)
    assert summary["epochs"] == 2 and set(model.adapters) == {"sesA", "sesB"}
    save_model(tmp_path / "pretrained.pt", model)

    heldout = dataclasses.replace(small(sessions["sesB"]), session_id="sesC")
    finetuned = model_for_finetuning(tmp_path / "pretrained.pt", heldout, seed=2)
    assert list(finetuned.adapters) == ["sesC"]
    pretrained_state = model.state_dict()
    for name, value in finetuned.state_dict().items():
        if not name.startswith("adapters."):
            assert torch.equal(value, pretrained_state[name]), name  # shared weights carried over
    assert not torch.equal(finetuned.adapters["sesC"].neural_in.weight, model.adapters["sesB"].neural_in.weight)

    train_model(finetuned, {"sesC": heldout}, MaskingParams().schemes, MaskingParams(), SHORT, seed=2,
                checkpoint_dir=tmp_path / "fine", device=CPU, progress=False)
    metrics = evaluate_model(finetuned, "sesC", heldout, ("encoding", "decoding"))
    assert {"bps", "bps_choice", "wheel_speed_r2", "block_accuracy"} <= set(metrics)
    reloaded, record = load_model(tmp_path / "pretrained.pt")
    assert record["architecture"]["sessions"] == {"sesA": sessions["sesA"].n_neurons,
                                                  "sesB": sessions["sesB"].n_neurons}


def test_batches_mix_sessions_and_have_the_configured_size(sessions):
    from pipeline.neds.train import epoch_batches

    both = {sid: small(sessions[sid], n_train=30) for sid in ("sesA", "sesB")}
    batches = epoch_batches(both, 16, seed=4, epoch=0)
    assert [sum(len(rows) for _, rows in batch) for batch in batches] == [16, 16, 16, 12]
    assert any(len(batch) == 2 for batch in batches)  # a batch draws from both sessions
    seen = {sid: sorted(int(r) for batch in batches for s, rows in batch if s == sid for r in rows) for sid in both}
    assert seen == {"sesA": list(range(30)), "sesB": list(range(30))}  # every trial once per epoch
    assert all(np.array_equal(a[1], b[1]) for x, y in zip(batches, epoch_batches(both, 16, 4, 0)) for a, b in zip(x, y))


def test_a_non_finite_validation_epoch_is_logged_and_skipped(sessions, tmp_path, monkeypatch, caplog):
    import pipeline.neds.train as train_module

    real = train_module.evaluate_model
    calls = []

    def nan_in_the_first_epoch(*args, **kwargs):
        calls.append(1)
        metrics = real(*args, **kwargs)
        return {k: float("nan") for k in metrics} if len(calls) == 1 else metrics

    monkeypatch.setattr(train_module, "evaluate_model", nan_in_the_first_epoch)
    _, summary = _train(small(sessions["sesA"]), tmp_path)
    assert summary["epochs"] == 2 and summary["best_epoch"] == 1
    assert summary["history"][0]["val_score"] is None and "epoch skipped for selection" in caplog.text
    assert set(summary["task_shortfall"]) == {"encoding", "decoding"}


def test_a_non_finite_prediction_is_skipped_and_a_job_without_usable_epoch_fails(sessions, tmp_path, monkeypatch):
    import pipeline.neds.train as train_module
    from pipeline.neds.metrics import NonFinitePrediction

    def diverged(*args, **kwargs):
        raise NonFinitePrediction("predicted rates must be finite")

    monkeypatch.setattr(train_module, "evaluate_model", diverged)
    with pytest.raises(RuntimeError, match="no epoch of 2 had finite validation scores"):
        _train(small(sessions["sesA"]), tmp_path)


def test_a_non_finite_loss_skips_the_batch(sessions, tmp_path, monkeypatch):
    import pipeline.neds.train as train_module

    real = train_module.masked_losses
    calls = []

    def nan_first_batch(*args, **kwargs):
        calls.append(1)
        losses = real(*args, **kwargs)
        return {k: v * float("nan") for k, v in losses.items()} if len(calls) == 1 else losses

    monkeypatch.setattr(train_module, "masked_losses", nan_first_batch)
    model, summary = _train(small(sessions["sesA"]), tmp_path)
    assert summary["skipped_batches"] == 1
    assert all(torch.isfinite(p).all() for p in model.parameters())


def test_adapter_only_epochs_freeze_the_shared_weights_then_train_all(sessions, tmp_path):
    """Fine-tuning warm-up: during the first ``adapter_only_epochs`` every training step sees
    the shared weights unchanged while the session adapter moves; afterwards both move."""
    data = small(sessions["sesA"])
    model = build_model(MICRO, {data.session_id: data}, seed=9)
    shared, adapter = model.blocks[0].mlp[0].weight, model.adapters[data.session_id].neural_out.weight
    seen = []  # (shared weight, adapter weight) at every training forward, in order
    model.final_norm.register_forward_hook(
        lambda module, args, out: seen.append((shared.detach().clone(), adapter.detach().clone()))
        if model.training else None)
    steps = -(-data.splits["train"].size // SHORT.batch_size)
    train_model(model, {data.session_id: data}, MaskingParams().schemes, MaskingParams(),
                dataclasses.replace(SHORT, adapter_only_epochs=1), seed=9, checkpoint_dir=tmp_path, device=CPU,
                progress=False)
    first_epoch, second_epoch = seen[:steps], seen[steps:]
    assert len(second_epoch) == steps
    assert all(torch.equal(s, first_epoch[0][0]) for s, _ in first_epoch)  # frozen in epoch 0
    assert not torch.equal(first_epoch[-1][1], first_epoch[0][1])  # the adapter trained
    assert not torch.equal(second_epoch[-1][0], second_epoch[0][0])  # shared weights train in epoch 1
    assert all(p.requires_grad for p in model.parameters())


def test_adapter_only_epochs_must_leave_epochs_to_train_everything():
    with pytest.raises(ValueError, match="adapter_only_epochs"):
        TrainingParams(epochs=3, adapter_only_epochs=3)


def test_windowed_score_averages_the_last_epochs_and_needs_a_finite_last_epoch():
    from pipeline.neds.train import windowed_score

    history = [{"val_score": v} for v in (0.1, 0.9, None, 0.3)]
    assert windowed_score(history, 1) == pytest.approx(0.3)
    assert windowed_score(history, 3) == pytest.approx(0.6)  # 0.9 and 0.3; the NaN epoch is left out
    assert np.isnan(windowed_score(history[:3], 2))  # the last epoch's weights are unusable


def test_the_kept_epoch_maximises_the_running_mean_not_one_lucky_epoch(sessions, tmp_path, monkeypatch):
    """A single noisy validation peak (epoch 1) is not kept: with ``selection_window`` 2 the
    epoch whose two-epoch mean is best (the last) is; with window 1 the peak is."""
    import pipeline.neds.train as train_module

    decoding = iter([0.1, 0.9, 0.1, 0.6, 0.6] * 2)

    def scripted(model, sessions, tasks):
        return {}, {"encoding": 0.0, "decoding": next(decoding)}

    monkeypatch.setattr(train_module, "_validation_scores", scripted)
    data = small(sessions["sesA"], n_train=8, n_val=2)
    kept = {}
    for window in (1, 2):
        model = build_model(MICRO, {data.session_id: data}, seed=9)
        params = dataclasses.replace(SHORT, epochs=5, selection_window=window)
        summary = train_model(model, {data.session_id: data}, MaskingParams().schemes, MaskingParams(), params, seed=9,
                              checkpoint_dir=tmp_path / str(window), device=CPU, progress=False)
        kept[window] = summary["best_epoch"]
    assert kept == {1: 1, 2: 4}
    assert summary["best_val_score"] == pytest.approx(0.3)  # mean of (0 + 0.6) / 2 over epochs 3 and 4


def test_selection_window_must_be_positive():
    with pytest.raises(ValueError, match="selection_window"):
        TrainingParams(selection_window=0)


@pytest.mark.parametrize("schemes, expected", [
    (("neural",), {"spikes": 1.0, "wheel_speed": 0.0, "whisker_motion_energy": 0.0, "choice": 0.0, "block": 0.0}),
    (("behavior",), {"spikes": 0.0, "wheel_speed": 1.0, "whisker_motion_energy": 1.0, "choice": 1.0, "block": 1.0}),
])
def test_history_records_which_heads_each_epoch_trained(sessions, tmp_path, schemes, expected):
    """``target_fraction``: the share of the epoch's trials in which each head had targets
    (the multimodal mix trains choice in only about a third of them); a modality without
    targets has no training loss."""
    data = small(sessions["sesA"])
    model = build_model(MICRO, {data.session_id: data}, seed=9)
    summary = train_model(model, {data.session_id: data}, schemes, MaskingParams(schemes=schemes),
                          dataclasses.replace(SHORT, epochs=1), seed=9, checkpoint_dir=tmp_path, device=CPU,
                          progress=False)
    epoch = summary["history"][0]
    assert epoch["target_fraction"] == expected
    assert set(epoch["train_modality_losses"]) == {name for name, share in expected.items() if share > 0}


def test_training_balances_the_spike_gradient_with_the_configured_ratio(sessions, tmp_path, monkeypatch):
    """Every batch's objective is balanced_objective(per-modality losses, the transformer's
    output, its last shared layer, training.spike_gradient_ratio), also in adapter-only
    epochs (the shared layer's gradient is computed, then dropped); the history reports each
    epoch's mean spike weight."""
    import pipeline.neds.train as train_module

    real, calls = train_module.balanced_objective, []

    def recording(losses, hidden, shared_weight, spike_gradient_ratio):
        objective, weight = real(losses, hidden, shared_weight, spike_gradient_ratio)
        calls.append((shared_weight is model.last_shared_weight(), spike_gradient_ratio, float(weight)))
        return objective, weight

    monkeypatch.setattr(train_module, "balanced_objective", recording)
    data = small(sessions["sesA"])
    model = build_model(MICRO, {data.session_id: data}, seed=9)
    summary = train_model(model, {data.session_id: data}, MaskingParams().schemes, MaskingParams(),
                          dataclasses.replace(SHORT, epochs=2, adapter_only_epochs=1, spike_gradient_ratio=0.5),
                          seed=9, checkpoint_dir=tmp_path, device=CPU, progress=False)
    assert calls and {(is_last, ratio) for is_last, ratio, _ in calls} == {(True, 0.5)}
    steps = len(calls) // 2
    for epoch, record in enumerate(summary["history"]):
        weights = [w for _, _, w in calls[epoch * steps:(epoch + 1) * steps]]
        assert record["spike_gradient_weight"] == pytest.approx(sum(weights) / len(weights), rel=1e-5)
        assert any(w != 1.0 for w in weights)  # balanced in the adapter-only epoch too


def test_training_balances_the_classes_of_each_session(sessions, tmp_path, monkeypatch):
    """Every batch's discrete losses use the balanced class weights of the batch's session's
    TRAINING trials (not of the batch)."""
    import pipeline.neds.train as train_module
    from pipeline.neds.model import balanced_class_weights

    real, seen = train_module.masked_losses, []

    def recording(outputs, inputs, mask, class_weights=None):
        seen.append(class_weights)
        return real(outputs, inputs, mask, class_weights)

    monkeypatch.setattr(train_module, "masked_losses", recording)
    data = small(sessions["sesA"])
    model = build_model(MICRO, {data.session_id: data}, seed=9)
    train_model(model, {data.session_id: data}, MaskingParams().schemes, MaskingParams(),
                dataclasses.replace(SHORT, epochs=1), seed=9, checkpoint_dir=tmp_path, device=CPU, progress=False)
    expected = balanced_class_weights(data.tensors("train"))
    assert seen and all(w is not None and all(torch.equal(w[n], expected[n]) for n in expected) for w in seen)
