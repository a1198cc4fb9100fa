"""Experiment design: the job grid, per-model training overrides, and config errors."""

from __future__ import annotations

import pytest
import yaml
from helpers import REPO

from pipeline.train.experiments import fold_wildcard, parse_fold_wildcard, resolve_design

SECTION = {
    "models": {
        "lstm": {"kind": "lstm", "training": {"learning_rate": 1e-3}},
        "bert": {"kind": "transformer", "architecture": {"family": "bert", "source": "bert-base-uncased"}},
        "moe": {"kind": "transformer", "architecture": {"family": "moe", "config_overrides": {"hidden_size": 8}}},
    },
    "experiments": {
        "exp2": {"models": ["lstm", "bert", "moe"], "seq_lens": [5, 20], "n_runs": 2,
                 "weights": ["pretrained", "untrained"], "training": {"epochs": 5, "learning_rate": 1e-4}},
    },
}


def test_job_grid_respects_what_each_model_supports():
    design = resolve_design(SECTION)
    jobs = design.jobs(["f1", "f2"])
    per_model = {m: {(j["weights"], j["embedding"]) for j in jobs if j["model"] == m} for m in ("lstm", "bert", "moe")}
    assert per_model["lstm"] == {("untrained", "linear")}  # no pretrained LSTM
    assert per_model["bert"] == {("pretrained", "linear"), ("untrained", "linear")}
    assert per_model["moe"] == {("untrained", "linear")}  # no weight source: from config only
    assert len(jobs) == 2 * 2 * 2 * (1 + 2 + 1)  # fish x seq_len x runs x weight options


def test_model_training_overrides_the_experiment():
    design = resolve_design(SECTION)
    assert design.training("exp2", "lstm")["learning_rate"] == 1e-3
    assert design.training("exp2", "bert")["learning_rate"] == 1e-4
    assert design.training("exp2", "bert")["epochs"] == 5


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda s: s["experiments"]["exp2"].update(models=["gru"]), "not in nlp4neuro.models"),
        (lambda s: s["models"]["lstm"].update(kind="gru"), "nlp4neuro.models.lstm"),
        (lambda s: s["models"]["lstm"].update(architecture={"hidden": 3}), "hidden"),
        (lambda s: s["models"]["bert"]["architecture"].update(quantization="4bit"), "lora_rank"),
        (lambda s: s["experiments"]["exp2"].update(training={"epoch": 3}), "epoch"),
        (lambda s: s["experiments"]["exp2"].update(seq_lens=[0]), "seq_lens"),
        (lambda s: s.update(embedding={"n_components": 0}), "nlp4neuro.embedding"),
        (lambda s: s["experiments"]["exp2"].update(cv_folds=1), "exp2: cv_folds must be 0"),
        (lambda s: s["experiments"]["exp2"].update(weights=["scratch"]), "weights must be a non-empty subset"),
    ],
)
def test_bad_sections_name_the_key(mutate, message):
    import copy

    section = copy.deepcopy(SECTION)
    mutate(section)
    with pytest.raises(ValueError, match=message):
        resolve_design(section)


def test_unknown_fish_in_an_experiment_is_an_error():
    section = {**SECTION, "experiments": {"e": {**SECTION["experiments"]["exp2"], "fish": ["nope"]}}}
    with pytest.raises(ValueError, match="unknown fish"):
        resolve_design(section).jobs(["f1"])


@pytest.mark.parametrize("name", ["config.yaml", "paper.yaml"])
def test_shipped_designs_resolve(name):
    config = yaml.safe_load((REPO / "config" / name).read_text())
    design = resolve_design(config["nlp4neuro"])
    assert design.jobs(["fish01"])


def test_blocked_cv_makes_one_job_per_fold_and_leaves_single_split_jobs_alone():
    import copy

    section = copy.deepcopy(SECTION)
    section["experiments"]["cv"] = {**section["experiments"]["exp2"], "cv_folds": 3}
    jobs = resolve_design(section).jobs(["f1"])
    single = [j for j in jobs if j["experiment"] == "exp2"]
    folded = [j for j in jobs if j["experiment"] == "cv"]
    assert {j["fold"] for j in single} == {""}  # paths stay .../run{run}
    assert len(folded) == 3 * len(single) and {j["fold"] for j in folded} == {"-fold0", "-fold1", "-fold2"}
    assert [parse_fold_wildcard(fold_wildcard(f)) for f in (None, 0, 12)] == [None, 0, 12]
    with pytest.raises(ValueError, match="fold wildcard"):
        parse_fold_wildcard("fold1")


def test_scratch_full_jobs_only_for_lora_models():
    import copy

    section = copy.deepcopy(SECTION)
    section["models"]["big"] = {"kind": "transformer",
                                "architecture": {"family": "llama", "source": "x", "lora_rank": 4}}
    section["experiments"]["exp2"].update(models=["lstm", "bert", "big"],
                                          weights=["pretrained", "untrained", "scratch_full"])
    jobs = resolve_design(section).jobs(["f1"])
    weights = {m: {j["weights"] for j in jobs if j["model"] == m} for m in ("lstm", "bert", "big")}
    assert weights == {"lstm": {"untrained"}, "bert": {"pretrained", "untrained"},
                       "big": {"pretrained", "untrained", "scratch_full"}}


def test_salience_refuses_a_cross_validated_experiment():
    import copy

    from pipeline.salience.config import SalienceParams, salience_jobs

    section = copy.deepcopy(SECTION)
    section["experiments"]["exp2"]["cv_folds"] = 3
    with pytest.raises(ValueError, match="salience.experiment: 'exp2' uses blocked cross-validation"):
        salience_jobs(SalienceParams(experiment="exp2", models=("lstm",), seq_len=5), resolve_design(section), ["f1"])
