"""Region classification across sessions (issue 16): features comparable across sessions,
per-session classifiers for single-session models (whose embedding coordinates are unrelated
across sessions), chance levels that a classifier without embedding information actually
reaches under the folds used, and balanced accuracy for sessions whose region mix differs."""

import numpy as np
import pytest
import torch

from pipeline.neds.config import ModelParams, RegionParams
from pipeline.neds.model import Neds
from pipeline.neds.region import (
    classify_regions,
    input_patterns,
    neuron_embeddings,
    region_features,
    standardise_within_sessions,
)

REGIONS = ("PO", "LP", "DG", "CA1")


def planted_sessions(seed: int, mixes: list[list[int]], n_features: int = 8):
    """Sessions whose neuron embeddings share region structure (one mean per region, unit
    noise) up to a per-session affine map of each feature (scale 0.05-20, offset +-20), as a
    separately initialised and fine-tuned stitcher per session gives; ``mixes``: neurons per
    region per session -> (embeddings, acronyms, session ids)."""
    rng = np.random.default_rng(seed)
    means = 2.5 * rng.standard_normal((len(REGIONS), n_features))
    x, acronyms, sessions = [], [], []
    for s, mix in enumerate(mixes):
        region = np.repeat(np.arange(len(REGIONS)), mix)
        z = means[region] + rng.standard_normal((region.size, n_features))
        scale = np.exp(rng.uniform(np.log(0.05), np.log(20.0), n_features))
        offset = rng.uniform(-20, 20, n_features)
        x.append(scale * z + offset)
        acronyms.append(np.array(REGIONS)[region])
        sessions.append(np.full(region.size, f"s{s}"))
    return np.concatenate(x), np.concatenate(acronyms), np.concatenate(sessions)


def test_grouped_cv_transfers_across_sessions_with_a_per_session_affine_map():
    # four sessions, each with its own region mix (as IBL insertions sample regions unevenly)
    x, acronyms, sessions = planted_sessions(0, [[20, 10, 6, 14], [8, 18, 14, 10], [12, 12, 20, 6], [15, 6, 9, 20]])
    result = classify_regions(x, acronyms, RegionParams(regions=REGIONS), seed=0, sessions=sessions, scheme="grouped")
    assert result["cv"] == "grouped by session, 4-fold" and result["balanced_chance"] == 0.25
    assert result["balanced_accuracy"] >= 0.8, result  # raw features of other sessions: ~chance
    assert result["accuracy"] >= result["chance"] + 0.4
    stratified = classify_regions(x, acronyms, RegionParams(regions=REGIONS), seed=0, sessions=sessions)
    assert stratified["cv"] == "stratified 5-fold x 10" and stratified["balanced_accuracy"] >= 0.8


def rotated_sessions(seed: int, mixes: list[list[int]], n_features: int = 8):
    """Sessions whose neuron embeddings share region structure only up to a random rotation of
    the feature space per session, as separately trained single-session models give (each has
    its own arbitrary token basis) -> (embeddings, acronyms, session ids)."""
    rng = np.random.default_rng(seed)
    means = 2.5 * rng.standard_normal((len(REGIONS), n_features))
    x, acronyms, sessions = [], [], []
    for s, mix in enumerate(mixes):
        region = np.repeat(np.arange(len(REGIONS)), mix)
        rotation = np.linalg.qr(rng.standard_normal((n_features, n_features)))[0]
        x.append((means[region] + rng.standard_normal((region.size, n_features))) @ rotation)
        acronyms.append(np.array(REGIONS)[region])
        sessions.append(np.full(region.size, f"s{s}"))
    return np.concatenate(x), np.concatenate(acronyms), np.concatenate(sessions)


def test_within_session_classifiers_handle_unrelated_coordinates_per_session():
    # one classifier through four unrelated bases fails; one per session does not
    x, acronyms, sessions = rotated_sessions(5, [[10, 10, 10, 10]] * 4, n_features=4)
    params = RegionParams(regions=REGIONS, cv_repeats=2, svc_c=(0.1,))
    within = classify_regions(x, acronyms, params, seed=0, sessions=sessions, scheme="within_session")
    pooled = classify_regions(x, acronyms, params, seed=0, sessions=sessions)
    assert within["cv"] == "within session, stratified 5-fold x 2" and within["n_sessions"] == 4
    assert within["balanced_accuracy"] >= 0.85, within  # measured 0.94
    assert pooled["balanced_accuracy"] <= within["balanced_accuracy"] - 0.2, pooled  # measured 0.62
    assert np.asarray(within["confusion"]).sum() == 160 * 2


