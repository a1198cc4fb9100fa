"""Decoding metrics against hand-computed values (paper Eq. 15)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from pipeline.train.metrics import decoding_metrics, pearson_r, window_rmse


def test_window_rmse_by_hand():
    target = np.zeros((2, 2, 6))
    predicted = np.zeros((2, 2, 6))
    predicted[0] = 1.0  # window 0: every error 1 -> RMSE 1
    predicted[1, 0, :3] = 2.0  # window 1: 3 of 12 errors are 2 -> sqrt(12/12) = 1
    predicted[1, 1, 0] = 0.0
    np.testing.assert_allclose(window_rmse(predicted, target), [1.0, 1.0])
    predicted[1] = 0.0
    metrics = decoding_metrics(predicted, target)
    assert metrics["rmse"] == pytest.approx(0.5)
    assert metrics["rmse_sum_over_windows"] == pytest.approx(1.0)
    # frame level: frames 0, 1, 2; frame 1 is in both windows: (1 + 0) / 2
    assert metrics["frame_rmse"] == pytest.approx(np.sqrt((1 + 0.25 + 0) / 3))
    np.testing.assert_allclose(metrics["per_segment_rmse"], np.sqrt(0.5))
    assert metrics["n_test_windows"] == 2 and metrics["n_test_frames"] == 3


def test_pearson_matches_scipy_and_constant_is_nan():
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal(50), rng.standard_normal(50)
    assert pearson_r(a, b) == pytest.approx(stats.pearsonr(a, b).statistic)
    assert np.isnan(pearson_r(np.ones(5), np.arange(5)))


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        decoding_metrics(np.zeros((2, 3, 6)), np.zeros((2, 4, 6)))


def test_frames_in_no_window_are_left_out_of_frame_metrics():
    rng = np.random.default_rng(1)
    starts = np.array([0, 1, 6])  # frames 4 and 5 lie in no window (an invalid volume at 5)
    target, predicted = rng.standard_normal((3, 3, 6)), rng.standard_normal((3, 3, 6))
    metrics = decoding_metrics(predicted, target, starts)
    frames = {f: [] for f in range(9)}
    for w, s in enumerate(starts):
        for t in range(3):
            frames[s + t].append(w * 3 + t)
    covered = [f for f in frames if frames[f]]
    assert covered == [0, 1, 2, 3, 6, 7, 8] and metrics["n_test_frames"] == 7
    pred = np.array([np.mean([predicted.reshape(-1, 6)[i] for i in frames[f]], axis=0) for f in covered])
    targ = np.array([np.mean([target.reshape(-1, 6)[i] for i in frames[f]], axis=0) for f in covered])
    assert metrics["frame_rmse"] == pytest.approx(np.sqrt(np.mean((pred - targ) ** 2)))
    assert metrics["tail_sum_pearson_r"] == pytest.approx(pearson_r(pred.sum(1), targ.sum(1)))
