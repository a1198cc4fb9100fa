"""Ridge regression (the linear baseline) on data with a known linear truth."""

import numpy as np

from pipeline.neds.baselines import encoder_features, fit_ridge
from pipeline.neds.config import BaselineParams


def test_ridge_recovers_a_linear_map():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((200, 12))
    truth = rng.standard_normal((12, 2)) @ rng.standard_normal((2, 30))  # rank-2 map
    y = x @ truth + 0.1 * rng.standard_normal((200, 30)) + 5.0
    params = BaselineParams()
    ridge = fit_ridge(x[:150], y[:150], params, seed=0)
    residual = y[150:] - ridge.predict(x[150:])
    assert np.mean(residual**2) < 0.05 and ridge.alpha in params.ridge_alphas


def test_ridge_classifier_on_one_hot_targets():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 3, 300)
    x = np.eye(3)[labels] * 2 + 0.5 * rng.standard_normal((300, 3))
    fitted = fit_ridge(x[:200], np.eye(3)[labels[:200]], BaselineParams(), seed=0, classes=True)
    assert np.mean(fitted.predict(x[200:]).argmax(axis=1) == labels[200:]) > 0.9


def test_encoder_features_use_every_bin_and_one_hot_labels():
    arrays = {"wheel_speed": np.ones((4, 100)), "whisker_motion_energy": np.zeros((4, 100)),
              "choice": np.array([0, 1, 1, 0]), "block": np.array([2, 0, 1, 1])}
    features = encoder_features(arrays)
    assert features.shape == (4, 205)
    assert features[0, 200:].tolist() == [1, 0, 0, 0, 1]
    assert encoder_features(arrays, ("block",)).shape == (4, 3)
