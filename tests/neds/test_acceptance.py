"""Acceptance on synthetic sessions whose truth is known: after training, NEDS encodes
better than the mean-rate null and the linear encoder, decodes better than the chance /
trial-average predictor and on par with the linear decoder, and its neuron embeddings
predict brain regions clearly above chance."""

import numpy as np
import pytest

from pipeline.neds.baselines import evaluate_linear
from pipeline.neds.config import BaselineParams, RegionParams
from pipeline.neds.evaluate import chance_metrics, evaluate_model
from pipeline.neds.region import classify_regions, region_features

#: "On par" for single-trial R²: NEDS may fall short of the linear decoder by at most this.
R2_TOLERANCE = 0.05


@pytest.fixture(scope="module")
def measured(sessions, trained_multimodal):
    model, summary = trained_multimodal
    data = sessions["sesA"]
    results = {"neds": evaluate_model(model, "sesA", data, ("encoding", "decoding")), "chance": chance_metrics(data),
               "linear": evaluate_linear(data, BaselineParams(), seed=1), "training": summary}
    print({k: {m: round(v, 3) for m, v in r.items() if isinstance(v, float)} for k, r in results.items()})
    return results


def test_encoding_beats_the_null_and_the_linear_encoder(measured):
    assert measured["neds"]["bps"] > 0
    assert measured["neds"]["bps"] > measured["linear"]["bps"]


@pytest.mark.parametrize("behavior", ["wheel_speed", "whisker_motion_energy"])
def test_continuous_decoding_beats_the_trial_average_and_matches_the_linear_decoder(measured, behavior):
    r2 = measured["neds"][f"{behavior}_r2"]
    assert r2 > measured["chance"][f"{behavior}_r2"] + 0.1
    assert r2 >= measured["linear"][f"{behavior}_r2"] - R2_TOLERANCE


def test_training_reports_throughput(measured):
    training = measured["training"]
    assert training["tokens_per_s"] > 0 and training["device"] == "cpu"
    assert 0 <= training["best_epoch"] < training["epochs"] == 25


def test_region_classification_from_embeddings_beats_chance(sessions, trained_multimodal):
    model, _ = trained_multimodal
    data = sessions["sesA"]
    # what the neds_region stage classifies: W_out rows and the W_in forward patterns over the
    # training trials (pipeline.neds.region.region_features)
    features = region_features(model, "sesA", ("encoding", "decoding"), data.spikes[data.splits["train"]])
    result = classify_regions(features, data.regions, RegionParams(), seed=0)
    print(result)
    assert result["accuracy"] >= result["chance"] + 0.1  # the bar (41 neurons, 5 regions: noisy)
    assert result["balanced_accuracy"] >= result["balanced_chance"] + 0.1
    assert np.sum(result["confusion"]) == result["n_neurons"] * result["cv_repeats"]  # every neuron once per repeat
