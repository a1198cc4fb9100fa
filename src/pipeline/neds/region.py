"""Brain-region classification from NEDS neuron embeddings (paper seed 002, Sec. 5.3).

Neuron n's embedding is built from the matrices its model trained (Sec. 5.3): its column of
the session's neural input matrix W_in (D values: how its counts enter the spike tokens)
and/or its row of the neural output matrix W_out (D values: how its log-rate is read out).
A model evaluated on encoding and decoding (multimodal, ablations, multi-session) uses both,
concatenated (2D values); an encoding-only model uses W_out alone (every spike token is
hidden, so W_in never receives a gradient and stays at its random initialisation); a
decoding-only model uses W_in alone (spikes are never predicted, so W_out stays at init).
A linear support vector
classifier (features standardised within each training fold; its regularisation C chosen
from ``svc_c`` by an inner stratified ``inner_cv_folds``-fold search on each outer training
fold, since embeddings have D or 2D dimensions and a session may have fewer neurons than
that) is evaluated by cross-validation across the pooled neurons: stratified k-fold for
single-session models (as the paper), and grouped by session (each fold holds out whole
sessions, min(k, sessions) folds) for multi-session models, whose neuron embeddings share
one space, so that a score cannot come from recognising a session -> accuracy and confusion matrix (rows:
true region, columns: predicted, counts). Labels are the binned file's ``neurons/region``
acronyms, already mapped by iblatlas to the configured atlas level (``ibl_binning.region_level``,
Beryl by default; :mod:`pipeline.ibl.regions`), and must equal a configured region exactly
(no prefix matching: ``VISam`` is not ``VISa``, ``POL`` is not ``PO``); other neurons are left
out, and so are regions with fewer neurons than folds (listed in the result).
"""

from __future__ import annotations

import math
import warnings

import numpy as np
from sklearn.metrics import confusion_matrix
from sklearn.model_selection import GridSearchCV, GroupKFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from pipeline.neds.config import RegionParams
from pipeline.neds.model import Neds


def embedding_matrices(tasks: tuple[str, ...]) -> tuple[str, ...]:
    """Adapter matrices (``neural_in``, ``neural_out``) that hold the neuron embeddings of a
    model evaluated on ``tasks`` (:func:`pipeline.neds.train.evaluated_tasks`): W_in when it
    decodes, W_out when it encodes (module docstring)."""
    matrices = (("neural_in",) if "decoding" in tasks else ()) + (("neural_out",) if "encoding" in tasks else ())
    if not matrices:
        raise ValueError(f"no neuron embedding for a model evaluated on {list(tasks)}")
    return matrices


def neuron_embeddings(model: Neds, session_id: str, tasks: tuple[str, ...]) -> np.ndarray:
    """(neurons, D or 2 D): the neuron's rows of :func:`embedding_matrices` (W_in column, then
    W_out row), concatenated."""
    adapter = model.adapters[session_id]
    rows = {"neural_in": adapter.neural_in.weight.T, "neural_out": adapter.neural_out.weight}  # (N, D) each
    return np.concatenate([rows[name].detach().cpu().numpy() for name in embedding_matrices(tasks)], axis=1)


def region_labels(acronyms: np.ndarray, regions: tuple[str, ...]) -> np.ndarray:
    """Each acronym if it is one of the configured ``regions`` (exact match), else ''."""
    wanted = set(regions)
    return np.array([str(a) if str(a) in wanted else "" for a in acronyms], dtype=object)


