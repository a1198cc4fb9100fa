"""Blocked cross-validation against a single split on a recording with a planted
non-stationarity: the decoding error is larger in the last fifth of the recording."""

from __future__ import annotations

import numpy as np

from pipeline.data.windows import DecodingRecording, make_splits
from pipeline.train.baselines import baseline_metrics
from pipeline.train.metrics import decoding_metrics

N_FRAMES, N_NEURONS, SEQ_LEN, N_FOLDS = 2000, 8, 5, 5
QUIET_NOISE_RAD, LOUD_NOISE_RAD = 0.02, 0.2  # tail noise s.d. before / in the last 20 % of the recording


def planted_recording() -> tuple[DecodingRecording, np.ndarray]:
    """Tail = linear map of the activity + noise whose s.d. jumps 10x for the last 400
    volumes; returns (recording, oracle prediction = the noise-free tail (frames, 6) rad)."""
    rng = np.random.default_rng(0)
    activity = rng.standard_normal((N_FRAMES, N_NEURONS)).astype(np.float32)
    oracle = (activity @ (0.1 * rng.standard_normal((N_NEURONS, 6)))).astype(np.float32)
    noise_sd = np.where(np.arange(N_FRAMES) < 0.8 * N_FRAMES, QUIET_NOISE_RAD, LOUD_NOISE_RAD)
    tail = (oracle + noise_sd[:, None] * rng.standard_normal((N_FRAMES, 6))).astype(np.float32)
    recording = DecodingRecording(activity, tail, np.zeros((N_NEURONS, 3), np.float32),
                                  np.array(["Pt"] * N_NEURONS), np.arange(N_FRAMES) / 2.0, "dff")
    return recording, oracle


def ridge_test_rmse(recording: DecodingRecording, **split) -> float:
    """Test RMSE (paper Eq. 15, rad) of the ridge decoder of pipeline.train.baselines."""
    splits = make_splits(recording, (0.7, 0.1, 0.2), SEQ_LEN, **split)
    return baseline_metrics(splits, None)[0]["ridge"]["rmse"]


def oracle_rmse(recording: DecodingRecording, oracle: np.ndarray) -> float:
    """The recording-wide error of the noise-free decoder: Eq. 15 over every window of the
    recording (what an unbiased estimate of a decoder's error should approach)."""
    frames = np.arange(N_FRAMES - SEQ_LEN + 1)[:, None] + np.arange(SEQ_LEN)[None, :]
    return decoding_metrics(oracle[frames], recording.tail_angles[frames], np.arange(len(frames)))["rmse"]


def test_blocked_cv_recovers_the_recording_mean_that_a_single_split_misses():
    recording, oracle = planted_recording()
    truth = oracle_rmse(recording, oracle)
    single = ridge_test_rmse(recording)  # 70:10:20: the test block is the loud last fifth
    folds = [ridge_test_rmse(recording, cv_folds=N_FOLDS, fold=f) for f in range(N_FOLDS)]
    cv_mean = float(np.mean(folds))
    # measured: truth 0.055 rad, single split 0.196, fold mean 0.061 (the ridge's own estimation
    # error adds ~10 % to the noise floor in every fold)
    assert single > 2.5 * truth  # biased: the single split only sees the loud end
    assert abs(cv_mean - truth) < 0.2 * truth  # the fold mean is the recording's error
    assert abs(single - truth) > 10 * abs(cv_mean - truth)
    assert np.argmax(folds) == N_FOLDS - 1 and max(folds) > 5 * min(folds)  # the spread shows the drift
