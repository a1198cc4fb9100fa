"""The aggregation rules in the DAG (slow: Snakemake dry runs and a report on a workdir of
the CI configuration .test/config whose every output exists, the training metrics and
predictions fabricated per the file contract).

- adding a fish plans that fish's jobs and the aggregates over it, nothing else (Fig. 2c
  shows one fish and is not among them);
- the aggregation rules run on the finished jobs (one run per cell: Table 1 says the tests
  are not computable), and ``snakemake --report`` builds one HTML file holding them.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pandas as pd
import pytest

from fabricated_jobs import write_metrics, write_predictions
from helpers import run_snakemake

pytestmark = [pytest.mark.slow, pytest.mark.ci]  # CI runs it (bin/test: the budget rule): the only run of the Exp. 2/3 aggregates and the report

JOB_PATH = re.compile(r"results/nlp4neuro/(?P<experiment>[^/]+)/(?P<fish>[^/]+)/(?P<model>[^/]+)/"
                      r"(?P<weights>[^-/]+)-(?P<embedding>[^/]+)/L(?P<seq_len>\d+)/run(?P<run>\d+)/(?P<name>[^/]+)$")
AGGREGATES = {"evaluate_model_comparison", "evaluate_pretrained_vs_untrained", "evaluate_embeddings",
              "plot_test_traces"}


def _fabricate(path: Path) -> None:
    """An output of the DAG: training-job files per contract, directories, empty files."""
    match = JOB_PATH.search(path.as_posix())
    if match:
        job = {key: match[key] for key in ("experiment", "fish", "model", "weights", "embedding")}
        job.update(seq_len=int(match["seq_len"]), run=int(match["run"]))
        root = Path(str(path)[: match.start()]) / "results" / "nlp4neuro"
        if match["name"] == "metrics.json":
            write_metrics(root, **job, rmse=0.05 + 0.01 * len(job["model"]), pearson_r=0.2)
            return
        if match["name"] == "predictions.h5":
            write_predictions(root, **job, n_frames=20)
            return
    if path.suffix == "":
        path.mkdir(parents=True, exist_ok=True)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()


@pytest.fixture(scope="module")
def finished_workdir(tmp_path_factory):
    """A workdir of .test/config where every job's outputs exist and are recorded as up to date."""
    import shutil

    from helpers import REPO

    workdir = tmp_path_factory.mktemp("finished")
    shutil.copytree(REPO / ".test" / "config", workdir / "config")
    summary = run_snakemake("--summary", workdir=workdir)
    assert summary.returncode == 0, summary.stdout[-3000:]
    lines = summary.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("output_file\t"))
    outputs = [workdir / line.split("\t")[0] for line in lines[header + 1:] if "\t" in line]
    assert any(p.name == "metrics.json" for p in outputs)
    past = time.time() - 3600
    for path in outputs:
        _fabricate(path)
        os.utime(path, (past, past))
    touched = run_snakemake("--touch", "--cores", "1", workdir=workdir)  # records every job as complete
    assert touched.returncode == 0, touched.stdout[-3000:]
    return workdir


def planned(output: str) -> list[tuple[str, dict[str, str]]]:
    """(rule, wildcards) of every job in a dry run's output."""
    jobs = []
    for block in re.split(r"^\s*(?:local)?rule ", output, flags=re.MULTILINE)[1:]:
        name, _, body = block.partition(":")
        found = re.search(r"^\s+wildcards: (.*)$", body, re.MULTILINE)
        jobs.append((name, dict(item.split("=", 1) for item in found.group(1).split(", ")) if found else {}))
    return jobs


def test_adding_a_fish_plans_its_jobs_and_the_aggregates_only(finished_workdir):
    table = finished_workdir / "config" / "fish.tsv"
    original = table.read_text()
    table.write_text(original + original.splitlines()[1].replace("fishA", "fishB") + "\n")
    try:
        result = run_snakemake("-n", workdir=finished_workdir)
    finally:
        table.write_text(original)
    assert result.returncode == 0, result.stdout[-3000:]
    jobs = planned(result.stdout)
    without_fish = sorted(rule for rule, wildcards in jobs if "fish" not in wildcards)
    with_fish = {wildcards["fish"] for _, wildcards in jobs if "fish" in wildcards}
    assert with_fish == {"fishB"}
    # the aggregate over every fish reruns; Fig. 2c (fishA's traces) and the other roles do not
    assert [rule for rule in without_fish if rule in AGGREGATES] == ["evaluate_model_comparison"]
    assert set(without_fish) <= AGGREGATES | {"all"} | {r for r in without_fish if r.startswith("salience")}
    trained = sorted(w["model"] for rule, w in jobs if rule == "train_decoder")
    assert trained == ["gpt2_tiny", "lstm", "reservoir"]


def test_aggregates_run_and_the_report_builds(finished_workdir):
    targets = ["results/tables/table1_model_comparison.md", "results/figures/fig2c_test_traces.png"]
    result = run_snakemake("--cores", "1", "--forcerun", "evaluate_model_comparison", "plot_test_traces",
                           *targets, workdir=finished_workdir)
    assert result.returncode == 0, result.stdout[-3000:]
    tables = finished_workdir / "results" / "tables"
    csv = pd.read_csv(tables / "table1_model_comparison.csv", comment="#")
    decoders, baselines = csv[csv["test_note"] != "baseline"], csv[csv["test_note"] == "baseline"]
    assert sorted(decoders["model"].unique()) == ["gpt2_tiny", "lstm", "reservoir"] and set(decoders["n"]) == {1}
    assert sorted(baselines["model"].unique()) == ["baseline: ridge", "baseline: stimulus only",
                                                   "baseline: training mean"]
    assert "not computable" in (tables / "table1_model_comparison.md").read_text()
    for rule in ("evaluate_model_comparison", "plot_test_traces"):
        assert (finished_workdir / "results" / "logs" / rule / f"{rule}.log").exists()
        assert (finished_workdir / "results" / "benchmarks" / rule / f"{rule}.tsv").exists()

    report = finished_workdir / "results" / "report.html"
    built = run_snakemake("--report", str(report), *targets, workdir=finished_workdir)
    assert built.returncode == 0, built.stdout[-3000:]
    html = report.read_text(errors="replace")
    assert "NLP4Neuro decoders" in html
    for name in ("table1_model_comparison.csv", "fig2a_rmse_vs_seq_len.png", "fig2c_test_traces.png"):
        assert name in html, name
