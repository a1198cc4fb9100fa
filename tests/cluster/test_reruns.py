"""What reruns when (docs/architecture.md): dry runs against the session's finished local run
of .test/config (tests/cluster/conftest.py) count the jobs each change plans. Snakemake's
default rerun triggers (mtime, params, input, code, software-env) are in force; the profiles do
not change them."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pytest
import yaml

from cluster import planned_jobs, planned_wildcards, snakemake

pytestmark = [pytest.mark.slow, pytest.mark.ci]  # CI runs it (bin/test: the budget rule)

# .test/config: one fish of 2 planes; decoders reservoir, lstm, gpt2_tiny; salience of lstm;
# sessions sesA and sesB (held out); NEDS variants multimodal and encoding, multi-session models.
FISH_PREPROCESSING = {
    "synth_zebrafish": 1, "synth_zebrafish_plane": 2, "inventory_fish": 1, "align_behavior": 1,
    "motion_correct": 2, "extract_plane": 2, "neural_file": 1, "imaging_quality": 1,
}
FISH_SALIENCE = {"salience": 1, "salience_summary": 1}  # salience of the lstm on every fish
# Aggregates (each one job over all recordings / models) and the default target.
MODEL_COMPARISON_TABLE = {"evaluate_model_comparison": 1, "all": 1}  # Table 1 / Fig. 2a
TRACE_FIGURE = {"plot_test_traces": 1}  # Fig. 2c: test traces of evaluation.trace_fish, every model
NEDS_AGGREGATES = {"neds_rrr": 1, "neds_region": 1, "neds_report": 1, "all": 1}  # neds_rrr: multi-session
# What depends on every session's binned file: its baselines and single-session models (2
# variants), the multi-session pretraining (NEDS, NDT2, POYO+) and the fine-tuning on the
# held-out session (sesB) that follows; NDT2 and POYO on the held-out session alone.
SESSION_INPUTS = {"synth_ibl_session": 1, "inventory_session": 1, "bin_ibl_session": 1}
MULTI_SESSION = {"neds_pretrain": 1, "neds_finetune": 1, "neds_baseline_pretrain": 2, "neds_baseline_finetune": 2}


@contextmanager
def edited(path: Path, edit):
    """Apply `edit` (text -> text) to a file for the duration of the block; then restore its
    text and its mtime (Snakemake's code trigger for script rules is the script's mtime)."""
    original, stat = path.read_text(), path.stat()
    path.write_text(edit(original))
    try:
        yield
    finally:
        path.write_text(original)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))


def edit_config(change):
    def edit(text):
        config = yaml.safe_load(text)
        change(config)
        return yaml.safe_dump(config, sort_keys=False)
    return edit


def plan(run) -> dict[str, int]:
    result = snakemake(run.workdir, "-n", snakefile=run.snakefile)
    assert result.returncode == 0, result.stdout[-3000:]
    return planned_jobs(result.stdout)


def test_a_finished_run_has_nothing_to_do(finished_local_run):
    assert plan(finished_local_run) == {}


def test_adding_a_fish_plans_its_preprocessing_and_training_and_the_aggregates(finished_local_run):
    table = finished_local_run.workdir / "config" / "fish.tsv"
    with edited(table, lambda text: text + text.splitlines()[1].replace("fishA", "fishB") + "\n"):
        result = snakemake(finished_local_run.workdir, "-n", snakefile=finished_local_run.snakefile)
        assert planned_jobs(result.stdout) == {**FISH_PREPROCESSING, "train_decoder": 3, **FISH_SALIENCE,
                                               **MODEL_COMPARISON_TABLE}
        # one training job per model, all of the new fish
        jobs = planned_wildcards(result.stdout, "train_decoder")
        assert sorted((job["fish"], job["model"]) for job in jobs) == [
            ("fishB", "gpt2_tiny"), ("fishB", "lstm"), ("fishB", "reservoir")]
        assert [job["fish"] for job in planned_wildcards(result.stdout, "salience")] == ["fishB"]


def test_adding_a_session_plans_its_jobs_and_the_aggregates(finished_local_run):
    # that session's jobs, and (NEDS) its models, a new pretraining (it joins the pretraining
    # sessions) and what depends on the pretrained models
    table = finished_local_run.workdir / "config" / "sessions.tsv"
    with edited(table, lambda text: text + text.splitlines()[1].replace("sesA", "sesC") + "\n"):
        result = snakemake(finished_local_run.workdir, "-n", snakefile=finished_local_run.snakefile)
        assert planned_jobs(result.stdout) == {**SESSION_INPUTS, "neds_baselines": 1, "neds_train_single": 2,
                                               **MULTI_SESSION, **NEDS_AGGREGATES}
        for rule in [*SESSION_INPUTS, "neds_baselines", "neds_train_single"]:
            assert {job["session"] for job in planned_wildcards(result.stdout, rule)} == {"sesC"}, rule


def test_adding_a_model_plans_only_its_training_and_the_aggregates(finished_local_run):
    def add_model(config):
        config["nlp4neuro"]["models"]["lstm_wide"] = {"kind": "lstm", "architecture": {"hidden_size": 24}}
        config["nlp4neuro"]["experiments"]["model_comparison"]["models"].append("lstm_wide")

    with edited(finished_local_run.workdir / "config" / "config.yaml", edit_config(add_model)):
        result = snakemake(finished_local_run.workdir, "-n", snakefile=finished_local_run.snakefile)
        assert planned_jobs(result.stdout) == {"train_decoder": 1, **MODEL_COMPARISON_TABLE, **TRACE_FIGURE}
        assert [job["model"] for job in planned_wildcards(result.stdout, "train_decoder")] == ["lstm_wide"]


def test_changing_one_models_hyperparameter_reruns_only_its_training(finished_local_run):
    def change(config):  # the reservoir: no salience job reads it
        config["nlp4neuro"]["models"]["reservoir"]["architecture"]["reservoir_size"] = 40

    with edited(finished_local_run.workdir / "config" / "config.yaml", edit_config(change)):
        result = snakemake(finished_local_run.workdir, "-n", snakefile=finished_local_run.snakefile)
        assert planned_jobs(result.stdout) == {"train_decoder": 1, **MODEL_COMPARISON_TABLE, **TRACE_FIGURE}
        assert [job["model"] for job in planned_wildcards(result.stdout, "train_decoder")] == ["reservoir"]


def test_readme_docs_and_pipeline_modules_rerun_nothing(finished_local_run):
    code = finished_local_run.snakefile.parent
    append = lambda text: text + "\n# edited by test_reruns\n"  # noqa: E731
    with edited(code / "README.md", append), edited(code / "docs" / "architecture.md", append), \
            edited(code / "src" / "pipeline" / "ibl" / "binning.py", append), \
            edited(code / "src" / "pipeline" / "train" / "loop.py", append):
        assert plan(finished_local_run) == {}


def test_editing_a_rule_script_reruns_that_rule_and_downstream(finished_local_run):
    # the positive control of the test above: the code trigger is live (both sessions rebinned)
    script = finished_local_run.snakefile.parent / "workflow" / "scripts" / "bin_ibl_session.py"
    with edited(script, lambda text: text + "\n# edited by test_reruns\n"):
        assert plan(finished_local_run) == {
            "bin_ibl_session": 2, "neds_baselines": 2, "neds_train_single": 4, "neds_ndt2": 1, "neds_poyo": 1,
            **MULTI_SESSION, **NEDS_AGGREGATES}
