"""What the demo (config/config.yaml, bin/demo) shows, checked on a real run of its Table 1
(opt-in: ``pytest -m demo``; a few minutes on 2 cores, so neither ``bin/test`` nor CI runs it
by default; run it after changing the demo's grid, its fish or the decoders).

Issue 15: the demo's Table 1 shows the baseline rows, and on every demo fish at least one
decoder beats the training-mean predictor with a 95 % CI over runs that excludes zero
(:func:`pipeline.stats.comparisons.beyond_training_mean`, reported in Table 1's footer).
"""

from __future__ import annotations

import shutil

import pytest

from helpers import REPO, run_snakemake
from pipeline.config import read_fish_table
from pipeline.stats.comparisons import beyond_training_mean, table1_arm
from pipeline.stats.records import BASELINES, load_records

pytestmark = [pytest.mark.slow, pytest.mark.demo]


def test_every_demo_fish_has_a_decoder_beyond_the_training_mean_and_table1_shows_the_baselines(tmp_path):
    shutil.copytree(REPO / "config", tmp_path / "config")
    table1 = "results/tables/table1_model_comparison.md"
    result = run_snakemake("--profile", "profiles/local", table1, workdir=tmp_path, timeout=3600)
    assert result.returncode == 0, result.stdout[-5000:]

    text = (tmp_path / table1).read_text(encoding="utf-8")
    assert all(label in text for label in BASELINES.values()), text
    records, _ = table1_arm(load_records(sorted((tmp_path / "results/nlp4neuro/model_comparison").rglob("metrics.json")),
                                         "model_comparison"))
    beyond = beyond_training_mean(records)
    assert (beyond["n_runs"] >= 2).all()
    winners = beyond[beyond["beats_mean"]].groupby("fish")["model"].apply(list).to_dict()
    demo_fish = set(read_fish_table(REPO / "config" / "fish.tsv").index)
    assert set(winners) == demo_fish, beyond.to_string()