def _fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, params: RegionParams,
                 seed: int) -> tuple[np.ndarray, float]:
    """Predictions for ``x_test`` of a linear SVC trained on one outer training fold, C chosen
    by inner stratified CV (folds: ``inner_cv_folds``, fewer when the largest region has fewer
    neurons; the smallest, most regularising C when not even 2 are possible), and that C."""
    classes, counts = np.unique(y_train, return_counts=True)
    if classes.size < 2:  # a grouped fold whose training sessions hold a single region
        return np.full(len(x_test), classes[0], dtype=y_train.dtype), math.nan
    pipeline = make_pipeline(StandardScaler(), LinearSVC(max_iter=20000, random_state=seed % 2**32))
    n_inner = min(params.inner_cv_folds, int(counts.max()))
    if n_inner < 2 or len(params.svc_c) == 1:
        c = min(params.svc_c)
        return pipeline.set_params(linearsvc__C=c).fit(x_train, y_train).predict(x_test), c
    inner = StratifiedKFold(n_inner, shuffle=True, random_state=(seed + 1) % 2**32)
    search = GridSearchCV(pipeline, {"linearsvc__C": list(params.svc_c)}, cv=inner)
    with warnings.catch_warnings():  # a region with fewer members than inner folds is still classified
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        search.fit(x_train, y_train)
    return search.predict(x_test), float(search.best_params_["linearsvc__C"])


def classify_regions(embeddings: np.ndarray, acronyms: np.ndarray, params: RegionParams, seed: int,
                     sessions: np.ndarray | None = None) -> dict:
    """Cross-validated linear-SVC region classification (module docstring); ``sessions``
    (one id per neuron): fold by session (multi-session models). Returns ``accuracy``,
    ``chance`` (fraction of the most common region), ``classes``, ``per_region_accuracy``
    (class -> fraction of its neurons classified correctly), ``confusion`` (classes x classes
    counts), ``cv`` (the scheme), ``svc_c_chosen`` (C per outer fold), ``n_neurons``,
    ``excluded_regions``; with fewer than two regions of ``cv_folds`` neurons (or fewer than 2
    sessions when grouped), accuracy and chance are None and ``note`` says why."""
    labels = region_labels(acronyms, params.regions)
    counts = {r: int(np.sum(labels == r)) for r in params.regions}
    classes = [r for r in params.regions if counts[r] >= params.cv_folds]
    excluded = {r: n for r, n in counts.items() if r not in classes}
    keep = np.isin(labels, classes)
    if len(classes) < 2:  # too few neurons to classify: say so instead of inventing a number
        return {"accuracy": None, "chance": None, "classes": classes, "confusion": [], "n_neurons": int(keep.sum()),
                "excluded_regions": excluded,
                "note": f"fewer than 2 regions with >= {params.cv_folds} neurons ({counts})"}
    x, y = embeddings[keep], labels[keep].astype(str)
    if sessions is None:
        folds, groups = StratifiedKFold(params.cv_folds, shuffle=True, random_state=seed % 2**32), None
        scheme = f"stratified {params.cv_folds}-fold"
    else:
        groups = np.asarray(sessions)[keep]
        n_groups = len(np.unique(groups))
        if n_groups < 2:
            return {"accuracy": None, "chance": None, "classes": classes, "confusion": [], "n_neurons": int(keep.sum()),
                    "excluded_regions": excluded, "note": "grouped by session: needs neurons of >= 2 sessions"}
        folds = GroupKFold(min(params.cv_folds, n_groups))
        scheme = f"grouped by session, {min(params.cv_folds, n_groups)}-fold"
    predicted, chosen_c = np.empty_like(y), []
    for train, test in folds.split(x, y, groups):
        predicted[test], c = _fit_predict(x[train], y[train], x[test], params, seed)
        chosen_c.append(c)
    return {
        "accuracy": float(np.mean(predicted == y)),
        "chance": float(max(np.mean(y == c) for c in classes)),
        "classes": classes,
        "per_region_accuracy": {c: float(np.mean(predicted[y == c] == c)) for c in classes},
        "cv": scheme,
        "svc_c_chosen": chosen_c,
        "confusion": confusion_matrix(y, predicted, labels=classes).tolist(),
        "n_neurons": int(keep.sum()),
        "excluded_regions": excluded,
    }
