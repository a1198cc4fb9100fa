"""The Snakemake DAG: it builds, lints clean, rejects bad configs before running any job, and
plans exactly the jobs a change needs. (The end-to-end run of the small CI configuration in
.test/ is tests/cluster/test_local_run.py: the session's one local run, which the cluster
tests share.)"""

from __future__ import annotations

import re
import shutil

import pytest
import yaml

from helpers import run_snakemake


def planned_jobs(output: str) -> dict[str, int]:
    """Rule -> job count from the 'Job stats' table of a dry run."""
    table = output.split("Job stats:")[1].split("total")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.MULTILINE)}


def test_lint_is_clean():
    result = run_snakemake("--lint")
    assert result.returncode == 0, result.stdout
    assert "Congratulations, your workflow is in a good condition" in result.stdout


def test_dry_run_of_the_demo_config():
    result = run_snakemake("-n", "--forceall", "--profile", "profiles/local")
    assert result.returncode == 0, result.stdout
    jobs = planned_jobs(result.stdout)
    assert jobs["synth_zebrafish"] == 2 and jobs["synth_zebrafish_plane"] == 2 * 2  # 2 fish x 2 planes
    assert jobs["synth_ibl_session"] == 3 and jobs["inventory_session"] == 3
    assert jobs["bin_ibl_session"] == 3 and jobs["align_behavior"] == 2
    assert jobs["motion_correct"] == jobs["extract_plane"] == 2 * 2 and jobs["neural_file"] == 2
    assert jobs["neds_train_single"] == 3 and jobs["neds_baselines"] == 3  # multimodal x 3 sessions
    assert jobs["neds_pretrain"] == jobs["neds_finetune"] == jobs["neds_report"] == 1
    assert jobs["neds_ndt2"] == 1  # NDT2 on the held-out session only (where the comparison is scored)
    # multi-session NDT2 and POYO+: one pretraining each, one fine-tuning each per held-out session
    assert jobs["neds_baseline_pretrain"] == jobs["neds_baseline_finetune"] == 2 and "neds_poyo" not in jobs
    # fish02 is handed over as a ScanImage acquisition: interleaved files, then one plane per job
    assert jobs["synth_scanimage"] == 1 and jobs["scanimage_plane"] == 2 and jobs["inventory_fish"] == 2
    # NLP4Neuro, both runs of a decoder in one job (nlp4neuro.runs_per_job 2): Exp. 1 3 models x
    # 1 seq_len x 2 fish, Exp. 2 minilm x 2 weights; Exp. 3 gpt2 x 2 embeddings (1 run each);
    # salience of the LSTM per fish and run
    assert "train_decoder" not in jobs and jobs["train_decoder_runs0to1"] == 6 + 2
    assert jobs["train_decoder_runs0to0"] == 2
    assert jobs["salience"] == 4 and jobs["salience_summary"] == 1
    for aggregate in ("evaluate_model_comparison", "evaluate_pretrained_vs_untrained", "evaluate_embeddings",
                      "plot_test_traces", "neds_region", "neds_rrr"):
        assert jobs[aggregate] == 1, aggregate
    # the five-minute budget (bin/demo on 2 cores): each job's start-up costs seconds, so the
    # number of jobs is what keeps the demo short (the richer grid is config/showcase.yaml)
    assert sum(jobs.values()) <= 70


def test_dry_run_of_the_showcase_config():
    result = run_snakemake("-n", "--forceall", "--profile", "profiles/local", "--configfile", "config/showcase.yaml")
    assert result.returncode == 0, result.stdout
    jobs = planned_jobs(result.stdout)
    # every model family in Exp. 1 (5 models x 2 seq_lens x 2 fish), both language-model families
    # in Exp. 2, two models in Exp. 3, each with its 2 runs in one job (runs_per_job 2); two salience models
    assert "train_decoder" not in jobs and jobs["train_decoder_runs0to1"] == 20 + 4 + 10
    assert jobs["salience"] == 8 and jobs["salience_summary"] == 2
    assert jobs["synth_zebrafish_plane"] == 2 * 3 and jobs["neds_train_single"] == 3
    outputs = [line.split("output:", 1)[1] for line in result.stdout.splitlines() if line.strip().startswith("output:")]
    assert outputs and all(path.strip().startswith("results/showcase/") for line in outputs for path in line.split(","))


