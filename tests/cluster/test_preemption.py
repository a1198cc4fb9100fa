"""Preemption through Snakemake: a training job killed with SIGTERM (what SLURM sends when
it preempts or times out a job) fails, leaves no output, and on the next run resumes from
its checkpoint and ends with the same metrics as an uninterrupted run (seeded, CPU)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
import yaml

from cluster import REPO, finish, planned_jobs, planned_wildcards, snakemake, start_snakemake

pytestmark = [pytest.mark.slow, pytest.mark.ci]  # CI runs it (bin/test: the budget rule)

RUN = "model_comparison/fishA/lstm/untrained-linear/L5/run0"
EPOCHS = 80  # long enough (several seconds) to be interrupted between two checkpoints


def clone(run, destination: Path) -> Path:
    """A copy of the finished run's working directory (results and Snakemake metadata),
    with lstm training for EPOCHS epochs (a param of the lstm job only)."""
    shutil.copytree(run.workdir, destination, symlinks=True, ignore=shutil.ignore_patterns("locks", "incomplete"))
    path = destination / "config" / "config.yaml"
    config = yaml.safe_load(path.read_text())
    config["nlp4neuro"]["models"]["lstm"]["training"] = {"epochs": EPOCHS}
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return destination


def training_process(snakemake_pid: int) -> psutil.Process | None:
    """The train_decoder script process among the descendants of a Snakemake process."""
    for child in psutil.Process(snakemake_pid).children(recursive=True):
        try:
            if any("train_decoder" in part for part in child.cmdline()):
                return child
        except psutil.NoSuchProcess:
            continue
    return None


def test_sigterm_killed_training_resumes_from_its_checkpoint_with_the_same_metrics(finished_local_run, tmp_path):
    snakefile = finished_local_run.snakefile
    reference = clone(finished_local_run, tmp_path / "reference")
    preempted = clone(finished_local_run, tmp_path / "preempted")

    target = f"results/nlp4neuro/{RUN}/metrics.json"  # the job alone (not the tables that aggregate it)
    # The uninterrupted run goes on meanwhile: one training thread each (profiles/local), so
    # the two share the 2 cores; the metrics do not depend on when the interruption came.
    uninterrupted = start_snakemake(reference, "--cores", "2", target, snakefile=snakefile)
    plan = snakemake(preempted, "-n", target, snakefile=snakefile)
    assert planned_jobs(plan.stdout) == {"train_decoder": 1}
    assert [job["model"] for job in planned_wildcards(plan.stdout, "train_decoder")] == ["lstm"]

    # Start the same job, and SIGTERM its training process once a checkpoint exists.
    checkpoint = preempted / "results/nlp4neuro/checkpoints" / RUN / "last.pt"
    metrics = preempted / "results/nlp4neuro" / RUN / "metrics.json"
    # the same profile as the reference and the resumed run: its threads per job decide the
    # float reductions, so a different thread count would change the metrics' last bits
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(snakefile), "--directory", str(preempted),
               "--profile", str(REPO / "profiles" / "local"), "--cores", "2", target]
    process = subprocess.Popen(command, cwd=preempted, text=True, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, env={**os.environ, "PYTHONHASHSEED": "0"})
    try:
        deadline = time.monotonic() + 300
        while not checkpoint.exists() and process.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        trainer = training_process(process.pid)
        assert trainer is not None and checkpoint.exists(), "training ended before it could be interrupted"
        os.kill(trainer.pid, signal.SIGTERM)
        output, _ = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode != 0, output[-3000:]
    assert "Error in rule train_decoder" in output
    log = (preempted / "results/logs/train_decoder" / f"{RUN}.log").read_text()
    assert "received SIGTERM" in log
    assert not metrics.exists() and checkpoint.exists()  # no output to trust; the resume state survives

    resumed = snakemake(preempted, "--cores", "2", target, snakefile=snakefile)
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    result = finish(uninterrupted)
    assert result.returncode == 0, result.stdout[-3000:]
    got = json.loads(metrics.read_text())
    want = json.loads((reference / "results/nlp4neuro" / RUN / "metrics.json").read_text())
    assert got["resumed_from_epoch"] is not None and 0 < got["resumed_from_epoch"] < EPOCHS
    assert want["resumed_from_epoch"] is None
    assert [h["val_loss"] for h in got["history"]] == [h["val_loss"] for h in want["history"]]
    assert got["best_epoch"] == want["best_epoch"]
    for key in ["rmse", "frame_rmse", "tail_sum_pearson_r", "per_segment_rmse"]:
        assert got["test"][key] == want["test"][key], key
