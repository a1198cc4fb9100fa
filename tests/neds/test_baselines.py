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


def test_ridge_search_matches_sklearn_grid_search():
    """The SVD path gives sklearn's Ridge(fit_intercept=False) coefficients for every alpha,
    and the cross-validated choice is GridSearchCV's (same folds, R² / accuracy scores)."""
    from sklearn.linear_model import Ridge
    from sklearn.metrics import make_scorer
    from sklearn.model_selection import GridSearchCV, KFold

    from pipeline.neds.baselines import _class_accuracy, _ridge_path

    rng = np.random.default_rng(2)
    x = rng.standard_normal((60, 150))  # more features than trials, as the T x N decoder
    y = x[:, :5] @ rng.standard_normal((5, 4)) + rng.standard_normal((60, 4))
    alphas = (1e-3, 1.0, 100.0, 1e4)
    for alpha, coef in zip(alphas, _ridge_path(x, y, alphas)):
        assert np.allclose(coef, Ridge(alpha=alpha, fit_intercept=False).fit(x, y).coef_.T, atol=1e-8)
    params = BaselineParams(ridge_alphas=alphas, cv_folds=4)
    labels = np.eye(2)[(x[:, 0] + rng.standard_normal(60) > 0).astype(int)]
    for targets, classes in ((y, False), (labels, True)):
        fitted = fit_ridge(x, targets, params, seed=3, classes=classes)
        xs = (x - x.mean(0)) / x.std(0)
        ys = targets - targets.mean(0) if classes else (targets - targets.mean(0)) / targets.std(0)
        search = GridSearchCV(Ridge(fit_intercept=False), {"alpha": list(alphas)},
                              cv=KFold(4, shuffle=True, random_state=3),
                              scoring=make_scorer(_class_accuracy) if classes else "r2").fit(xs, ys)
        assert fitted.alpha == search.best_params_["alpha"]
        assert np.allclose(fitted.coef, search.best_estimator_.coef_.T, atol=1e-8)