def test_dry_run_of_the_paper_config():
    result = run_snakemake("-n", "--forceall", "--configfile", "config/paper.yaml")
    assert result.returncode == 0, result.stdout
    jobs = planned_jobs(result.stdout)
    assert jobs["synth_zebrafish_plane"] == 5 * 5 and jobs["inventory_fish"] == 5
    assert "results/paper/inventory/fish/fish05.json" in result.stdout
    # NEDS search: 5 variants x 12 sessions, 50 draws in jobs of 5 (neds.search.draws_per_job)
    assert jobs["neds_search_chunk"] == 5 * 12 * 50 // 5 and jobs["neds_search_select"] == 5 * 12
    assert "neds_search_draw" not in jobs
    # 2,110 training runs, in jobs of 10 (reservoir, LSTM: 600 runs), 5 (BERT, GPT-2: 940) and 2
    # (DeepSeek 8-bit and NF4: 570) runs (catalog runs_per_job, else nlp4neuro.runs_per_job)
    training = {rule: n for rule, n in jobs.items() if rule.startswith("train_decoder")}
    assert sum(training.values()) == 600 // 10 + 940 // 5 + 570 // 2 and training["train_decoder_runs0to9"] == 60


def test_a_fish_with_existing_suite2p_output_skips_registration_and_extraction(test_workdir):
    table = test_workdir / "config" / "fish.tsv"
    header, row = table.read_text().splitlines()[:2]
    columns = header.split("\t")
    values = dict(zip(columns, row.split("\t")))
    values.update(fish_id="labfish", input_type="suite2p", tiff="", suite2p_dir="/data/lab/suite2p")
    table.write_text("\n".join([header, "\t".join(values[c] for c in columns)]) + "\n")
    result = run_snakemake("-n", workdir=test_workdir)
    # the lab's plane folders are inputs of the neural file; nothing registers or extracts them
    assert result.returncode != 0 and "/data/lab/suite2p/plane0" in result.stdout
    assert "rule motion_correct" not in result.stdout and "rule extract_plane" not in result.stdout


def test_motion_correction_method_is_a_param_of_its_jobs(test_workdir):
    _write_config(test_workdir, **{"motion_correction.method": "suite2p"})
    result = run_snakemake("-n", "-p", "--forceall", "--rerun-triggers", "params", workdir=test_workdir)
    assert result.returncode == 0, result.stdout
    assert planned_jobs(result.stdout)["motion_correct"] == 2


def _write_config(workdir, **changes):
    path = workdir / "config" / "config.yaml"
    config = yaml.safe_load(path.read_text())
    for dotted, value in changes.items():
        node = config
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node.setdefault(key, {})
        node[leaf] = value
    path.write_text(yaml.safe_dump(config))


@pytest.mark.parametrize(
    "changes, expected",
    [
        ({"nlp4neuro.experiments.model_comparison.n_runs": -2}, "n_runs"),
        ({"nlp4neuro.models.lstm.architecture.hidden_size": 0}, "nlp4neuro.models.lstm"),
        ({"synthetic.zebrafish.frame_height_px": "big"}, "frame_height_px"),
        ({"synthetic.ibl.n_trails": 10}, "n_trails"),
        ({"neds.model.depth": 3}, "depth"),
        ({"neds.heldout_sessions": ["sesZ"]}, "sesZ"),
    ],
)
def test_bad_config_fails_before_any_job(test_workdir, changes, expected):
    _write_config(test_workdir, **changes)
    result = run_snakemake("--cores", "1", workdir=test_workdir)
    assert result.returncode != 0
    assert expected in result.stdout
    assert not (test_workdir / "results").exists()


def test_bad_recordings_table_fails_naming_the_file(test_workdir):
    table = test_workdir / "config" / "fish.tsv"
    table.write_text(table.read_text().replace("\t1.1\t", "\t-1.1\t"))
    result = run_snakemake("-n", workdir=test_workdir)
    assert result.returncode != 0
    assert "config/fish.tsv: invalid recordings table" in result.stdout
    assert "volume_rate_hz" in result.stdout


