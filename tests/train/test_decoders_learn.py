"""Acceptance: on a synthetic fish, the reservoir computer, the LSTM and a small transformer
each beat the training-mean predictor on test RMSE and reach a positive tail-sum r."""

from __future__ import annotations

import json

import h5py
import numpy as np
import pytest
import torch

from pipeline.models.catalog import ModelSpec
from pipeline.train.config import TrainingParams
from pipeline.train.job import DecodingJob, run_decoding_job

SMALL_GPT2 = {"family": "gpt2", "config_overrides": {"n_embd": 64, "n_layer": 2, "n_head": 4, "n_positions": 32,
                                                     "vocab_size": 1}}
MODELS = {
    "reservoir": (ModelSpec(kind="reservoir", architecture={"reservoir_size": 200, "ridge": 1000.0}),
                  TrainingParams()),
    "lstm": (ModelSpec(kind="lstm", architecture={"hidden_size": 32}),
             TrainingParams(epochs=8, batch_size=16, learning_rate=1e-3)),
    "gpt2_small": (ModelSpec(kind="transformer", architecture=SMALL_GPT2),
                   TrainingParams(epochs=8, batch_size=16, learning_rate=1e-4)),
}


def run_job(decoding_fish, tmp_path, model, seq_len=10, run=0, **overrides):
    neural, behavior, _ = decoding_fish
    spec, training = MODELS[model]
    job = DecodingJob(experiment="test", fish="synthetic", model=model, weights="untrained", embedding="linear",
                      seq_len=seq_len, run=run, seed=11 + run, split_fractions=(0.7, 0.15, 0.15))
    out = tmp_path / model
    return run_decoding_job(neural, behavior, job, spec, TrainingParams(**{**training.to_dict(), **overrides}), {},
                            checkpoint_dir=out / "ckpt", model_path=out / "model.pt",
                            predictions_path=out / "predictions.h5", metrics_path=out / "metrics.json",
                            device="cpu")


@pytest.mark.parametrize("model", list(MODELS))
def test_decoder_beats_the_mean_predictor(decoding_fish, tmp_path, model):
    torch.set_num_threads(1)
    summary = run_job(decoding_fish, tmp_path, model)
    test, baseline = summary["test"], summary["mean_predictor_test"]
    # Measured on this fish: RMSE 0.044 (RC), 0.041 (LSTM), 0.041 (GPT-2) vs 0.054 for the
    # mean predictor; tail-sum r 0.58, 0.66, 0.67.
    assert test["rmse"] < 0.9 * baseline["rmse"], (test["rmse"], baseline["rmse"])
    assert test["tail_sum_pearson_r"] > 0.4
    # The outputs follow the contract and agree with the summary.
    out = tmp_path / model
    assert json.loads((out / "metrics.json").read_text())["test"] == test
    with h5py.File(out / "predictions.h5", "r") as f:
        n_windows, seq_len, segments = f["test/window_predictions"].shape
        assert (seq_len, segments) == (10, 6) and n_windows == test["n_test_windows"]
        assert f["test/frame_predictions"].shape == (test["n_test_frames"], 6)
        assert f["test/frame_index"][0] == summary["frame_ranges"]["test"][0][0]
        assert f["test/frame_predictions"].attrs["units"] == "rad"
    state = torch.load(out / "model.pt", weights_only=True)
    assert state["job"]["model"] == model and state["activity_mean"].shape == (summary["n_neurons"],)
    assert not (out / "ckpt").exists()  # the resume state is removed once outputs are written
    perf = summary["performance"]
    assert perf["n_parameters_trainable"] <= perf["n_parameters_total"] and perf["peak_rss_mb"] > 0
    assert np.isfinite(perf["train_windows_per_s"])
