"""Training loop: best-validation selection, exact resumption after SIGTERM mid-epoch."""

from __future__ import annotations

import os
import signal

import numpy as np
import pytest
import torch

from pipeline.data.windows import load_recording, make_splits
from pipeline.models.config import LstmParams
from pipeline.models.lstm import LstmDecoder
from pipeline.train.checkpoint import (
    WARNING_SIGNAL,
    TrainingInterrupted,
    checkpoint_paths,
    load_checkpoint,
)
from pipeline.train.config import TrainingParams
from pipeline.train.loop import predict, train_decoder

PARAMS = TrainingParams(epochs=3, batch_size=16, learning_rate=1e-3)
SEED = 5


@pytest.fixture(scope="module")
def splits(decoding_fish):
    neural, behavior, _ = decoding_fish
    return make_splits(load_recording(neural, behavior), (0.7, 0.15, 0.15), seq_len=5)


def fresh_model(n_neurons):
    return LstmDecoder(n_neurons, LstmParams(hidden_size=16, dropout=0.2), seed=SEED)  # dropout: RNG in play


def test_sigterm_mid_epoch_then_rerun_equals_uninterrupted(splits, tmp_path):
    torch.set_num_threads(1)
    n_neurons = splits.train.inputs.shape[1]
    reference = fresh_model(n_neurons)
    reference_result = train_decoder(reference, "lstm", splits, PARAMS, SEED, tmp_path / "a", torch.device("cpu"))
    expected = predict(reference, splits.test, 64, torch.device("cpu"))

    def preempt(epoch, batch):  # SLURM preemption arrives as SIGTERM in the middle of epoch 2
        if (epoch, batch) == (1, 7):
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(TrainingInterrupted, match="epoch 2, batch 8"):
        train_decoder(fresh_model(n_neurons), "lstm", splits, PARAMS, SEED, tmp_path / "b", torch.device("cpu"),
                      on_batch_end=preempt)
    last, _ = checkpoint_paths(tmp_path / "b")
    saved = load_checkpoint(last)
    assert (saved["epoch"], saved["next_batch"]) == (1, 8)

    resumed = fresh_model(n_neurons)  # a new process would start from fresh weights
    resumed_result = train_decoder(resumed, "lstm", splits, PARAMS, SEED, tmp_path / "b", torch.device("cpu"))
    assert resumed_result.resumed_from_epoch == pytest.approx(1 + 8 / -(-len(splits.train) // 16))
    np.testing.assert_array_equal(predict(resumed, splits.test, 64, torch.device("cpu")), expected)
    assert [h["val_loss"] for h in resumed_result.history] == [h["val_loss"] for h in reference_result.history]
    assert resumed_result.best_epoch == reference_result.best_epoch


def test_best_validation_weights_are_kept(splits, tmp_path):
    torch.set_num_threads(1)
    model = fresh_model(splits.train.inputs.shape[1])
    result = train_decoder(model, "lstm", splits, PARAMS, SEED, tmp_path, torch.device("cpu"))
    losses = [h["val_loss"] for h in result.history]
    assert result.best_epoch == int(np.argmin(losses)) and result.best_val_loss == min(losses)
    targets = splits.val.targets[splits.val.frame_index(torch.arange(len(splits.val)))].numpy()
    val_mse = float(np.mean((predict(model, splits.val, 64, torch.device("cpu")) - targets) ** 2))
    assert val_mse == pytest.approx(min(losses), rel=1e-5)


@pytest.fixture(scope="module")
def uninterrupted(splits, tmp_path_factory):
    """Predictions on the test windows and the history of an uninterrupted training."""
    torch.set_num_threads(1)
    model = fresh_model(splits.train.inputs.shape[1])
    result = train_decoder(model, "lstm", splits, PARAMS, SEED, tmp_path_factory.mktemp("a"), torch.device("cpu"))
    return predict(model, splits.test, 64, torch.device("cpu")), result.history


def test_time_based_checkpoints_resume_exactly_after_a_crash(splits, uninterrupted, tmp_path):
    """checkpoint_every_s=0: last.pt after every batch; a crash (no signal, no handler)
    mid-epoch loses at most the batch in progress and the rerun ends identical."""
    torch.set_num_threads(1)
    n_neurons = splits.train.inputs.shape[1]

    def crash(epoch, batch):
        if (epoch, batch) == (1, 7):
            raise MemoryError("killed")

    with pytest.raises(MemoryError):
        train_decoder(fresh_model(n_neurons), "lstm", splits, PARAMS, SEED, tmp_path, torch.device("cpu"),
                      on_batch_end=crash, checkpoint_every_s=0.0)
    saved = load_checkpoint(checkpoint_paths(tmp_path)[0])
    assert (saved["epoch"], saved["next_batch"]) == (1, 7)  # written after batch 7 of 1..n, before the crash

    resumed = fresh_model(n_neurons)
    result = train_decoder(resumed, "lstm", splits, PARAMS, SEED, tmp_path, torch.device("cpu"))
    assert result.resumed_from_epoch is not None
    np.testing.assert_array_equal(predict(resumed, splits.test, 64, torch.device("cpu")), uninterrupted[0])
    assert [h["val_loss"] for h in result.history] == [h["val_loss"] for h in uninterrupted[1]]


def test_early_warning_signal_checkpoints_and_a_checkpoint_of_other_params_is_discarded(
        splits, uninterrupted, tmp_path, caplog):
    """SIGURG (WARNING_SIGNAL, SLURM's --signal=URG@300 warning) stops training with a checkpoint; a rerun
    whose params fingerprint differs discards it (and best.pt) and trains from scratch."""
    torch.set_num_threads(1)
    n_neurons = splits.train.inputs.shape[1]

    def warn(epoch, batch):
        if (epoch, batch) == (1, 3):
            os.kill(os.getpid(), WARNING_SIGNAL)

    with pytest.raises(TrainingInterrupted, match="epoch 2, batch 4"):
        train_decoder(fresh_model(n_neurons), "lstm", splits, PARAMS, SEED, tmp_path, torch.device("cpu"),
                      on_batch_end=warn, fingerprint="params-1")
    assert load_checkpoint(checkpoint_paths(tmp_path)[0])["fingerprint"] == "params-1"

    rerun = fresh_model(n_neurons)
    with caplog.at_level("WARNING", logger="pipeline.train.checkpoint"):
        result = train_decoder(rerun, "lstm", splits, PARAMS, SEED, tmp_path, torch.device("cpu"),
                               fingerprint="params-2")
    assert "discarding" in caplog.text and "'params-1'" in caplog.text and "'params-2'" in caplog.text
    assert result.resumed_from_epoch is None and len(result.history) == PARAMS.epochs
    np.testing.assert_array_equal(predict(rerun, splits.test, 64, torch.device("cpu")), uninterrupted[0])
