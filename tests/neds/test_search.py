"""Hyperparameter search as DAG jobs: draws are a function of (seed, draw) alone and stay in
the configured ranges; the best validation draw is chosen; a configuration with 3 draws plans
3 draw jobs + 1 selection, and raising it to 5 on a finished run plans exactly the 2 new
draws + the selection (Snakemake's params trigger sees the old draws unchanged)."""

from collections import Counter
from pathlib import Path

import yaml

from helpers import run_snakemake
from pipeline.neds.config import MaskingParams, ModelParams, SearchParams, TrainingParams
from pipeline.neds.search import best_draw, draw_hyperparameters

SELECTED = "results/neds/single/multimodal/sesA/metrics.json"


def test_draws_depend_on_seed_and_draw_only_and_stay_in_range():
    search = SearchParams(draws=3)
    base = (ModelParams(n_heads=2), MaskingParams(), TrainingParams())
    first = [draw_hyperparameters(search, *base, seed=7, draw=d) for d in range(3)]
    assert [draw_hyperparameters(SearchParams(draws=5), *base, seed=7, draw=d) for d in range(3)] == first
    assert len({(m.embed_dim, t.learning_rate) for m, _, t in first}) == 3
    for model, masking, training in first:
        assert 1e-4 <= training.learning_rate <= 1e-3 and 1e-3 <= training.weight_decay <= 0.1
        assert 0.1 <= masking.mask_ratio <= 0.4 and model.embed_dim in (128, 256, 512) and model.n_layers in (5, 6)
        assert training.epochs == TrainingParams().epochs and model.n_heads == 2  # the rest stays configured
    records = [{"training": {"best_val_score": s}} for s in (0.1, 0.7, 0.7, 0.2)]
    assert best_draw(records) == 1


def _configure(workdir: Path, draws: int) -> None:
    path = workdir / "config" / "config.yaml"
    config = yaml.safe_load(path.read_text())
    config["neds"].update(search={"draws": draws}, variants=["multimodal"], masking_ablation=[])
    path.write_text(yaml.safe_dump(config))


def test_three_draws_plan_three_jobs_and_a_selection_and_two_more_plan_only_those(test_workdir):
    _configure(test_workdir, 3)
    summary = run_snakemake("--detailed-summary", SELECTED, workdir=test_workdir)
    assert summary.returncode == 0, summary.stdout
    rows = [line.split("\t") for line in summary.stdout.splitlines() if line.startswith("results/")]
    jobs = Counter(row[2] for row in rows)
    assert jobs["neds_search_draw"] == 2 * 3 and jobs["neds_search_select"] == 2  # two outputs per job
    for output, *_ in rows:  # pretend the run finished: outputs exist, metadata (params) recorded
        (test_workdir / output).parent.mkdir(parents=True, exist_ok=True)
        (test_workdir / output).touch()
    touched = run_snakemake("--touch", "--cores", "1", SELECTED, workdir=test_workdir)
    assert touched.returncode == 0, touched.stdout
    _configure(test_workdir, 5)
    planned = run_snakemake("-n", SELECTED, workdir=test_workdir)
    table = planned.stdout.split("Job stats:")[1].split("total")[0]
    assert {line.split()[0]: int(line.split()[1]) for line in table.splitlines()[3:] if line.strip()} == {
        "neds_search_draw": 2, "neds_search_select": 1}
