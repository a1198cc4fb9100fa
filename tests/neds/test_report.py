"""Tables, the confusion-matrix figure and the validation curves from the NEDS job records."""

import numpy as np
import pandas as pd
import pytest

from pipeline.neds.config import RegionParams
from pipeline.neds.region import classify_regions, region_labels
from pipeline.neds.report import (
    comparison_table,
    paired_tests_table,
    per_region_table,
    per_variable_table,
    plot_confusion,
    plot_validation_curves,
    region_table,
    training_table,
    write_table,
)

DECODING = {"choice_accuracy": 0.6, "choice_balanced_accuracy": 0.55, "block_accuracy": 0.5,
            "block_balanced_accuracy": 0.4, "wheel_speed_r2": 0.4, "wheel_speed_psth_r2": 0.8,
            "whisker_motion_energy_r2": 0.3, "whisker_motion_energy_psth_r2": 0.7}
ENCODING = {"bps": 0.1, "bps_per_neuron": [0.1, None, 0.3], "bps_choice": 0.01, "bps_block": 0.0,
            "bps_wheel_speed": 0.05, "bps_whisker_motion_energy": 0.02}


def _records():
    baselines = [{"session": s, "chance": {**DECODING, "bps": -0.01}, "linear": {**ENCODING, **DECODING},
                  "rrr": {**ENCODING, **DECODING}} for s in ("a", "b", "c")]
    models = [{"session": s, "model": "neds_multimodal", "metrics": {**ENCODING, **DECODING, "bps": bps}}
              for s, bps in (("a", 0.2), ("b", 0.4), ("c", 0.6))]
    models += [{"session": s, "model": "neds_multi_session", "metrics": {**ENCODING, **DECODING, "bps": bps}}
               for s, bps in (("b", 0.5), ("c", 0.9))]
    models.append({"session": "b", "model": "neds_decoding", "metrics": DECODING})
    models.append({"session": "c", "model": "neds_decoding", "metrics": DECODING})
    return models, baselines


def test_comparison_scores_every_method_on_the_evaluated_sessions_only(tmp_path):
    models, baselines = _records()
    table = comparison_table(models, baselines, ["b", "c"])
    assert set(table.session) == {"b", "c", "mean", "s.e."}  # session a (not held out) is left out
    summary = table[table.method == "neds_multimodal"].set_index("session").bps
    assert np.isclose(summary["mean"], 0.5) and np.isclose(summary["s.e."], np.std([0.4, 0.6], ddof=1) / np.sqrt(2))
    assert np.isnan(table[(table.session == "b") & (table.method == "neds_decoding")].bps.iloc[0])
    with pytest.raises(ValueError, match=r"neds_multi_session has no record for the evaluated session\(s\) \['a'\]"):
        comparison_table(models, baselines, ["a", "b", "c"])
    tests = paired_tests_table(table)
    assert set(tests.reference) == {"neds_multi_session"}
    linear_bps = tests[(tests.metric == "bps") & (tests.method == "linear")].iloc[0]
    assert linear_bps.n_sessions == 2 and np.isclose(linear_bps.mean_difference, 0.6)  # (0.4 + 0.8) / 2
    per_variable = per_variable_table(models, baselines, ["b", "c"])
    assert "neds_decoding" not in set(per_variable.method)  # no encoding, no row
    write_table(table, tmp_path / "t.csv", tmp_path / "t.md", "title")
    assert pd.read_csv(tmp_path / "t.csv").shape == table.shape
    markdown = (tmp_path / "t.md").read_text()
    assert markdown.startswith("# title") and "| b | neds_decoding |  | 0.600 | 0.550 |" in markdown


def test_encoding_per_region_pools_neurons_of_the_evaluated_sessions():
    models, baselines = _records()
    regions = {"b": np.array(["CA1", "CA1", "PO"]), "c": np.array(["PO", "CA1", "PO"])}
    table = per_region_table(models, baselines, ["b", "c"], regions).set_index(["method", "region"])
    # linear, per neuron [0.1, None, 0.3] in both sessions: CA1 <- 0.1 (b); PO <- 0.3 (b), 0.1, 0.3 (c)
    assert table.loc[("linear", "CA1"), "n_neurons"] == 1 and np.isclose(table.loc[("linear", "CA1"), "bps"], 0.1)
    assert table.loc[("linear", "PO"), "n_neurons"] == 3
    assert np.isclose(table.loc[("linear", "PO"), "bps"], 0.7 / 3)
    with pytest.raises(ValueError, match="3 neurons scored by linear, 2 region labels"):
        per_region_table(models, baselines, ["b"], {"b": np.array(["CA1", "PO"])})


