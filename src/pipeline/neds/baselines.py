"""Per-session linear encoders and decoders (paper seed 002, Sec. 4.2, App. C); the
multi-session reduced-rank regression baseline is :mod:`pipeline.neds.rrr`.

They use ALL time bins of a trial to predict each time bin (one multi-output regression per
trial): the encoder maps a trial's behaviour (wheel speed and whisker motion energy in every
bin, one-hot choice and block: 2T + 5 features) to its spike counts (T x N outputs); the
decoder maps its spike counts (T x N features) to one behaviour (T outputs for wheel or
whisker, one-hot classes for choice or block, predicted class = argmax).

Linear: inputs and outputs standardised with training statistics, ridge regression whose
regularisation is chosen by ``GridSearchCV`` over ``ridge_alphas`` (the paper's grid) with
``cv_folds`` shuffled folds of the training trials (score: R² for continuous outputs,
accuracy for classes); predictions mapped back to the original scale.

Encoders predict counts, which can be <= 0; for bits per spike they are clipped to
``rate_floor`` spikes/bin.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.model_selection import KFold

from pipeline.neds.config import BaselineParams
from pipeline.neds.data import BEHAVIORS, CONTINUOUS, DISCRETE, SessionData
from pipeline.neds.evaluate import decoding_metrics, encoding_metrics


@dataclass(frozen=True)
class LinearMap:
    """Y = ((X - x_mean) / x_scale) @ coef * y_scale + y_mean; X (trials, F), Y (trials, K)."""

    x_mean: np.ndarray
    x_scale: np.ndarray
    y_mean: np.ndarray
    y_scale: np.ndarray
    coef: np.ndarray
    alpha: float

    def predict(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.x_mean) / self.x_scale) @ self.coef * self.y_scale + self.y_mean


def _scale(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean, std = values.mean(axis=0), values.std(axis=0)
    return mean, np.where(std > 0, std, 1.0)


def _class_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    return float(np.mean(y_true.argmax(axis=1) == y_pred.argmax(axis=1)))


def _ridge_path(x: np.ndarray, y: np.ndarray, alphas: tuple[float, ...]) -> list[np.ndarray]:
    """Ridge coefficients (F, K) without intercept for every alpha from one thin SVD of ``x``
    (trials, F): coef(alpha) = V diag(s / (s² + alpha)) Uᵀ y, the minimiser of
    |y - x coef|² + alpha |coef|² (what sklearn's ``Ridge(fit_intercept=False)`` solves, there by
    one Cholesky solve per alpha)."""
    u, singular, vt = np.linalg.svd(x, full_matrices=False)
    projected = u.T @ y  # (rank, K)
    return [vt.T @ ((singular / (singular ** 2 + alpha))[:, None] * projected) for alpha in alphas]


def _r2_uniform(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """sklearn's ``r2`` scorer for (trials, K) outputs: R² per output averaged uniformly; an
    output without variance scores 1 when predicted exactly, else 0 (``force_finite``)."""
    residual = ((y_true - y_pred) ** 2).sum(axis=0)
    total = ((y_true - y_true.mean(axis=0)) ** 2).sum(axis=0)
    with np.errstate(divide="ignore", invalid="ignore"):
        r2 = np.where(total > 0, 1.0 - residual / total, np.where(residual == 0, 1.0, 0.0))
    return float(r2.mean())


def fit_ridge(x: np.ndarray, y: np.ndarray, params: BaselineParams, seed: int, *, classes: bool = False) -> LinearMap:
    """Ridge regression of ``y`` (trials, K) on ``x`` (trials, F) with the regularisation
    chosen by cross-validation (module docstring); ``classes``: ``y`` is one-hot, kept
    unscaled and scored by accuracy.

    The search is sklearn's ``GridSearchCV(Ridge(fit_intercept=False), ridge_alphas,
    KFold(cv_folds, shuffle, seed))`` computed directly: per fold one SVD of the training rows
    gives the coefficients of every alpha (:func:`_ridge_path`) instead of one solve per alpha
    and fold; the alpha with the best mean fold score wins (the first on ties, as
    ``GridSearchCV``) and is refitted on all rows. On the T x N = 5,000 features of a 100-bin
    session of 50 neurons this is several times cheaper than the grid search's solves."""
    x_mean, x_scale = _scale(x)
    y_mean, y_scale = (y.mean(axis=0), np.ones(y.shape[1])) if classes else _scale(y)
    xs, ys = (x - x_mean) / x_scale, (y - y_mean) / y_scale
    folds = KFold(min(params.cv_folds, x.shape[0]), shuffle=True, random_state=seed % 2**32)
    alphas = tuple(params.ridge_alphas)
    scores = np.zeros((folds.get_n_splits(), len(alphas)))
    for fold, (fit_rows, held_rows) in enumerate(folds.split(xs)):
        for index, coef in enumerate(_ridge_path(xs[fit_rows], ys[fit_rows], alphas)):
            predicted = xs[held_rows] @ coef
            scores[fold, index] = (_class_accuracy(ys[held_rows], predicted) if classes
                                   else _r2_uniform(ys[held_rows], predicted))
    best = int(np.argmax(scores.mean(axis=0)))
    coef = _ridge_path(xs, ys, (alphas[best],))[0]  # (F, K)
    return LinearMap(x_mean, x_scale, y_mean, y_scale, coef, float(alphas[best]))


