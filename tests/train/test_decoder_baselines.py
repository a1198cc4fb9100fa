"""Baseline decoders of a training job: the training mean, ridge on the same windows, and the
stimulus alone, scored on the job's test windows."""

from __future__ import annotations

import dataclasses

import numpy as np

from pipeline.data.windows import load_recording, make_splits
from pipeline.train.baselines import baseline_metrics, fit_window_ridge, stimulus_features


def test_window_ridge_recovers_a_lagged_linear_map_and_picks_a_small_strength():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((400, 3))
    y = np.column_stack([x[:, 0] + 0.5 * np.roll(x[:, 1], 1), x[:, 2]])  # frame t depends on t and t-1
    blocks = {"train": slice(0, 280), "val": slice(280, 340), "test": slice(340, 400)}
    predicted, strength = fit_window_ridge({s: x[b] for s, b in blocks.items()}, {s: y[b] for s, b in blocks.items()},
                                           seq_len=4)
    windows = np.lib.stride_tricks.sliding_window_view(y[340:], 4, axis=0).transpose(0, 2, 1)
    # the first step of a window has no lag inside it; every later step is exact
    assert np.abs(predicted[:, 1:] - windows[:, 1:]).max() < 0.05 and strength <= 1.0


def test_job_baselines_on_the_synthetic_fish(decoding_fish):
    neural, behavior, _ = decoding_fish
    splits = make_splits(load_recording(neural, behavior), (0.7, 0.15, 0.15), 10)
    stimulus = stimulus_features(behavior)
    assert stimulus.shape == (splits.n_recording_frames, 8) and np.isfinite(stimulus).all()
    baselines, predictions = baseline_metrics(splits, stimulus)
    assert predictions["ridge"].shape == (len(splits.test), 10, 6)
    assert set(baselines) == {"mean_predictor", "ridge", "stimulus"}
    # the planted drivers make activity decodable: ridge beats the mean; the tail is not the stimulus
    assert baselines["ridge"]["rmse"] < 0.9 * baselines["mean_predictor"]["rmse"]
    assert baselines["ridge"]["tail_sum_pearson_r"] > 0.3
    assert baselines["ridge"]["n_test_windows"] == len(splits.test)
    assert baselines["mean_predictor"]["tail_sum_pearson_r"] is None  # a constant has no correlation
    assert np.isfinite(baselines["stimulus"]["rmse"]) and baselines["stimulus"]["n_test_windows"] == len(splits.test)


def test_baselines_leave_out_invalid_volumes_and_a_missing_stimulus(decoding_fish):
    """Windows over volumes the behaviour file marks invalid are left out of the baselines as
    of the decoders (pipeline.data.windows); without a stimulus there is no stimulus row."""
    neural, behavior, _ = decoding_fish
    recording = load_recording(neural, behavior)
    valid = np.ones(recording.n_frames, bool)
    valid[[50, 51, recording.n_frames - 30]] = False  # one gap in training, one in the test block
    splits = make_splits(dataclasses.replace(recording, tail_valid=valid), (0.7, 0.15, 0.15), 10)
    all_valid = make_splits(load_recording(neural, behavior), (0.7, 0.15, 0.15), 10)
    assert len(splits.test) < len(all_valid.test)
    baselines, predictions = baseline_metrics(splits, None)
    assert set(baselines) == {"mean_predictor", "ridge"} and set(predictions) == {"mean_predictor", "ridge"}
    assert baselines["ridge"]["n_test_windows"] == len(splits.test)
    assert np.isfinite(predictions["ridge"]).all() and np.isfinite(baselines["ridge"]["rmse"])