def test_within_session_chance_and_exclusions_follow_each_sessions_regions():
    # s0 holds PO and LP only (1 DG neuron: left out there), s1 all four regions
    rng = np.random.default_rng(6)
    acronyms = np.array(["PO"] * 10 + ["LP"] * 10 + ["DG"] + ["PO", "LP", "DG", "CA1"] * 6)
    sessions = np.array(["s0"] * 21 + ["s1"] * 24)
    x = rng.standard_normal((45, 4))  # no region information
    result = classify_regions(x, acronyms, RegionParams(regions=REGIONS, cv_repeats=1, svc_c=(0.1,)), seed=0,
                              sessions=sessions, scheme="within_session")
    assert result["balanced_chance"] == pytest.approx((1 / 2 + 1 / 4) / 2)
    assert result["excluded_regions"] == {"DG": 1} and result["n_neurons"] == 44
    assert result["classes"] == ["PO", "LP", "DG", "CA1"]
    # no session with two regions of >= 2 neurons: no score
    lone = classify_regions(x[:12], np.array(["PO"] * 11 + ["LP"]), RegionParams(regions=REGIONS), seed=0,
                            sessions=sessions[:12], scheme="within_session")
    assert lone["balanced_accuracy"] is None and "fewer than 2 regions" in lone["note"]
    with pytest.raises(ValueError, match="scheme 'pooled'"):
        classify_regions(x, acronyms, RegionParams(regions=REGIONS), seed=0, scheme="pooled")


def test_standardise_within_sessions_removes_a_per_session_affine_map():
    rng = np.random.default_rng(1)
    z = rng.standard_normal((30, 3))
    sessions = np.repeat(["a", "b"], 15)
    x = np.where(sessions[:, None] == "a", z, 7.0 * z - 3.0)
    x[:, 2] = np.where(sessions == "a", 1.0, 2.0)  # constant within each session
    out = standardise_within_sessions(x, sessions)
    reference = standardise_within_sessions(z, sessions)
    np.testing.assert_allclose(out[:, :2], reference[:, :2], atol=1e-12)
    assert np.all(out[:, 2] == 0)
    np.testing.assert_allclose(out[sessions == "b", 0].std(), 1.0)


def test_chance_is_the_majority_rule_under_the_same_folds():
    # session s0: 15 PO / 5 LP, s1: 5 PO / 15 LP; held out in turn, the training session's
    # majority is the held-out session's minority: the majority rule scores 0.25, not the pooled 0.5
    rng = np.random.default_rng(2)
    acronyms = np.array(["PO"] * 15 + ["LP"] * 5 + ["PO"] * 5 + ["LP"] * 15)
    sessions = np.repeat(["s0", "s1"], 20)
    x = rng.standard_normal((40, 4))  # no region information
    result = classify_regions(x, acronyms, RegionParams(regions=("PO", "LP"), cv_folds=2), seed=0,
                              sessions=sessions, scheme="grouped")
    assert result["chance"] == 0.25 and result["balanced_chance"] == 0.5
    confusion = np.asarray(result["confusion"])
    assert confusion.sum() == 40
    recall = confusion.diagonal() / confusion.sum(axis=1)
    assert result["balanced_accuracy"] == pytest.approx(recall.mean())
    assert result["accuracy"] == pytest.approx(confusion.trace() / 40)
    stratified = classify_regions(x, acronyms, RegionParams(regions=("PO", "LP"), cv_folds=5), seed=0,
                                  sessions=sessions)
    assert stratified["chance"] == 0.5  # stratified folds keep the pooled 20 / 20 mix


@pytest.mark.parametrize("classifier", ["lda", "svc"])
def test_class_weights_keep_a_minority_region_from_being_ignored(classifier):
    # a rare region (8 of 80 neurons) that is separable along one axis only, weakly: equal
    # class priors (lda) / balanced class weights (svc) keep it from being ignored
    rng = np.random.default_rng(3)
    acronyms = np.array(["PO"] * 72 + ["LP"] * 8)
    x = rng.standard_normal((80, 2))
    x[acronyms == "LP", 0] += 2.5
    result = classify_regions(x, acronyms, RegionParams(regions=("PO", "LP"), svc_c=(1.0,), classifier=classifier), seed=0)
    assert result["classifier"] == classifier and ("svc_c_chosen" in result) == (classifier == "svc")
    assert result["per_region_accuracy"]["LP"] >= 0.5, result
    assert result["balanced_accuracy"] >= result["balanced_chance"] + 0.2


