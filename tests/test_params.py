"""Params.result_params: what rules pass as params (pipeline.params)."""

from __future__ import annotations

import pytest

from pipeline.models.catalog import ModelSpec
from pipeline.train.config import TrainingParams


def test_result_params_keep_only_changed_result_fields():
    spec = ModelSpec.from_mapping({
        "kind": "reservoir", "architecture": {"reservoir_size": 50, "leak_rate": 0.3}, "gpus": 2, "mem_mb": 9000,
        "runtime_min": 999, "runs_per_job": 5,
    })
    params = spec.result_params()
    # resources and scheduling leave; leak_rate 0.3 is ReservoirParams' default, so it is not a param either
    assert params == {"kind": "reservoir", "architecture": {"reservoir_size": 50}}
    # the job rebuilds the same model from them
    assert ModelSpec.from_mapping(params).architecture == spec.architecture


def test_result_params_ignore_key_order_and_tuples():
    a = TrainingParams.from_mapping({"epochs": 3, "learning_rate": 0.01})
    b = TrainingParams.from_mapping({"learning_rate": 0.01, "epochs": 3, "batch_size": 16})  # 16: the default
    assert a.result_params() == b.result_params() == {"epochs": 3, "learning_rate": 0.01}
    assert list(a.result_params()) == sorted(a.result_params())


def test_result_params_only_names_result_fields():
    spec = ModelSpec.from_mapping({"kind": "lstm"})
    assert spec.result_params(only=("kind",)) == {}  # lstm is the default kind
    with pytest.raises(ValueError, match="gpus"):
        spec.result_params(only=("gpus",))
