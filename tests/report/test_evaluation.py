"""The aggregation stages on fabricated training outputs: Tables 1-3 and Figs. 2a-c, 3
(files, contents, column-width figures with readable fonts)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.text import Text
from PIL import Image
from scipy import stats

from fabricated_jobs import write_metrics, write_predictions
from pipeline.report import figures
from pipeline.report.evaluation import (
    embeddings_stage,
    model_comparison_stage,
    pretrained_vs_untrained_stage,
    traces_stage,
)
from pipeline.report.figures import COLUMN_WIDTH_IN, MIN_FONT_PT, confidence_band
from pipeline.report.tables import format_mean_sem

MODELS = ["reservoir", "lstm", "gpt2_small"]
EMBEDDINGS = ["linear", "sinusoidal", "relative", "laplacian", "sparse_ae"]


def outputs(tmp_path, stem):
    tables = {fmt: tmp_path / f"{stem}.{fmt}" for fmt in ("csv", "tex", "md")}
    return dict(tables=tables, figure_pdf=tmp_path / f"{stem}.pdf", figure_png=tmp_path / f"{stem}.png")


def assert_column_width_png(path):
    width_in = Image.open(path).size[0] / 300
    assert 0.8 * COLUMN_WIDTH_IN < width_in < 1.3 * COLUMN_WIDTH_IN, width_in


@pytest.fixture
def fonts_used(monkeypatch):
    """Font sizes of every text drawn by the figures saved in the test."""
    sizes = []
    original = figures.save_figure

    def recording_save(figure, pdf, png):
        figure.canvas.draw()
        texts = figure.findobj(lambda artist: isinstance(artist, Text) and artist.get_visible() and artist.get_text())
        sizes.extend(text.get_fontsize() for text in texts)
        original(figure, pdf, png)

    monkeypatch.setattr("pipeline.report.evaluation.save_figure", recording_save)
    return sizes


def test_table1_and_fig2a(tmp_path, fonts_used):
    rng = np.random.default_rng(0)
    paths = []
    for model, level in zip(MODELS, (0.25, 0.05, 0.06)):
        for fish in ("fish01", "fish02"):
            for seq_len in (5, 10):
                for run in range(3):
                    paths.append(write_metrics(tmp_path / "jobs", experiment="exp1", fish=fish, model=model,
                                               seq_len=seq_len, run=run, rmse=level + 0.002 * rng.standard_normal(),
                                               pearson_r=0.3 - level))
    out = outputs(tmp_path, "table1")
    model_comparison_stage(paths, "exp1", MODELS, 0.05, **out)
    csv = pd.read_csv(out["tables"]["csv"], comment="#")
    baselines = csv[csv["test_note"] == "baseline"]
    csv = csv[csv["test_note"] != "baseline"]
    assert len(csv) == len(MODELS) * 2 * 2 and set(csv["n"]) == {6}
    # baseline rows: one per baseline, L and metric, over the 2 fish (fabricated ridge RMSE 0.3)
    assert len(baselines) == 3 * 2 * 2 and set(baselines["n"]) == {2}
    ridge = baselines[(baselines["model"] == "baseline: ridge") & (baselines["metric"] == "rmse")]
    assert list(ridge["mean"]) == pytest.approx([0.3, 0.3])
    md = out["tables"]["md"].read_text()
    assert "| baseline: stimulus only | 5 | 2 | 2 | 0.450 ± 0.000 | – |" in md and "Baseline rows (n = fish" in md
    # every fabricated decoder is far below the training mean's 0.5 rad on both fish
    assert "Beyond the training mean, per fish" in md and "fish01: 6 of 6 (model, L) cells, best lstm L" in md
    reservoir_l5 = csv[(csv["model"] == "reservoir") & (csv["seq_len"] == 5) & (csv["metric"] == "rmse")].iloc[0]
    cell = format_mean_sem(reservoir_l5["mean"], reservoir_l5["sem"])
    assert reservoir_l5["significant"] and f"| reservoir | 5 | 6 | 2 | {cell} | " in md
    assert "Holm-Bonferroni" in md and "Mann-Whitney U" in md and "36 metrics files, 2 fish" in md
    assert out["figure_pdf"].stat().st_size > 0
    assert_column_width_png(out["figure_png"])
    assert min(fonts_used) >= MIN_FONT_PT


def test_table1_with_one_run_per_cell_says_not_computable(tmp_path):
    paths = [write_metrics(tmp_path / "jobs", experiment="exp1", fish="fish01", model=model, rmse=0.1 * (i + 1),
                           pearson_r=0.1) for i, model in enumerate(MODELS)]
    out = outputs(tmp_path, "table1")
    model_comparison_stage(paths, "exp1", MODELS, 0.05, **out)
    md = out["tables"]["md"].read_text()
    assert "| lstm | 5 | 1 | 1 | 0.200 ± n/a | n.c. |" in md
    assert "n.c.: test not computable (1 fish with both arms (needs >= 2); n = 1 vs 1 (needs >= 2 each))" in md
    csv = pd.read_csv(out["tables"]["csv"], comment="#")
    assert csv["p_value"].isna().all()


def test_table2_and_fig2b(tmp_path, fonts_used):
    paths = []
    pre = {"bert": [0.050, 0.052, 0.049, 0.051], "smollm2": [0.06, 0.061, 0.059, 0.06]}
    for model, values in pre.items():
        for run, value in enumerate(values):
            for weights, rmse in (("pretrained", value), ("untrained", value + 0.01 + 0.001 * run)):
                paths.append(write_metrics(tmp_path / "jobs", experiment="exp2", fish="fish01", model=model,
                                           weights=weights, run=run, rmse=rmse, pearson_r=0.1))
    paths.append(write_metrics(tmp_path / "jobs", experiment="exp2", fish="fish01", model="gpt2_small", run=0,
                               rmse=0.07, pearson_r=0.0))
    out = outputs(tmp_path, "table2")
    comparison = pretrained_vs_untrained_stage(paths, "exp2", ["bert", "smollm2", "gpt2_small"], 0.05, **out)
    rmse = comparison[comparison["metric"] == "rmse"].set_index("model")
    # four pairs, all untrained worse: exact p = 2/16 per model; Holm over 2 cells -> 0.25
    assert rmse.loc["bert", "p_value"] == pytest.approx(0.125) and rmse.loc["bert", "p_adjusted"] == pytest.approx(0.25)
    md = out["tables"]["md"].read_text()
    assert "Wilcoxon signed-rank" in md and "paired by (fish, run)" in md and "Mann-Whitney U" in md
    assert "Baselines, RMSE (rad) on the same test windows" in md and "L 5 ridge 0.300" in md
    assert "Not in the table (no pretrained weights, untrained only): gpt2_small." in md
    assert_column_width_png(out["figure_png"])
    assert min(fonts_used) >= MIN_FONT_PT


def test_table3_and_fig3(tmp_path, fonts_used):
    paths = []
    for model in ("bert", "gpt2_small"):
        for k, embedding in enumerate(EMBEDDINGS):
            for run in range(3):
                paths.append(write_metrics(tmp_path / "jobs", experiment="exp3", fish="fish01", model=model,
                                           embedding=embedding, run=run, rmse=0.1 + 0.01 * k + 0.001 * run,
                                           pearson_r=0.1))
    paths.append(write_metrics(tmp_path / "jobs", experiment="exp3", fish="fish01", model="lstm", run=0,
                               rmse=0.1, pearson_r=0.1))  # linear only: nothing to compare
    out = outputs(tmp_path, "table3")
    comparison = embeddings_stage(paths, "exp3", ["bert", "gpt2_small", "lstm"], EMBEDDINGS, 0.05, **out)
    assert set(comparison["model"]) == {"bert", "gpt2_small"}
    rmse = comparison[(comparison["metric"] == "rmse") & (comparison["model"] == "bert")].set_index("embedding")
    assert rmse["best_arm"].iloc[0] == "linear"
    expected = stats.mannwhitneyu([0.12, 0.121, 0.122], [0.1, 0.101, 0.102]).pvalue
    assert rmse.loc["laplacian", "p_value"] == pytest.approx(expected)
    md = out["tables"]["md"].read_text()
    assert "| baseline | baseline: ridge | 5 | 1 | 1 | – |" in md and "| bert | relative | 5 | 3 | 1 | 10 |" in md
    assert_column_width_png(out["figure_png"])
    assert min(fonts_used) >= MIN_FONT_PT


def test_confidence_band_is_the_t_interval_over_runs():
    samples = np.array([[1.0, 2.0], [2.0, 2.0], [3.0, 5.0]])
    mean, low, high = confidence_band(samples)
    half = stats.t.ppf(0.975, 2) * samples.std(axis=0, ddof=1) / np.sqrt(3)
    np.testing.assert_allclose(mean, [2.0, 3.0])
    np.testing.assert_allclose(high - mean, half) and np.testing.assert_allclose(mean - low, half)
    _, low_one, _ = confidence_band(samples[:1])
    assert np.isnan(low_one).all()


def test_fig2c_traces(tmp_path, fonts_used):
    predictions = {model: [write_predictions(tmp_path / "jobs", experiment="exp1", fish="fish01", model=model, run=run,
                                             rng_seed=run) for run in range(3)] for model in MODELS}
    pdf, png = tmp_path / "fig2c.pdf", tmp_path / "fig2c.png"
    traces_stage(predictions, "fish01", 5, 40, pdf, png)
    assert pdf.stat().st_size > 0
    assert_column_width_png(png)
    baselines = figures.read_tail_sum_traces("lstm", predictions["lstm"]).baselines
    assert set(baselines) == {"ridge", "stimulus"} and not baselines["stimulus"].any()
    assert min(fonts_used) >= MIN_FONT_PT


def test_fig2c_rejects_runs_with_different_test_frames(tmp_path):
    paths = [write_predictions(tmp_path / "jobs", experiment="exp1", fish="fish01", model="lstm", run=0),
             write_predictions(tmp_path / "jobs", experiment="exp1", fish="fish01", model="lstm", run=1, n_frames=50)]
    with pytest.raises(ValueError, match="test frames differ"):
        traces_stage({"lstm": paths}, "fish01", 5, 0, tmp_path / "f.pdf", tmp_path / "f.png")


def test_table1_takes_the_pretrained_arm_of_its_own_experiment_and_names_its_protocol(tmp_path):
    """paper.yaml: Table 1 from the Exp. 2 jobs (5 epochs, batch 32, 70:10:20), Fig. 2a from Exp. 1."""
    exp1 = [write_metrics(tmp_path / "jobs", experiment="exp1", fish="fish01", model=model, run=run,
                          rmse=0.1 + 0.01 * run, pearson_r=0.1) for model in ("lstm", "bert") for run in range(2)]
    exp2 = [write_metrics(tmp_path / "jobs", experiment="exp2", fish="fish01", model="bert", weights=weights,
                          run=run, rmse=rmse + 0.001 * run, pearson_r=0.2, epochs=5, batch_size=32,
                          split_fractions=(0.7, 0.1, 0.2))
            for weights, rmse in (("pretrained", 0.05), ("untrained", 0.09)) for run in range(2)]
    exp2 += [write_metrics(tmp_path / "jobs", experiment="exp2", fish="fish01", model="lstm", run=run, rmse=0.07,
                           pearson_r=0.1, epochs=5, batch_size=32, split_fractions=(0.7, 0.1, 0.2))
             for run in range(2)]
    out = outputs(tmp_path, "table1")
    comparison = model_comparison_stage(exp1, "exp1", ["lstm", "bert"], 0.05, **out, table_metrics=exp2,
                                        table_experiment="exp2", table_model_order=["lstm", "bert"])
    rmse = comparison[comparison["metric"] == "rmse"].set_index("model")
    assert rmse.loc["bert", "mean"] == pytest.approx(0.0505) and (rmse["n"] == 2).all()
    md = out["tables"]["md"].read_text()
    assert "Experiment 'exp2'" in md and "bert pretrained" in md and "lstm untrained" in md
    assert "Protocol: 5 epochs, batch 32, learning rate 0.0001, chronological train:val:test split 70:10:20 %" in md
    assert "Fish-level columns (fish = the unit; n = fish)" in md


FOLD_OFFSETS = (0.0, 0.02, 0.08)  # RMSE added in folds 0, 1, 2 (a drift over the recording)


def _cv_jobs(root, models=("lstm", "gpt2_small"), weights=("untrained",), skip_fold=None):
    paths = []
    for m, model in enumerate(models):
        for fish in ("fish01", "fish02"):
            for run in range(2):
                for fold, offset in enumerate(FOLD_OFFSETS):
                    if (model, fish, run, fold) == skip_fold:
                        continue
                    for w, arm in enumerate(weights):
                        paths.append(write_metrics(root, experiment="cv", fish=fish, model=model, weights=arm,
                                                   run=run, fold=fold, cv_folds=len(FOLD_OFFSETS),
                                                   rmse=0.1 + 0.05 * m + 0.01 * w + offset + 0.001 * run,
                                                   pearson_r=0.2 - offset, split_fractions=(0.7, 0.1, 0.2)))
    return paths


def test_blocked_cv_tables_show_the_fold_mean_and_spread_and_test_fold_means(tmp_path):
    """Under blocked cross-validation each (fish, run) is one replicate (its folds averaged):
    n counts replicates, the test sees fold means, and the table adds the range of the
    per-fold means with a footer saying folds are not independent replicates."""
    paths = _cv_jobs(tmp_path / "jobs")
    out = outputs(tmp_path, "table1")
    comparison = model_comparison_stage(paths, "cv", ["lstm", "gpt2_small"], 0.05, **out)
    rmse = comparison[comparison["metric"] == "rmse"].set_index("model")
    fold_mean = np.mean(FOLD_OFFSETS)
    assert rmse.loc["lstm", "n"] == 4 and rmse.loc["lstm", "n_folds"] == 3  # 2 fish x 2 runs, not 12 jobs
    assert rmse.loc["lstm", "mean"] == pytest.approx(0.1 + fold_mean + 0.0005)
    assert rmse.loc["lstm", ["fold_min", "fold_max"]].tolist() == pytest.approx([0.1005, 0.1805])
    replicate_means = {m: [0.1 + 0.05 * i + fold_mean + 0.001 * run for _ in range(2) for run in range(2)]
                       for i, m in enumerate(("lstm", "gpt2_small"))}
    expected = stats.mannwhitneyu(replicate_means["gpt2_small"], replicate_means["lstm"], alternative="two-sided")
    assert rmse.loc["gpt2_small", "p_value"] == pytest.approx(expected.pvalue)
    md = out["tables"]["md"].read_text()
    assert "RMSE fold min–max" in md and "| 0.101–0.180 |" in md
    assert "Blocked 3-fold cross-validation" in md and "not independent replicates" in md
    assert "blocked 3-fold cross-validation (validation 10 %" in md  # the protocol line
    assert_column_width_png(out["figure_png"])  # Fig. 2a with the per-fold ranges


def test_a_missing_fold_is_an_error_naming_the_replicate(tmp_path):
    paths = _cv_jobs(tmp_path / "jobs", skip_fold=("lstm", "fish02", 1, 2))
    with pytest.raises(ValueError, match=r"2 of 3 cross-validation folds of lstm untrained-linear L5 run 1 \(fish02\)"):
        model_comparison_stage(paths, "cv", ["lstm", "gpt2_small"], 0.05, **outputs(tmp_path, "t1"))


def test_table2_labels_each_arm_and_carries_the_fold_spread(tmp_path):
    paths = _cv_jobs(tmp_path / "jobs", models=("smollm2",), weights=("pretrained", "untrained", "scratch_full"))
    out = outputs(tmp_path, "table2")
    comparison = pretrained_vs_untrained_stage(paths, "cv", ["smollm2"], 0.05, **out)
    rmse = comparison[comparison["metric"] == "rmse"].set_index("reference")
    assert set(rmse.index) == {"untrained", "scratch_full"}
    assert rmse.loc["scratch_full", "reference_mean"] == pytest.approx(0.12 + np.mean(FOLD_OFFSETS) + 0.0005)
    assert rmse.loc["untrained", "n_pairs"] == 4
    assert rmse.loc["scratch_full", ["reference_fold_min", "reference_fold_max"]].tolist() == pytest.approx(
        [0.1205, 0.2005])
    md = out["tables"]["md"].read_text()
    assert "untrained, same trainable set" in md and "from scratch, all weights" in md
    assert "RMSE other arm fold min–max" in md
