"""The evaluation section: roles map to experiments by config, checked against the design."""

from __future__ import annotations

import pandas as pd
import pytest
import yaml

from helpers import REPO

from pipeline.stats.config import resolve_evaluation
from pipeline.train.experiments import resolve_design

MODELS = {
    "lstm": {"kind": "lstm"},
    "bert": {"kind": "transformer", "architecture": {"family": "bert", "source": "package:x"}},
}


def design(**experiments):
    return resolve_design({"models": MODELS, "experiments": experiments})


EXP1 = {"models": ["lstm", "bert"], "seq_lens": [5, 10]}
EXP2 = {"models": ["bert"], "weights": ["pretrained", "untrained"]}
EXP3 = {"models": ["bert"], "embeddings": ["linear", "relative"]}


def test_roles_default_to_experiments_of_the_same_name():
    resolved = resolve_evaluation(None, design(model_comparison=EXP1, embeddings=EXP3), ["f1", "f2"])
    assert resolved.experiments == {"model_comparison": "model_comparison", "model_table": "model_comparison",
                                    "embeddings": "embeddings"}
    assert (resolved.trace_fish, resolved.trace_seq_len, resolved.alpha) == ("f1", 5, 0.05)


def test_a_renamed_experiment_is_named_by_its_role():
    section = {"model_comparison": "exp1_rerun", "pretrained_vs_untrained": "weights_study", "embeddings": "",
               "trace_seq_len": 10}
    resolved = resolve_evaluation(section, design(exp1_rerun=EXP1, weights_study=EXP2, embeddings=EXP3), ["f1"])
    assert resolved.experiments == {"model_comparison": "exp1_rerun", "model_table": "exp1_rerun",
                                    "pretrained_vs_untrained": "weights_study"}
    assert resolved.trace_seq_len == 10


@pytest.mark.parametrize("section, message", [
    ({"model_comparison": "nope"}, "evaluation.model_comparison: 'nope' is not in nlp4neuro.experiments"),
    ({"model_comparison": "exp2"}, "one weights option and one embedding"),
    ({"model_comparison": "", "model_table": "exp2"}, "Table 1 is written with Fig. 2a"),
    ({"pretrained_vs_untrained": "exp1"}, "weights [pretrained, untrained]"),
    ({"embeddings": "exp1"}, "at least two embeddings"),
    ({"model_comparison": "exp1", "trace_fish": "f9"}, "evaluation.trace_fish"),
    ({"model_comparison": "exp1", "trace_seq_len": 20}, "evaluation.trace_seq_len"),
    ({"alpha": 1.5}, "alpha"),
    ({"unknown_key": 1}, "unknown_key"),
])
def test_bad_sections_name_the_key(section, message):
    with pytest.raises(ValueError) as err:
        resolve_evaluation(section, design(exp1=EXP1, exp2=EXP2), ["f1"])
    assert message in str(err.value)


def test_table1_may_come_from_the_pretrained_vs_untrained_experiment():
    resolved = resolve_evaluation({"model_table": "pretrained_vs_untrained"},
                                  design(model_comparison=EXP1, pretrained_vs_untrained=EXP2), ["f1"])
    assert resolved.experiments["model_table"] == "pretrained_vs_untrained"


def test_paper_config_builds_each_output_under_the_paper_protocol():
    """Sec. 3.4: 5 epochs for Fig. 2b and Table 1 (batch 32, 70:10:20, Exp. 2); 10 epochs for
    Fig. 2a and Figs. 3-6; batch 16 and 70:15:15 in Exp. 1/4, batch 32 and 70:10:20 in Exp. 2-3;
    Exp. 3 on one representative fish."""
    config = yaml.safe_load((REPO / "config" / "paper.yaml").read_text())
    fish = list(pd.read_csv(REPO / "config" / "paper" / "fish.tsv", sep="\t")["fish_id"])
    paper = resolve_design(config["nlp4neuro"])
    evaluation = resolve_evaluation(config["evaluation"], paper, fish)
    protocols = {"model_table": (5, 32, (0.7, 0.1, 0.2)), "pretrained_vs_untrained": (5, 32, (0.7, 0.1, 0.2)),
                 "model_comparison": (10, 16, (0.7, 0.15, 0.15)), "embeddings": (10, 32, (0.7, 0.1, 0.2))}
    for role, (epochs, batch_size, split) in protocols.items():
        name = evaluation.experiments[role]
        jobs = [job for job in paper.jobs(fish) if job["experiment"] == name]
        assert jobs, role
        for job in jobs:
            training = paper.training(name, job["model"])
            assert (training["epochs"], training["batch_size"]) == (epochs, batch_size), (role, job)
            assert paper.experiments[name].split_fractions == pytest.approx(split), role
    table1 = evaluation.experiments["model_table"]
    assert {"reservoir", "lstm", "bert", "gpt2"} <= set(paper.experiments[table1].models)
    assert config["salience"]["experiment"] == evaluation.experiments["model_comparison"]  # Exp. 4 = Exp. 1 protocol
    assert len(paper.experiments[evaluation.experiments["embeddings"]].fish) == 1