def test_unknown_classifier_is_refused():
    with pytest.raises(ValueError, match="classifier 'lda' or 'svc' \\(got 'knn'\\)"):
        RegionParams(classifier="knn")


def test_stratified_scores_are_means_over_repeated_fold_shufflings():
    # weakly informative embeddings: the fold split alone moves one run's score
    rng = np.random.default_rng(4)
    acronyms = np.repeat(["PO", "LP", "DG"], [30, 20, 10])
    x = rng.standard_normal((60, 3))
    x[:, 0] += 0.8 * (acronyms == "PO")
    params = RegionParams(regions=("PO", "LP", "DG"), cv_repeats=6, svc_c=(0.1,))
    result = classify_regions(x, acronyms, params, seed=0)
    once = classify_regions(x, acronyms, RegionParams(regions=("PO", "LP", "DG"), cv_repeats=1, svc_c=(0.1,)), seed=0)
    assert result["cv_repeats"] == 6 and once["cv_repeats"] == 1 and once["balanced_accuracy_sd"] is None
    assert result["balanced_accuracy_sd"] > 0 and result["balanced_accuracy"] != once["balanced_accuracy"]
    confusion = np.asarray(result["confusion"])
    assert confusion.sum() == 60 * 6 and confusion.trace() / confusion.sum() == pytest.approx(result["accuracy"])
    assert np.mean(list(result["per_region_accuracy"].values())) == pytest.approx(result["balanced_accuracy"])
    assert result["chance"] == pytest.approx(0.5)


def test_stage_scores_multi_session_models_grouped_and_stratified(sessions, binned_sessions, tmp_path):
    """run_region_classification: a fine-tuned multi-session model (its record names the
    pretrained model) gets folds grouped by session under its name and stratified folds under
    ``<name>_stratified``; single-session models one classifier per session."""
    import json

    from pipeline.neds import stages
    from pipeline.neds.config import ModelParams
    from pipeline.neds.model import Neds
    from pipeline.neds.train import save_model

    params = ModelParams(embed_dim=8, n_heads=2, n_layers=1, mlp_dim=16)
    models = {"multi": [], "single": []}
    for sid, data in sessions.items():
        model = Neds(params, {sid: data.n_neurons}, data.n_bins)
        training = {"tasks": ["encoding", "decoding"]}
        save_model(tmp_path / f"multi_{sid}.pt", model, record={"training": training, "pretrained": "pretrained.pt"})
        save_model(tmp_path / f"single_{sid}.pt", model, record={"training": training})
        models["multi"].append((str(tmp_path / f"multi_{sid}.pt"), binned_sessions[sid]))
        models["single"].append((str(tmp_path / f"single_{sid}.pt"), binned_sessions[sid]))
    region_params = RegionParams(cv_repeats=2, svc_c=(0.1,))
    results = stages.run_region_classification(models, region_params, seed=0, out_path=tmp_path / "region.json")
    assert sorted(results) == ["multi", "multi_stratified", "single"]
    assert results["multi"]["cv"].startswith("grouped by session, 2-fold") and results["multi"]["n_sessions"] == 2
    assert results["multi_stratified"]["cv"] == "stratified 5-fold x 2"
    assert results["single"]["cv"] == "within session, stratified 5-fold x 2" and results["single"]["n_sessions"] == 2
    assert json.loads((tmp_path / "region.json").read_text())["models"].keys() == results.keys()


def test_input_patterns_are_correlations_of_counts_with_the_input_embedding():
    rng = np.random.default_rng(0)
    counts = rng.poisson(1.0, size=(7, 5, 4)).astype(float)  # (trials, bins, neurons)
    counts[..., 2] = 0  # a silent neuron: no correlation, pattern 0
    weight = rng.standard_normal((3, 4))  # (D, N) as neural_in.weight
    x = counts.reshape(-1, 4)
    with np.errstate(invalid="ignore"):  # the silent neuron's row: NaN, set to 0 below
        expected = np.corrcoef(x.T, (x @ weight.T).T)[:4, 4:]  # neuron x embedding dimension
    expected[2] = 0
    assert np.allclose(input_patterns(weight, counts), expected)
    with pytest.raises(ValueError, match="expected \\(trials, bins, neurons\\)"):
        input_patterns(weight, counts[..., :3])


