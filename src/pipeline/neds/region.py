"""Brain-region classification from NEDS neuron embeddings (paper seed 002, Sec. 5.3).

Neuron n's embedding is built from the matrices its model trained (Sec. 5.3): its column of
the session's neural input matrix W_in (D values: how its counts enter the spike tokens)
and/or its row of the neural output matrix W_out (D values: how its log-rate is read out).
A model evaluated on encoding and decoding (multimodal, ablations, multi-session) uses both,
concatenated (2D values); an encoding-only model uses W_out alone (every spike token is
hidden, so W_in never receives a gradient and stays at its random initialisation); a
decoding-only model uses W_in alone (spikes are never predicted, so W_out stays at init).
:func:`neuron_embeddings` returns these raw parameter rows (the paper's definition).

What is classified (:func:`region_features`): the W_out rows as they are, and for W_in its
forward patterns (:func:`input_patterns`, Haufe et al. 2014) as correlations: over the
session's training bins, the correlation of each neuron's counts with each dimension of the
spike token's input embedding W_in x. W_out is a forward map (a neuron's rate read from the
token): its row describes the neuron. W_in is a backward map (the token read from all neurons
at once): the weight it gives a neuron depends on the other neurons as much as on the neuron
(a neuron carrying only noise shared with informative neurons gets a large weight, to cancel
that noise), so its column is a filter, not a description; the pattern is. Measured on the
three held-out acceptance sessions (SVC, within session, chance 0.2; model seeds of the
acceptance test / +1000, 3 x 5-fold, branch s6-region): decoding-only 0.291 / 0.294 with raw
W_in columns, 0.332 / 0.362 with covariance patterns; multimodal 0.347 / 0.366 -> 0.386 /
0.399. Correlations instead of covariances (branch s7-region, models retrained with today's
training, 10 x 5-fold, seeds of the test / +1000 / +2000; docs/architecture.md): within
session about equal (multimodal 0.393 / 0.398 / 0.406 vs 0.404 / 0.385 / 0.406, decoding-only
0.337 / 0.356 / 0.347 vs 0.340 / 0.350 / 0.344), multi-session model grouped by session
0.253 / 0.311 vs 0.208 / 0.285; on two synthetic sessions of real size (398-438 neurons,
bench/region_features.py) decoding-only 0.552 vs 0.519, multimodal 0.541 vs 0.525.
Region information in the rows appears in the first 5-10 epochs and then stays level (W_out)
or falls (decoding-only W_in columns, 0.33 at epoch 10 -> 0.28 at the best epoch 31-39; LDA).
The figures above are on synthetic sessions of generator 2.1.0 (population latents
region-independent only). Generator 2.2.0 adds region-specific shared fluctuations
(:mod:`pipeline.synth.ibl`); on its acceptance sessions (10 x 5-fold, within session, model
seeds of the test / +1000 / +2000) of 200 trials multimodal 0.466 / 0.450 / 0.439,
encoding-only 0.347 / 0.415 / 0.390, decoding-only 0.370 / 0.349 / 0.392; of 600 trials (the
acceptance module's now) 0.574 / 0.534 / 0.562, 0.481 / 0.448 / 0.517, 0.424 / 0.419 / 0.343
(docs/architecture.md, region section).

Comparable features across sessions. Both matrices sit next to the shared transformer (W_in
writes into its token space, W_out reads its normalised output), so for a multi-session model
the directions of the neuron embeddings of different sessions are comparable; their scale and
offset are not: W_in columns of a session shrink with its number of neurons and firing rates
(the token is a sum over the session's neurons), each session's stitchers start from their own
random initialisation and are fine-tuned separately, and a session's log-rate offsets sit in
W_out's bias, not its rows. So every feature is z-scored across the neurons of its own session
(labels are never used) before sessions are pooled: a per-session scale and offset of any
feature cancels. A per-neuron scale does not: a neuron's covariance with the token grows with
its count SD, i.e. with its firing rate, whose distribution differs between sessions; the
patterns are therefore correlations (:func:`input_patterns`). The planted test
(tests/neds/test_region.py) holds region structure fixed up to such a per-session affine
map, which defeats a classifier trained on raw features of other sessions.

Classifier (``classifier``). ``svc`` (default): the paper's linear support vector classifier
with class weights inversely proportional to the training fold's region counts (IBL sessions
sample the five regions in very different proportions, so the class mix of a held-out session
differs from the training sessions'), features standardised within each training fold,
regularisation C chosen from ``svc_c`` by an inner search that maximises balanced accuracy
(inner folds: grouped by session when the outer training fold holds >= 2 sessions and the
outer folds are grouped, else stratified, ``inner_cv_folds`` folds; embeddings have D or 2D
dimensions and a session may have fewer neurons than that). ``lda``: linear discriminant
analysis with a Ledoit-Wolf shrunk covariance (sklearn's average of the class covariances,
weighted by the priors) and equal class priors, features standardised within each training
fold; nothing is tuned, so no inner search on ~13 neurons per inner fold. Measured on the
six-session acceptance models (within session, chance 0.2; docs/architecture.md): at the
test's model seeds (10 x 5-fold) LDA vs SVC multimodal 0.360 vs 0.356, encoding-only 0.373
vs 0.370, decoding-only 0.288 vs 0.287, multi-session 0.355 vs 0.359 (stratified) and 0.287
vs 0.295 (grouped); at model seeds +1000 (3 x 5-fold) 0.411 / 0.483 / 0.307 vs 0.373 /
0.449 / 0.294; the region stage on the five acceptance models took 20 CPU-s with LDA, 114
with the SVC. Not universal: on planted embeddings
whose noise lies mostly in a few shared high-variance directions the shrinkage towards a
scaled identity loses them (0.46-0.54 vs the SVC's 0.80), so the paper's SVC stays the
default.

Cross-validation schemes. A linear classifier shared by several sessions needs embedding
coordinates that mean the same in every session. That holds for a multi-session model (one
shared transformer: every session's W_in writes into, and W_out reads from, the same token
space), not for single-session models: each session's model is trained from its own random
initialisation, so its D token dimensions are an arbitrary basis of its own, unrelated to
another session's (a rotation per session is not removed by the per-session z-scoring).
Pooling their neurons into one classifier asks it to fit one boundary through several
unrelated coordinate systems; measured on the six-session acceptance models (held-out sessions,
~50 neurons each, 10 x 5-fold), pooled stratified CV gave decoding-only W_in balanced accuracy
0.264 ± 0.023 and per-session classifiers 0.310 ± 0.027 (chance 0.2). So:

- ``within_session`` (single-session models): one classifier per session, stratified k-fold
  inside the session, predictions pooled; a region enters a session's classifier when the
  session holds >= 2 of its neurons (so that every training fold holds it; IBL sessions hold
  hundreds of neurons, the acceptance sessions ~50); balanced accuracy is each session's
  balanced accuracy over its own regions, averaged over sessions, and its chance the mean of
  1 / the session's number of regions;
- ``stratified`` (the paper's "5-fold cross-validation across all neurons"): one classifier,
  stratified k-fold across the pooled neurons (multi-session models);
- ``grouped``: one classifier, folds holding out whole sessions (min(k, sessions) folds; a score
  that cannot come from recognising a session, issue 16; multi-session models).

Stratified folds are repeated over ``cv_repeats`` fold shufflings with the scores averaged
(with ~50 neurons per session the split alone moves the accuracy of one 5-fold run by several
points, enough to reorder the variants). Scores: ``accuracy`` (fraction of neurons),
``balanced_accuracy`` (mean over regions of the fraction of the region's neurons classified
correctly: a classifier that ignores the embedding scores 1 / regions in expectation, whatever
the class mix, which is ``balanced_chance``), ``chance`` (the accuracy of the rule that
predicts the training fold's most common region, under the same folds: with grouped folds this
is not the pooled majority fraction, since a held-out session's class mix differs), confusion
matrix (rows: true region, columns: predicted, counts) and per-region accuracy. Labels are the
binned file's ``neurons/region`` acronyms, already mapped by iblatlas to the configured atlas
level (``ibl_binning.region_level``, Beryl by default; :mod:`pipeline.ibl.regions`), and must
equal a configured region exactly (no prefix matching: ``VISam`` is not ``VISa``, ``POL`` is not
``PO``); other neurons are left out, and so are regions with fewer neurons than folds (within a
session: fewer than 2 of the session's neurons), listed in the result.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.metrics import confusion_matrix
from sklearn.model_selection import GridSearchCV, GroupKFold, StratifiedKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from pipeline.neds.config import RegionParams
from pipeline.neds.model import Neds
from pipeline.seeding import derive_seed


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


def input_patterns(input_weight: np.ndarray, spikes: np.ndarray) -> np.ndarray:
    """(N, D) forward patterns of the neural input matrix (Haufe et al. 2014, NeuroImage 87:
    96-110) as correlations: row n, column d is the Pearson correlation, over the given bins,
    of neuron n's count with dimension d of the spike token's input embedding W_in x (the
    covariance Σ W_inᵀ, Σ the (N, N) count covariance, divided by the neuron's count SD and the
    dimension's SD; 0 for a neuron or dimension constant over the bins). ``input_weight``:
    (D, N) ``neural_in.weight``; ``spikes``: (trials, bins, N) spike counts per bin (the
    training trials). Unitless, in [-1, 1].

    Why not W_in's columns themselves: W_in is a backward (decoding) map, and the weight a
    decoder gives a neuron reflects the other neurons as much as the neuron (a neuron that
    carries only noise shared with informative neurons gets a large weight, to cancel that
    noise); its pattern is what the token's content says about that neuron's own activity.
    Why correlations, not covariances: a neuron's covariance with the token scales with its
    count SD (about the square root of its rate per bin for Poisson-like firing), a per-neuron
    scale that the per-session z-scoring of each feature cannot remove and that mixes firing
    rate into every feature; rates span two orders of magnitude across IBL neurons and their
    distribution differs between sessions, which hurts most when a classifier trained on some
    sessions is applied to another (module docstring, measured figures). W_out is a forward
    map already (a neuron's log-rate read from the token), so its rows are used as they are."""
    weight = np.asarray(input_weight, dtype=float)
    counts = np.asarray(spikes)
    if counts.ndim != 3 or counts.shape[2] != weight.shape[1]:
        raise ValueError(f"spike counts of shape {counts.shape} for a neural input matrix of {weight.shape[1]} "
                         "neurons: expected (trials, bins, neurons)")
    n_bins = counts.shape[0] * counts.shape[1]
    if n_bins < 2:
        raise ValueError(f"input patterns need >= 2 bins of spike counts, got {n_bins}")
    # one trial at a time (a real session's counts in float64 are ~10^8 bytes): centred sums
    # of products from raw sums, e.g. sum (x - x̄)(e - ē)^T = sum x e^T - sum x sum e^T / n
    cross = np.zeros((weight.shape[1], weight.shape[0]))
    count_sum, embedding_sum = np.zeros(weight.shape[1]), np.zeros(weight.shape[0])
    count_squares, embedding_squares = np.zeros(weight.shape[1]), np.zeros(weight.shape[0])
    for trial in counts:
        trial = trial.astype(float)
        embedded = trial @ weight.T
        cross += trial.T @ embedded
        count_sum += trial.sum(axis=0)
        embedding_sum += embedded.sum(axis=0)
        count_squares += np.square(trial).sum(axis=0)
        embedding_squares += np.square(embedded).sum(axis=0)
    covariance = cross - np.outer(count_sum, embedding_sum) / n_bins
    count_sd = np.sqrt(np.maximum(count_squares - count_sum ** 2 / n_bins, 0.0))
    embedding_sd = np.sqrt(np.maximum(embedding_squares - embedding_sum ** 2 / n_bins, 0.0))
    scale = np.outer(count_sd, embedding_sd)
    # a neuron silent (or a dimension constant) over the bins: no correlation, pattern 0
    return np.divide(covariance, scale, out=np.zeros_like(covariance), where=scale > 1e-12 * scale.max())


def region_features(model: Neds, session_id: str, tasks: tuple[str, ...], spikes: np.ndarray) -> np.ndarray:
    """(neurons, D or 2 D) features classified for a model evaluated on ``tasks``: for each
    matrix of :func:`embedding_matrices`, the :func:`input_patterns` of W_in over ``spikes``
    ((trials, bins, N) counts of the session's training trials), then the W_out rows
    (module docstring)."""
    adapter = model.adapters[session_id]
    rows = {"neural_in": lambda: input_patterns(adapter.neural_in.weight.detach().cpu().numpy(), spikes),
            "neural_out": lambda: adapter.neural_out.weight.detach().cpu().numpy()}
    return np.concatenate([rows[name]() for name in embedding_matrices(tasks)], axis=1)


def region_labels(acronyms: np.ndarray, regions: tuple[str, ...]) -> np.ndarray:
    """Each acronym if it is one of the configured ``regions`` (exact match), else ''."""
    wanted = set(regions)
    return np.array([str(a) if str(a) in wanted else "" for a in acronyms], dtype=object)


def standardise_within_sessions(embeddings: np.ndarray, sessions: np.ndarray) -> np.ndarray:
    """Each feature z-scored across the neurons of each session (mean 0, SD 1 per session; a
    feature constant within a session becomes 0 there): removes any per-session scale and
    offset of a feature (module docstring). No labels are used."""
    x = np.asarray(embeddings, dtype=float)
    out = np.empty_like(x)
    for session in np.unique(sessions):
        rows = sessions == session
        centred = x[rows] - x[rows].mean(axis=0)
        sd = x[rows].std(axis=0)
        out[rows] = np.divide(centred, sd, out=np.zeros_like(centred), where=sd > 0)
    return out


def _fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, params: RegionParams,
                 seed: int, groups: np.ndarray | None) -> tuple[np.ndarray, float | None]:
    """Predictions for ``x_test`` of the ``params.classifier`` trained on one outer training
    fold (features standardised with the fold's statistics), and the chosen SVC C (None for
    ``lda``). ``lda``: shrinkage LDA, Ledoit-Wolf covariance, equal class priors; nothing is
    tuned. ``svc``: class-weighted linear SVC, C chosen by inner CV on balanced accuracy
    (grouped by session when ``groups`` holds >= 2 sessions, else stratified; folds:
    ``inner_cv_folds``, fewer when there are fewer sessions or the largest region has fewer
    neurons; the smallest, most regularising C when not even 2 folds are possible)."""
    classes, counts = np.unique(y_train, return_counts=True)
    if classes.size < 2:  # a grouped fold whose training sessions hold a single region
        return np.full(len(x_test), classes[0], dtype=y_train.dtype), None
    if params.classifier == "lda":
        lda = LinearDiscriminantAnalysis(solver="lsqr", shrinkage="auto", priors=np.full(classes.size, 1 / classes.size))
        with warnings.catch_warnings():  # a region with one neuron in the fold: its covariance term is 0
            warnings.filterwarnings("ignore", message="Only one sample available", category=UserWarning)
            return make_pipeline(StandardScaler(), lda).fit(x_train, y_train).predict(x_test), None
    pipeline = make_pipeline(StandardScaler(),
                             LinearSVC(class_weight="balanced", max_iter=20000, random_state=seed % 2**32))
    n_groups = 0 if groups is None else len(np.unique(groups))
    if n_groups >= 2:
        n_inner = min(params.inner_cv_folds, n_groups)
        inner = GroupKFold(n_inner)
    else:
        n_inner = min(params.inner_cv_folds, int(counts.max()))
        inner = StratifiedKFold(n_inner, shuffle=True, random_state=(seed + 1) % 2**32) if n_inner >= 2 else None
    if n_inner < 2 or len(params.svc_c) == 1:
        c = min(params.svc_c)
        return pipeline.set_params(linearsvc__C=c).fit(x_train, y_train).predict(x_test), c
    search = GridSearchCV(pipeline, {"linearsvc__C": list(params.svc_c)}, cv=inner, scoring="balanced_accuracy")
    with warnings.catch_warnings():  # a region absent from, or rarer than the folds of, an inner split
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true", category=UserWarning)
        search.fit(x_train, y_train, groups=groups if n_groups >= 2 else None)
    return search.predict(x_test), float(search.best_params_["linearsvc__C"])


SCHEMES = ("stratified", "grouped", "within_session")


def _within_session_subset(labels: np.ndarray, sessions: np.ndarray, classes: list[str], min_neurons: int
                           ) -> tuple[np.ndarray, dict[str, int]]:
    """(neurons kept, {region: neurons left out}) for per-session classifiers: in each session
    only regions with >= ``min_neurons`` of its neurons (so that every training fold of that
    session holds the region), and only sessions left with >= 2 such regions."""
    keep = np.zeros(labels.size, dtype=bool)
    for session in np.unique(sessions):
        in_session = (sessions == session) & np.isin(labels, classes)
        present, counts = np.unique(labels[in_session], return_counts=True)
        usable = present[counts >= min_neurons]
        if usable.size >= 2:
            keep |= in_session & np.isin(labels, usable)
    left_out = {c: int(np.sum((labels == c) & ~keep)) for c in classes}
    return keep, {c: n for c, n in left_out.items() if n}


def _within_session_folds(y: np.ndarray, groups: np.ndarray, n_folds: int, seed: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """Stratified k-fold inside each session (positions into the pooled arrays; training and
    test neurons of a fold always come from one session), min(k, the session's largest
    region) folds."""
    folds = []
    for session in np.unique(groups):
        rows = np.flatnonzero(groups == session)
        k = min(n_folds, int(np.unique(y[rows], return_counts=True)[1].max()))
        with warnings.catch_warnings():  # a region with fewer neurons than folds in this session
            warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
            splits = list(StratifiedKFold(k, shuffle=True, random_state=seed % 2**32).split(rows, y[rows]))
        folds += [(rows[train], rows[test]) for train, test in splits]
    return folds


def classify_regions(embeddings: np.ndarray, acronyms: np.ndarray, params: RegionParams, seed: int,
                     sessions: np.ndarray | None = None, scheme: str = "stratified") -> dict:
    """Cross-validated linear region classification (``params.classifier``: shrinkage LDA or
    linear SVC; module docstring). ``sessions`` (one
    id per neuron; None: all one session): features are z-scored within each session
    (:func:`standardise_within_sessions`). ``scheme``: ``stratified`` (k-fold across the pooled
    neurons; one classifier for all sessions), ``grouped`` (folds hold out whole sessions;
    multi-session models) or ``within_session`` (one classifier per session, stratified k-fold
    inside it, predictions pooled; models whose embedding coordinates are not shared across
    sessions: single-session models). Returns ``accuracy``, ``balanced_accuracy``, ``chance``
    (accuracy of predicting each training fold's most common region, same folds), each the mean
    over ``cv_repeats`` fold shufflings (``params.cv_repeats``; one for grouped folds, which are
    deterministic), ``accuracy_sd`` and ``balanced_accuracy_sd`` (SD over repeats; None for
    one), ``balanced_chance`` (the expected balanced accuracy of a classifier that ignores the
    embedding: 1 / regions; ``within_session``: the mean over sessions of 1 / the session's
    regions), ``classes``, ``per_region_accuracy`` (class -> fraction of its neurons classified
    correctly, over all repeats), ``confusion`` (classes x classes counts summed over repeats:
    each neuron is counted once per repeat), ``cv`` (the scheme), ``classifier``,
    ``svc_c_chosen`` (C per outer fold; classifier ``svc`` only), ``n_neurons``, ``n_sessions``, ``excluded_regions`` (region -> neurons left
    out); with fewer than two regions of ``cv_folds`` neurons (or fewer than 2 sessions when
    grouped; no session with 2 regions of >= 2 neurons when within_session), the scores are
    None and ``note`` says why. ``within_session`` balanced accuracy is the mean over sessions
    of each session's balanced accuracy over its own regions (a region needs >= 2 neurons in a
    session to be classified there)."""
    if scheme not in SCHEMES:
        raise ValueError(f"region classification scheme {scheme!r}: expected one of {SCHEMES}")
    labels = region_labels(acronyms, params.regions)
    sessions = np.full(len(labels), "") if sessions is None else np.asarray(sessions).astype(str)
    counts = {r: int(np.sum(labels == r)) for r in params.regions}
    if scheme == "within_session":
        keep, excluded = _within_session_subset(labels, sessions, list(params.regions), min_neurons=2)
        classes = [r for r in params.regions if np.any(keep & (labels == r))]
        excluded = {**{r: n for r, n in counts.items() if n and r not in classes}, **excluded}
    else:
        classes = [r for r in params.regions if counts[r] >= params.cv_folds]
        excluded = {r: n for r, n in counts.items() if r not in classes}
        keep = np.isin(labels, classes)
    n_sessions = len(np.unique(sessions[keep]))
    empty = {"accuracy": None, "balanced_accuracy": None, "chance": None, "balanced_chance": None, "classes": classes,
             "confusion": [], "n_neurons": int(keep.sum()), "n_sessions": n_sessions, "excluded_regions": excluded,
             "classifier": params.classifier}
    if len(classes) < 2:  # too few neurons to classify: say so instead of inventing a number
        minimum = "2 neurons in one session" if scheme == "within_session" else f"{params.cv_folds} neurons"
        return {**empty, "note": f"fewer than 2 regions with >= {minimum} ({counts})"}
    if scheme == "grouped" and n_sessions < 2:
        return {**empty, "note": "grouped by session: needs neurons of >= 2 sessions"}
    # z-score within sessions over every neuron of the session (labelled or not: no label is used)
    x, y, groups = standardise_within_sessions(embeddings, sessions)[keep], labels[keep].astype(str), sessions[keep]
    if scheme == "grouped":  # GroupKFold is deterministic: one repeat
        n_folds = min(params.cv_folds, n_sessions)
        repeats = [list(GroupKFold(n_folds).split(x, y, groups))]
        description = f"grouped by session, {n_folds}-fold"
    elif scheme == "within_session":
        repeats = [_within_session_folds(y, groups, params.cv_folds, derive_seed(seed, "region_cv", r))
                   for r in range(params.cv_repeats)]
        description = f"within session, stratified {params.cv_folds}-fold"
    else:
        repeats = [list(StratifiedKFold(params.cv_folds, shuffle=True,
                                        random_state=derive_seed(seed, "region_cv", r) % 2**32).split(x, y))
                   for r in range(params.cv_repeats)]
        description = f"stratified {params.cv_folds}-fold"
    if scheme != "grouped" and params.cv_repeats > 1:
        description += f" x {params.cv_repeats}"
    # the units over which balanced accuracy is averaged: every session apart (within_session), else all pooled
    units = [groups == s for s in np.unique(groups)] if scheme == "within_session" else [np.ones(y.size, dtype=bool)]
    scores, confusion, chosen_c = {"accuracy": [], "balanced_accuracy": [], "chance": []}, 0, []
    for folds in repeats:
        predicted, majority = np.empty_like(y), np.empty_like(y)
        for train, test in folds:
            predicted[test], c = _fit_predict(x[train], y[train], x[test], params, seed,
                                              groups[train] if scheme == "grouped" else None)
            train_classes, train_counts = np.unique(y[train], return_counts=True)
            majority[test] = train_classes[np.argmax(train_counts)]
            chosen_c.append(c)
        scores["accuracy"].append(np.mean(predicted == y))
        scores["balanced_accuracy"].append(np.mean([
            np.mean([np.mean(predicted[unit & (y == c)] == c) for c in np.unique(y[unit])]) for unit in units]))
        scores["chance"].append(np.mean(majority == y))
        confusion = confusion + confusion_matrix(y, predicted, labels=classes)
    n_repeats = len(scores["accuracy"])
    return {
        **empty,
        **{key: float(np.mean(values)) for key, values in scores.items()},
        **{f"{key}_sd": float(np.std(scores[key], ddof=1)) if n_repeats > 1 else None
           for key in ("accuracy", "balanced_accuracy")},
        "balanced_chance": float(np.mean([1.0 / np.unique(y[unit]).size for unit in units])),
        "per_region_accuracy": {c: float(confusion[i, i] / confusion[i].sum()) for i, c in enumerate(classes)},
        "cv": description,
        "cv_repeats": n_repeats,
        **({"svc_c_chosen": chosen_c} if params.classifier == "svc" else {}),
        "confusion": confusion.tolist(),
    }