def test_missing_real_recording_is_reported(test_workdir):
    table = test_workdir / "config" / "fish.tsv"
    rows = table.read_text().splitlines()
    rows.append(rows[1].replace("fishA", "fishReal").replace("results/synth/zebrafish/fishReal", "/data/fishReal"))
    table.write_text("\n".join(rows) + "\n")
    result = run_snakemake("-n", workdir=test_workdir)
    assert result.returncode != 0
    assert "Missing input files" in result.stdout and "/data/fishReal/" in result.stdout


def _planned_after(touched_workdir, tmp_path, **changes) -> dict[str, int]:
    """Rule -> jobs a dry run plans on a copy of the finished workdir after the config edits
    (dotted keys, see _write_config); {} when nothing is to be done."""
    workdir = tmp_path / "run"
    shutil.copytree(touched_workdir, workdir, symlinks=True)
    _write_config(workdir, **changes)
    result = run_snakemake("-n", workdir=workdir)
    assert result.returncode == 0, result.stdout
    if "Nothing to be done" in result.stdout:
        return {}
    return planned_jobs(result.stdout)


def test_settings_that_do_not_change_results_rerun_nothing(touched_workdir, tmp_path):
    """Time limit, memory, GPUs, threads and device (resources and runtime settings), keys set to
    their default value, and the config's comments (the file is rewritten without them)."""
    planned = _planned_after(touched_workdir, tmp_path, **{
        "nlp4neuro.models.lstm.runtime_min": 999,
        "nlp4neuro.models.lstm.mem_mb": 64000,
        "nlp4neuro.models.gpt2_tiny.gpus": 1,
        "nlp4neuro.device": "cpu",
        "normcorre.device": "cpu",
        "extraction.device": "cpu",
        "neds.threads": 2,
        "neds.device": "cpu",
        "neds.gpus_per_training_job": 1,  # NEDS training jobs' gpu resource and time limit
        "nlp4neuro.models.lstm.training.max_grad_norm": 1.0,  # TrainingParams default
        "nlp4neuro.models.reservoir.architecture.leak_rate": 0.3,  # ReservoirParams default
        "synthetic.zebrafish.nucleus_diameter_um": 6.0,  # ZebrafishSynthParams default
    })
    assert planned == {}


def test_adding_a_salience_model_plans_only_its_salience_jobs_and_summary(touched_workdir, tmp_path):
    planned = _planned_after(touched_workdir, tmp_path, **{"salience.models": ["lstm", "gpt2_tiny"]})
    assert planned == {"salience": 1, "salience_summary": 1, "all": 1}


@pytest.mark.parametrize(
    "changes, expected",
    [
        # a model's architecture: its training job and everything that reads it
        ({"nlp4neuro.models.lstm.architecture.hidden_size": 32},
         {"train_decoder": 1, "salience": 1, "salience_summary": 1, "evaluate_model_comparison": 1,
          "plot_test_traces": 1, "all": 1}),
        # a salience setting of the jobs, and one of the summary only
        ({"salience.top_k": 6}, {"salience": 1, "salience_summary": 1, "all": 1}),
        ({"salience.example_frame": 4}, {"salience_summary": 1, "all": 1}),
        # a fine-tuning-only key of a multi-session baseline: its fine-tuning, not its pretraining
        ({"neds.poyo_multi_session.finetune_epochs": 2}, {"neds_baseline_finetune": 1, "neds_report": 1, "all": 1}),
        ({"neds.ndt2_multi_session.embed_dim": 16},
         {"neds_baseline_pretrain": 1, "neds_baseline_finetune": 1, "neds_report": 1, "all": 1}),
        ({"neds.poyo.epochs": 2}, {"neds_poyo": 1, "neds_report": 1, "all": 1}),
    ],
)
def test_a_result_key_reruns_exactly_its_jobs(touched_workdir, tmp_path, changes, expected):
    assert _planned_after(touched_workdir, tmp_path, **changes) == expected


def test_a_plain_snakemake_call_works_through_the_default_profile(touched_workdir, tmp_path):
    """No --cores, no --profile: profiles/default/profile.yaml supplies them."""
    workdir = tmp_path / "run"
    shutil.copytree(touched_workdir, workdir, symlinks=True)
    result = run_snakemake(workdir=workdir)
    assert result.returncode == 0 and "Nothing to be done" in result.stdout, result.stdout[-3000:]
