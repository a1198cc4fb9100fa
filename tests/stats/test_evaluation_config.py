"""The evaluation section: roles map to experiments by config, checked against the design."""

from __future__ import annotations

import pytest

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
    assert resolved.experiments == {"model_comparison": "model_comparison", "embeddings": "embeddings"}
    assert (resolved.trace_fish, resolved.trace_seq_len, resolved.alpha) == ("f1", 5, 0.05)


def test_a_renamed_experiment_is_named_by_its_role():
    section = {"model_comparison": "exp1_rerun", "pretrained_vs_untrained": "weights_study", "embeddings": "",
               "trace_seq_len": 10}
    resolved = resolve_evaluation(section, design(exp1_rerun=EXP1, weights_study=EXP2, embeddings=EXP3), ["f1"])
    assert resolved.experiments == {"model_comparison": "exp1_rerun", "pretrained_vs_untrained": "weights_study"}
    assert resolved.trace_seq_len == 10


@pytest.mark.parametrize("section, message", [
    ({"model_comparison": "nope"}, "evaluation.model_comparison: 'nope' is not in nlp4neuro.experiments"),
    ({"model_comparison": "exp2"}, "one weights option and one embedding"),
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