def test_input_patterns_do_not_mix_firing_rate_into_region_features():
    """Planted: each neuron's counts carry the decoded signal with a correlation set by its
    region (CA1 0.6, PO 0.3), and count SDs log-normal across neurons (log-SD 1.5, as firing
    rates spanning two orders of magnitude), independent of region. The correlation patterns
    separate the regions; covariances (the correlation times the neuron's count SD) mix the
    count SD into the feature and do not."""
    rng = np.random.default_rng(2)
    n_trials, n_bins, per_region = 30, 20, 20
    signal = rng.standard_normal(n_trials * n_bins)
    correlation = np.repeat([0.6, 0.3], per_region)
    sd = np.exp(1.5 * rng.standard_normal(2 * per_region))
    noise = rng.standard_normal((n_trials * n_bins, 2 * per_region))
    counts = sd * (correlation * signal[:, None] + np.sqrt(1 - correlation ** 2) * noise)
    weight = np.vstack([np.full(2 * per_region, 1.0 / (2 * per_region)), rng.standard_normal(2 * per_region)])
    patterns = input_patterns(weight, counts.reshape(n_trials, n_bins, -1))  # (N, 2)
    covariances = patterns * counts.std(axis=0, ddof=1)[:, None]
    acronyms = np.repeat(["CA1", "PO"], per_region)
    params = RegionParams(regions=("CA1", "PO"), classifier="lda", cv_repeats=2)
    by_correlation = classify_regions(patterns, acronyms, params, seed=0)["balanced_accuracy"]
    by_covariance = classify_regions(covariances, acronyms, params, seed=0)["balanced_accuracy"]
    assert by_correlation >= 0.85 and by_covariance <= 0.7, (by_correlation, by_covariance)  # measured 0.94, 0.45


def test_decoding_features_are_forward_patterns_not_decoder_weights():
    """Planted decoder (Haufe et al. 2014): CA1 neuron i carries a signal plus a noise source
    it shares with PO neuron i, which carries that noise alone, with a random sign. The
    least-squares decoder of the signal gives the PO neuron a weight as large as its CA1
    partner's (to cancel the shared noise), of either sign: half the PO weights share the CA1
    neurons' sign, so no threshold on the weights gets far beyond 0.75; the forward pattern (a neuron's covariance with the decoded token)
    is the signal each neuron carries: > 0 in CA1, ~0 in PO."""
    rng = np.random.default_rng(1)
    n_trials, n_bins, per_region = 40, 25, 16
    signal = rng.standard_normal(n_trials * n_bins)
    noise = rng.standard_normal((n_trials * n_bins, per_region))  # one source per CA1 / PO pair
    ca1 = np.outer(signal, rng.uniform(0.5, 1.0, per_region)) + noise
    po = rng.permutation(np.resize([-1.0, 1.0], per_region)) * noise  # half the PO neurons of each sign
    counts = np.hstack([ca1, po]) + 0.1 * rng.standard_normal((n_trials * n_bins, 2 * per_region))
    decoder = np.linalg.lstsq(counts - counts.mean(0), signal, rcond=None)[0]  # (N,)
    model = Neds(ModelParams(embed_dim=4, n_heads=1, n_layers=1, mlp_dim=4), {"s": 2 * per_region}, n_bins)
    with torch.no_grad():
        model.adapters["s"].neural_in.weight.zero_()
        model.adapters["s"].neural_in.weight[0] = torch.as_tensor(decoder, dtype=torch.float32)
    acronyms = np.repeat(["CA1", "PO"], per_region)
    params = RegionParams(regions=("CA1", "PO"), classifier="lda", cv_repeats=2)
    features = region_features(model, "s", ("decoding",), counts.reshape(n_trials, n_bins, -1))
    patterns = classify_regions(features, acronyms, params, seed=0)["balanced_accuracy"]
    weights = classify_regions(neuron_embeddings(model, "s", ("decoding",)), acronyms, params, seed=0)
    assert patterns >= 0.95 and weights["balanced_accuracy"] <= 0.8, (patterns, weights["balanced_accuracy"])
