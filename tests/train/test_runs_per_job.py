"""Several runs per training job (``nlp4neuro.runs_per_job`` R): job c of an experiment
holds runs [c R, (c + 1) R), one rule per run range, each run's outputs where its
train_decoder job writes them. With R = 2, three runs plan 2 jobs per (fish, model, ...) and
five runs on a finished workdir plan only the grown chunk [2, 3], the new chunk [4] and the
table that reads them; a chunk's outputs equal the single-run jobs'; an interrupted chunk
keeps its finished run and resumes the interrupted one from its checkpoint."""

from __future__ import annotations

import json
import os
import signal
from collections import Counter
from pathlib import Path

import h5py
import pytest
import torch
import yaml

from helpers import run_snakemake
from pipeline.models.catalog import ModelSpec
from pipeline.train import job as job_module
from pipeline.train.checkpoint import TrainingInterrupted, checkpoint_paths
from pipeline.train.config import TrainingParams
from pipeline.train.experiments import resolve_design
from pipeline.train.job import RUN_OUTPUTS, DecodingJob, run_decoding_job, run_decoding_runs

TABLE = "results/tables/table1_model_comparison.csv"  # reads every model_comparison run's metrics


def test_run_ranges_have_fixed_boundaries_per_experiment():
    section = {"models": {"lstm": {"kind": "lstm"}}, "runs_per_job": 4,
               "experiments": {name: {"models": ["lstm"], "seq_lens": [5], "n_runs": n_runs}
                               for name, n_runs in (("a", 10), ("b", 8), ("c", 2))}}
    assert resolve_design(section).run_chunks() == [
        (range(0, 4), ("a", "b"), ("lstm",)), (range(4, 8), ("a", "b"), ("lstm",)), (range(8, 10), ("a",), ("lstm",)),
        (range(0, 2), ("c",), ("lstm",))]
    assert (range(9, 10), ("a",), ("lstm",)) in resolve_design({**section, "runs_per_job": 1}).run_chunks()
    with pytest.raises(ValueError, match="runs_per_job"):
        resolve_design({**section, "runs_per_job": 0})


def test_a_model_s_runs_per_job_overrides_the_section_s_and_every_run_has_one_rule():
    """Per-model R: a range's rule covers exactly the (experiment, model) pairs chunked that
    way; pairs whose product with others would reach a job of other runs get their own rule."""
    section = {"runs_per_job": 2,
               "models": {"res": {"kind": "reservoir", "runs_per_job": 10}, "lstm": {"kind": "lstm", "runs_per_job": 10},
                          "big": {"kind": "lstm"}, "other": {"kind": "lstm", "runs_per_job": 3}},
               "experiments": {"a": {"models": ["res", "lstm", "big"], "seq_lens": [5], "n_runs": 10},
                               "b": {"models": ["res", "big", "other"], "seq_lens": [5], "n_runs": 3},
                               "c": {"models": ["big"], "seq_lens": [5], "n_runs": 2}}}
    design = resolve_design(section)
    assert design.chunked and design.model_runs_per_job("res") == 10 and design.model_runs_per_job("big") == 2
    rules = design.run_chunks()
    covered = [(experiment, model, run) for runs, experiments, models in rules for experiment in experiments
               for model in models if model in design.experiments[experiment].models for run in runs]
    expected = [(experiment, model, run) for experiment, spec in design.experiments.items() for model in spec.models
                for run in range(spec.n_runs)]
    assert sorted(covered) == sorted(expected)  # every run of every job exactly once
    assert (range(0, 10), ("a",), ("res", "lstm")) in rules
    # runs [0, 3): "res" in b (n_runs 3 < R 10) and "other" in b (R 3) share the range
    assert (range(0, 3), ("b",), ("res", "other")) in rules
    # runs [0, 2): "big" in a, b and c
    assert (range(0, 2), ("a", "b", "c"), ("big",)) in rules
    assert not resolve_design({**section, "runs_per_job": 1, "models": {
        name: {"kind": spec["kind"]} for name, spec in section["models"].items()}}).chunked
    with pytest.raises(ValueError, match="runs_per_job"):
        ModelSpec.from_mapping({"kind": "lstm", "runs_per_job": -1})


def _configure(workdir: Path, n_runs: int, runs_per_job: int) -> None:
    path = workdir / "config" / "config.yaml"
    config = yaml.safe_load(path.read_text())
    config["nlp4neuro"]["runs_per_job"] = runs_per_job
    config["nlp4neuro"]["experiments"]["model_comparison"]["n_runs"] = n_runs
    path.write_text(yaml.safe_dump(config))


def _planned_jobs(stdout: str) -> dict[str, int]:
    table = stdout.split("Job stats:")[1].split("total")[0]
    return {line.split()[0]: int(line.split()[1]) for line in table.splitlines()[3:] if line.strip()}


def test_runs_per_job_plans_chunks_and_more_runs_plan_only_the_grown_and_new_chunks(test_workdir):
    _configure(test_workdir, n_runs=3, runs_per_job=2)
    summary = run_snakemake("--detailed-summary", TABLE, workdir=test_workdir)
    assert summary.returncode == 0, summary.stdout
    rows = [line.split("\t") for line in summary.stdout.splitlines() if line.startswith("results/")]
    outputs = Counter(row[2] for row in rows)
    models = 3  # reservoir, lstm, gpt2_tiny; three outputs per run
    assert outputs["train_decoder_runs0to1"] == models * 2 * 3 and outputs["train_decoder_runs2to2"] == models * 3
    assert not outputs["train_decoder"]
    for output, *_ in rows:  # a finished run: every output exists and its metadata is recorded
        path = test_workdir / output
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch() if "." in path.name else path.mkdir(exist_ok=True)  # directory() outputs have no suffix
    touched = run_snakemake("--touch", "--forceall", "--cores", "1", TABLE, workdir=test_workdir)
    assert touched.returncode == 0, touched.stdout

    _configure(test_workdir, n_runs=5, runs_per_job=2)  # [2] -> [2, 3]; [4] new; [0, 1] unchanged
    planned = run_snakemake("-n", TABLE, workdir=test_workdir)
    assert _planned_jobs(planned.stdout) == {"train_decoder_runs2to3": models, "train_decoder_runs4to4": models,
                                             "evaluate_model_comparison": 1}, planned.stdout


