"""Table 1-3 comparisons on fabricated metrics files (training-job contract)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy import stats

from fabricated_jobs import write_metrics
from pipeline.stats.comparisons import compare_against_best, compare_paired_weights
from pipeline.stats.hypothesis import holm_adjust
from pipeline.stats.records import MetricsFileError, load_records

METRICS = ["rmse", "tail_sum_pearson_r"]
RMSE = {  # model -> per (fish, run) values at L=5; lstm is best
    "reservoir": [0.25, 0.26, 0.24, 0.27],
    "lstm": [0.05, 0.06, 0.055, 0.052],
    "gpt2": [0.07, 0.058, 0.08, 0.075],
}


def _model_comparison(tmp_path, values=RMSE, runs=2):
    paths = []
    for model, rmses in values.items():
        for i, rmse in enumerate(rmses):
            fish, run = f"fish{i // runs}", i % runs
            paths.append(write_metrics(tmp_path, experiment="exp1", fish=fish, model=model, run=run, rmse=rmse,
                                       pearson_r=0.5 - rmse))
    return load_records(paths, "exp1")


def test_each_model_against_the_best_with_holm(tmp_path):
    records = _model_comparison(tmp_path)
    table = compare_against_best(records, "model", ["seq_len"], METRICS, 0.05, ["reservoir", "lstm", "gpt2"])
    rmse = table[table["metric"] == "rmse"].set_index("model")
    assert list(rmse.index) == ["reservoir", "lstm", "gpt2"]  # config order
    assert (rmse["best_arm"] == "lstm").all() and rmse.loc["lstm", "test_note"] == "best"
    assert rmse.loc["lstm", "mean"] == pytest.approx(np.mean(RMSE["lstm"]))
    assert rmse.loc["lstm", "sem"] == pytest.approx(stats.sem(RMSE["lstm"]))
    assert (rmse["n"] == 4).all() and (rmse["n_fish"] == 2).all()
    raw = [stats.mannwhitneyu(RMSE[m], RMSE["lstm"], alternative="two-sided").pvalue for m in ("reservoir", "gpt2")]
    assert list(rmse.loc[["reservoir", "gpt2"], "p_value"]) == pytest.approx(raw)
    assert list(rmse.loc[["reservoir", "gpt2"], "p_adjusted"]) == pytest.approx(list(holm_adjust(raw)))
    # 4 vs 4 fully separated: exact p = 2/70; Holm over 2 comparisons -> 4/70 < 0.05
    assert rmse.loc["reservoir", "p_adjusted"] == pytest.approx(4 / 70)
    # higher r is better: the model with the lowest RMSE has the highest r here
    pearson = table[table["metric"] == "tail_sum_pearson_r"]
    assert set(pearson["best_arm"]) == {"lstm"}


def test_one_run_per_cell_reports_not_computable(tmp_path):
    records = _model_comparison(tmp_path, {m: v[:1] for m, v in RMSE.items()}, runs=1)
    table = compare_against_best(records, "model", ["seq_len"], METRICS, 0.05)
    tested = table[table["test_note"] != "best"]
    assert len(tested) == 4 and tested["p_value"].isna().all() and tested["p_adjusted"].isna().all()
    assert tested["test_note"].str.startswith("not computable").all() and not tested["significant"].any()
    assert table["sem"].isna().all()


def _twins(tmp_path, pretrained, untrained, model="bert", seq_len=5, shuffle=False):
    paths = []
    pairs = list(enumerate(zip(pretrained, untrained)))
    if shuffle:
        pairs = pairs[::-1]
    for i, (pre, un) in pairs:
        for weights, rmse in (("pretrained", pre), ("untrained", un)):
            paths.append(write_metrics(tmp_path, experiment="exp2", fish=f"fish{i % 2}", model=model,
                                       weights=weights, seq_len=seq_len, run=i // 2, rmse=rmse, pearson_r=rmse))
    return paths


def test_pretrained_vs_untrained_is_paired_by_fish_and_run(tmp_path):
    pre, un = [0.05, 0.06, 0.052, 0.058, 0.049], [0.06, 0.061, 0.07, 0.059, 0.065]
    paths = _twins(tmp_path, pre, un, shuffle=True)
    paths += [write_metrics(tmp_path, experiment="exp2", fish="fish0", model="gpt2", run=0, rmse=0.1, pearson_r=0.0)]
    records = load_records(paths, "exp2")
    table = compare_paired_weights(records, METRICS, 0.05)
    row = table[table["metric"] == "rmse"].iloc[0]
    assert set(table["model"]) == {"bert"}  # gpt2 has no pretrained twin
    expected = stats.wilcoxon(pre, un, zero_method="wilcox")
    assert row["n_pairs"] == 5 and row["statistic"] == expected.statistic
    assert row["p_value"] == pytest.approx(expected.pvalue) and row["p_value"] == pytest.approx(2 / 32)
    assert row["difference_mean"] == pytest.approx(np.mean(np.subtract(pre, un)))
    assert row["pretrained_mean"] == pytest.approx(np.mean(pre)) and row["unpaired_jobs"] == 0


def test_pretrained_vs_untrained_with_one_pair_is_not_computable(tmp_path):
    records = load_records(_twins(tmp_path, [0.05], [0.06]), "exp2")
    row = compare_paired_weights(records, METRICS, 0.05).iloc[0]
    assert row["n_pairs"] == 1 and math.isnan(row["p_value"]) and "1 pair(s)" in row["test_note"]


def test_twins_with_different_seeds_are_rejected(tmp_path):
    paths = _twins(tmp_path, [0.05, 0.06], [0.06, 0.07])
    metrics = json.loads(paths[1].read_text())
    metrics["job"]["seed"] += 1
    paths[1].write_text(json.dumps(metrics))
    with pytest.raises(ValueError, match="different seeds"):
        compare_paired_weights(load_records(paths, "exp2"), METRICS, 0.05)


def test_records_reject_other_experiments_duplicates_and_broken_files(tmp_path):
    a = write_metrics(tmp_path / "a", experiment="exp1", fish="f", model="lstm", rmse=0.1, pearson_r=0.1)
    b = write_metrics(tmp_path / "b", experiment="exp1", fish="f", model="lstm", rmse=0.2, pearson_r=0.1)
    c = write_metrics(tmp_path, experiment="exp2", fish="f", model="lstm", rmse=0.1, pearson_r=0.1)
    with pytest.raises(MetricsFileError, match="other experiments"):
        load_records([a, c], "exp1")
    with pytest.raises(MetricsFileError, match="duplicate"):
        load_records([a, b])
    broken = tmp_path / "broken.json"
    broken.write_text(json.dumps({"job": {}, "test": {}}))
    with pytest.raises(MetricsFileError, match="broken.json"):
        load_records([broken])


def test_beyond_training_mean_is_a_t_interval_over_runs():
    import pandas as pd

    from pipeline.stats.comparisons import beyond_training_mean

    records = pd.DataFrame({"fish": ["f1"] * 3 + ["f2"] * 3, "seq_len": 5, "model": "lstm",
                            "rmse": [0.40, 0.42, 0.41, 0.50, 0.52, 0.47],
                            "mean_predictor_rmse": [0.5] * 6})
    result = beyond_training_mean(records).set_index("fish")
    difference = np.array([-0.10, -0.08, -0.09])
    half = stats.t.ppf(0.975, 2) * difference.std(ddof=1) / np.sqrt(3)
    assert result.loc["f1", "ci_high"] == pytest.approx(difference.mean() + half)
    assert result.loc["f1", "beats_mean"] and not result.loc["f2", "beats_mean"]  # f2 straddles zero