def encoder_features(arrays: dict[str, np.ndarray], behaviors: tuple[str, ...] = BEHAVIORS) -> np.ndarray:
    """(trials, features): the named behaviours of every bin (continuous) / one-hot (discrete)."""
    columns = []
    for name in behaviors:
        if name in CONTINUOUS:
            columns.append(arrays[name])
        else:
            columns.append(np.eye(DISCRETE[name])[arrays[name]])
    return np.concatenate(columns, axis=1).astype(np.float64)


def _encoding(data: SessionData, params: BaselineParams, seed: int, behaviors: tuple[str, ...]) -> dict:
    train, test = data.arrays("train"), data.arrays("test")
    n_trials, n_bins, n_neurons = test["spikes"].shape
    fitted = fit_ridge(encoder_features(train, behaviors), train["spikes"].reshape(train["spikes"].shape[0], -1),
                       params, seed)
    rates = fitted.predict(encoder_features(test, behaviors)).reshape(n_trials, n_bins, n_neurons)
    return encoding_metrics(test["spikes"], np.maximum(rates, params.rate_floor))


def _decode(data: SessionData, params: BaselineParams, seed: int) -> dict[str, float]:
    train, test = data.arrays("train"), data.arrays("test")
    x_train, x_test = (a["spikes"].reshape(a["spikes"].shape[0], -1).astype(np.float64) for a in (train, test))
    predicted = {}
    for name in CONTINUOUS:
        predicted[name] = fit_ridge(x_train, train[name], params, seed).predict(x_test)
    for name, n_classes in DISCRETE.items():
        fitted = fit_ridge(x_train, np.eye(n_classes)[train[name]], params, seed, classes=True)
        predicted[name] = fitted.predict(x_test).argmax(axis=1)
    return decoding_metrics(test, predicted)


def evaluate_linear(data: SessionData, params: BaselineParams, seed: int) -> dict:
    """Test-split metrics of the linear encoder and decoders, keyed like
    :func:`pipeline.neds.evaluate.evaluate_model` (``bps``, ``bps_per_neuron``,
    ``bps_<behaviour>``, decoding)."""
    metrics = _encoding(data, params, seed, BEHAVIORS)
    for name in BEHAVIORS:
        metrics[f"bps_{name}"] = _encoding(data, params, seed, (name,))["bps"]
    metrics.update(_decode(data, params, seed))
    return metrics