#: a decoder that trains in about a second on one core
LSTM = ModelSpec(kind="lstm", architecture={"hidden_size": 8})
TRAINING = TrainingParams(epochs=2, batch_size=32)


def _jobs(runs):
    return [DecodingJob(experiment="test", fish="synthetic", model="lstm", weights="untrained", embedding="linear",
                        seq_len=5, run=run, seed=100 + run, split_fractions=(0.7, 0.1, 0.2)) for run in runs]


def _hash(job):
    return f"hash-of-run{job.run}"


def _outputs(directory: Path, runs):
    return [tuple(directory / f"run{run}" / name for name in RUN_OUTPUTS) for run in runs]


def _contents(model: Path, predictions: Path, metrics: Path) -> dict:
    """What a run's outputs hold, without the wall-clock figures (performance, each epoch's
    seconds) and the resumption marker."""
    summary = json.loads(metrics.read_text())
    del summary["performance"], summary["resumed_from_epoch"]
    summary["history"] = [{k: v for k, v in epoch.items() if k != "seconds"} for epoch in summary["history"]]
    with h5py.File(predictions, "r") as f:
        arrays = {}
        f.visititems(lambda name, item: arrays.update({name: item[()].tolist()})
                     if isinstance(item, h5py.Dataset) else None)
    state = torch.load(model, map_location="cpu", weights_only=True)["model"]
    return {"metrics": summary, "predictions": arrays, "model": {k: v.tolist() for k, v in state.items()}}


@pytest.fixture
def single_run_outputs(decoding_fish, tmp_path, one_torch_thread):
    """The outputs of runs 0 and 1 trained as two train_decoder jobs."""
    neural, behavior, _ = decoding_fish
    outputs = _outputs(tmp_path / "single", (0, 1))
    for job, files in zip(_jobs((0, 1)), outputs):
        run_decoding_job(neural, behavior, job, LSTM, TRAINING, {}, tmp_path / "single_ckpt" / f"run{job.run}",
                         *files, config_hash=_hash(job), device="cpu")
    return outputs


def test_a_chunk_writes_each_run_as_its_single_run_job_and_resumes_after_an_interruption(
        decoding_fish, single_run_outputs, tmp_path, monkeypatch):
    neural, behavior, _ = decoding_fish
    jobs = _jobs((0, 1))
    expected = [_contents(*files) for files in single_run_outputs]
    assert expected[0]["predictions"] != expected[1]["predictions"]  # the seeds differ

    outputs = _outputs(tmp_path / "chunk", (0, 1))
    run_decoding_runs(neural, behavior, jobs, LSTM, TRAINING, {}, [_hash(j) for j in jobs],
                      tmp_path / "chunk_ckpt", outputs, device="cpu")
    assert [_contents(*files) for files in outputs] == expected
    assert not (tmp_path / "chunk_ckpt").exists()  # removed once every run's outputs are in place

    # SIGTERM (SLURM's time limit) in run 1's first epoch: run 0 is finished, run 1 checkpoints
    real_train = job_module.train_decoder

    def preempted_train(*args, **kwargs):
        def preempt(epoch, batch):
            if (epoch, batch) == (0, 3):
                os.kill(os.getpid(), signal.SIGTERM)
        return real_train(*args, **kwargs, on_batch_end=preempt if args[4] == jobs[1].seed else None)

    monkeypatch.setattr(job_module, "train_decoder", preempted_train)
    interrupted = tmp_path / "interrupted"
    outputs = _outputs(interrupted, (0, 1))
    checkpoints = tmp_path / "interrupted_ckpt"
    with pytest.raises(TrainingInterrupted):
        run_decoding_runs(neural, behavior, jobs, LSTM, TRAINING, {}, [_hash(j) for j in jobs], checkpoints,
                          outputs, device="cpu")
    assert not any(path.exists() for files in outputs for path in files)
    assert checkpoint_paths(checkpoints / "run1" / "training")[0].exists()

    # the retry: run 0 is read back, run 1 resumes from its checkpoint; same outputs
    monkeypatch.setattr(job_module, "train_decoder", real_train)
    trained = []
    monkeypatch.setattr(job_module, "run_decoding_job",
                        lambda *args, **kwargs: trained.append(args[2].run) or run_decoding_job(*args, **kwargs))
    summaries = run_decoding_runs(neural, behavior, jobs, LSTM, TRAINING, {}, [_hash(j) for j in jobs],
                                  checkpoints, outputs, device="cpu")
    assert trained == [1] and summaries[1]["resumed_from_epoch"] > 0
    assert [_contents(*files) for files in outputs] == expected

    # finished runs of other params (the config changed since) are trained afresh
    stale = tmp_path / "stale_ckpt" / "run0" / "finished"
    stale.mkdir(parents=True)
    for path, name in zip(single_run_outputs[0], RUN_OUTPUTS):
        (stale / name).write_bytes(path.read_bytes())
    trained.clear()
    run_decoding_runs(neural, behavior, jobs[:1], LSTM, TRAINING, {}, ["another hash"], tmp_path / "stale_ckpt",
                      _outputs(tmp_path / "stale", (0,)), device="cpu")
    assert trained == [0]