def test_region_labels_and_classification_of_separable_embeddings(tmp_path):
    # exact acronyms (the binned file holds iblatlas' Beryl level): VISam is not VISa, POL not PO
    assert region_labels(np.array(["VISa", "VISam", "POL", "PO", "CA1", "root"]), ("VISa", "PO", "CA1")).tolist() == \
        ["VISa", "", "", "PO", "CA1", ""]
    rng = np.random.default_rng(0)
    acronyms = np.repeat(["PO", "LP", "VISa"], 20)
    embeddings = np.eye(3).repeat(20, axis=0) * 3 + 0.3 * rng.standard_normal((60, 3))
    result = classify_regions(embeddings, acronyms, RegionParams(), seed=0)
    assert result["accuracy"] == 1.0 and result["chance"] == pytest.approx(1 / 3) and result["classes"] == ["PO", "LP", "VISa"]
    assert result["cv_repeats"] == 10 and result["cv"] == "stratified 5-fold x 10"
    assert np.trace(result["confusion"]) == 60 * 10 and result["per_region_accuracy"] == {"PO": 1.0, "LP": 1.0, "VISa": 1.0}
    # grouped by session: three sessions of 20 neurons; PO neurons of session s2 look like LP
    sessions = np.tile(np.repeat(["s0", "s1", "s2"], [7, 7, 6]), 3)
    shifted = embeddings.copy()
    shifted[(acronyms == "PO") & (sessions == "s2")] = np.array([0, 3, 0]) + 0.3 * rng.standard_normal((6, 3))
    grouped = classify_regions(shifted, acronyms, RegionParams(cv_folds=5), seed=0, sessions=sessions, scheme="grouped")
    assert grouped["cv"] == "grouped by session, 3-fold" and grouped["n_sessions"] == 3
    # most of s2's six LP-like PO neurons are called LP; every LP neuron is
    assert grouped["confusion"][0][1] >= 4 and grouped["per_region_accuracy"]["LP"] == 1.0
    assert grouped["balanced_accuracy"] == pytest.approx(np.mean(list(grouped["per_region_accuracy"].values())))
    assert classify_regions(embeddings, acronyms, RegionParams(), 0, sessions=np.repeat("s", 60),
                            scheme="grouped")["accuracy"] is None
    # two neurons per region and 2 outer folds: one per region in each training fold, no inner search possible
    tiny = classify_regions(embeddings[[0, 1, 20, 21]], acronyms[[0, 1, 20, 21]],
                            RegionParams(cv_folds=2, cv_repeats=1, classifier="svc"), seed=0)
    assert tiny["svc_c_chosen"] == [0.001, 0.001] and tiny["n_neurons"] == 4
    few = classify_regions(embeddings[:8], acronyms[:8], RegionParams(), seed=0)
    assert few["accuracy"] is None and "fewer than 2 regions" in few["note"]
    region = {"neds_multimodal": result, "neds_tiny": few}
    table = region_table(region)
    assert table.shape[0] == 2 and table.accuracy_VISa.iloc[0] == 1.0 and table.balanced_accuracy.iloc[0] == 1.0
    assert np.isnan(table.balanced_accuracy.iloc[1]) and table.balanced_chance.iloc[0] == 1 / 3
    assert table.balanced_accuracy_sd.iloc[0] == 0.0  # ten repeats, all perfect
    assert table.classifier.iloc[0] == "svc"
    plot_confusion(region, tmp_path / "c.pdf", tmp_path / "c.png")
    assert (tmp_path / "c.png").stat().st_size > 1000 and (tmp_path / "c.pdf").stat().st_size > 1000


def test_validation_curves_and_training_table(tmp_path):
    history = [{"epoch": e, "val_task_scores": {"encoding": None if e == 1 else 0.1 * e, "decoding": 0.5}}
               for e in range(4)]
    training = {"tasks": ["encoding", "decoding"], "history": history, "best_epoch": 3, "epochs": 4,
                "skipped_batches": 0, "tokens_per_s": 10.0, "device": "cpu", "train_seconds": 1.0, "n_parameters": 5,
                "task_best_epoch": {"encoding": 3, "decoding": 0}, "task_shortfall": {"encoding": 0.0, "decoding": 0.0}}
    trained = [{"session": "a", "model": "neds_multimodal", "training": training},
               {"session": "a", "model": "neds_encoding", "training": {**training, "tasks": ["encoding"]}}]
    plot_validation_curves(trained, tmp_path / "v.pdf", tmp_path / "v.png")
    assert (tmp_path / "v.png").stat().st_size > 1000
    table = training_table(trained)
    assert table.decoding_best_epoch.iloc[0] == 0 and np.isnan(table.decoding_best_epoch.iloc[1])
