"""The pipeline through a real SLURM (bin/slurm-local, `--profile profiles/slurm`): every
job but the local rules is an sbatch submission, the results equal a local run's, and a
failing rule is reported as failed after a retry that asked SLURM for more memory."""

from __future__ import annotations

import json
import re
import subprocess
import time

import h5py
import numpy as np
import pytest

from cluster import (ONE_TRAINING_THREAD, copy_workflow, finish, grouped_rules, new_workdir, planned_jobs, slurm_job,
                     snakemake, start_snakemake, submitted_jobs)

pytestmark = [pytest.mark.slow, pytest.mark.ci]  # CI runs it (bin/test: the budget rule)

BAD_FISH_TABLE = (
    "fish_id\tinput_type\ttiff\tsuite2p_dir\ttail_log\tstimulus_log\tframe_times\tregion_table\t"
    "volume_rate_hz\tn_planes\tpixel_size_um\tplane_spacing_um\ttail_rate_hz\n"
    "bad\ttiff\tdata/plane{plane}.tif\t\tdata/tail_log.csv\tdata/stimulus_log.csv\tdata/frame_times.csv\t\t"
    "1.1\t1\t1.2\t7.0\t200\n"
)


def test_small_config_runs_through_slurm_like_a_local_run_and_a_failing_rule_is_reported(slurm, request, tmp_path):
    # Three runs at once: on the test cluster the cluster config and a fish whose raw stack is
    # corrupt, and locally .test/config, of which the cluster config is a part (the session
    # fixture finished_local_run, asked for once the SLURM runs are under way: conftest runs
    # this test before the other tests that use it). The SLURM run leaves cores idle (sbatch,
    # job starts, status checks every 2 s, a fish chain of one job at a time) and the local
    # run's jobs fill them. The runs share no files, and no result depends on their timing.
    snakefile = copy_workflow(tmp_path / "code")  # a snapshot: edits to the checkout during the run do not matter
    workdir = new_workdir(tmp_path / "work")
    bad_workdir = new_workdir(tmp_path / "bad")
    (bad_workdir / "config" / "fish.tsv").write_text(BAD_FISH_TABLE)
    (bad_workdir / "data").mkdir()
    (bad_workdir / "data" / "plane0.tif").write_bytes(b"this is not a TIFF file" * 100)
    target = "results/imaging/bad/plane0/registered.h5"

    start = time.monotonic()
    failing = start_snakemake(bad_workdir, "--retries", "1", target, snakefile=snakefile, profile="slurm",
                              timeout=900)
    # training with one thread, as in the local run (ONE_TRAINING_THREAD)
    on_slurm = start_snakemake(workdir, *ONE_TRAINING_THREAD, snakefile=snakefile, profile="slurm", timeout=900)
    try:
        finished_local_run = request.getfixturevalue("finished_local_run")
    except BaseException:  # no local run to compare with: stop the SLURM runs (finish cancels their jobs)
        for process in (on_slurm, failing):
            process.terminate()
            finish(process)
        raise
    result = finish(on_slurm)
    wall_s = time.monotonic() - start
    failed = finish(failing)
    print(f"\nwall time side by side: .test/config locally {finished_local_run.wall_s:.0f} s, "
          f"its part the cluster config on slurm {wall_s:.0f} s (next to the failing run)")

    check_cluster_run(result, workdir, finished_local_run)
    again = snakemake(workdir, "-n", snakefile=snakefile, profile="slurm")
    assert again.returncode == 0 and "Nothing to be done" in again.stdout, again.stdout[-3000:]
    check_failed_run(failed, bad_workdir, target, snakefile)


def check_cluster_run(result, workdir, finished_local_run):
    assert result.returncode == 0, result.stdout[-5000:]
    # Every job but the local rules (the default target, aggregation and plots) went through
    # sbatch -- the short CPU jobs batched in group jobs (profiles/slurm: group-components),
    # each other job on its own -- and SLURM ran each to completion.
    planned = planned_jobs(result.stdout)
    local_rules = set(re.findall(r"^localrule (\w+):", result.stdout, re.MULTILINE))
    assert "all" in local_rules
    grouped = grouped_rules(result.stdout)
    assert set(grouped.values()) == {"cpu_inputs", "cpu_training"}
    assert {"synth_zebrafish", "bin_ibl_session", "train_decoder"} <= set(grouped)
    submitted = submitted_jobs(result.stdout)
    assert {rule: len(ids) for rule, ids in submitted.items() if not rule.startswith("group_")} == {
        rule: n for rule, n in planned.items() if rule not in local_rules | set(grouped)}
    for group in set(grouped.values()):  # one submission each: all its jobs fit in one (<= group-components)
        assert len([kind for kind in submitted if kind.startswith(f"group_{group}_")]) == 1, group
    for ids in submitted.values():
        for job_id in ids:
            assert slurm_job(job_id)["JobState"] == "COMPLETED", job_id

    # The same jobs with the same seeds (the cluster config is the part of .test/config with
    # fishA, sesA and the lstm): the same numbers as the local run.
    local = finished_local_run.workdir / "results"
    cluster = workdir / "results"
    for path, dataset in [("neural/fishA.h5", "neurons/dff"), ("behavior/fishA.h5", "tail/theta"),
                          ("ibl/binned/sesA.h5", "spikes/counts"), ("imaging/fishA/plane0/registered.h5", "rigid_shift_px")]:
        with h5py.File(local / path) as a, h5py.File(cluster / path) as b:
            np.testing.assert_allclose(b[dataset][()], a[dataset][()], rtol=1e-5, atol=1e-6, err_msg=path)
    metrics = "nlp4neuro/model_comparison/fishA/lstm/untrained-linear/L5/run0/metrics.json"
    local_metrics, cluster_metrics = (json.loads((root / metrics).read_text()) for root in (local, cluster))
    for key in ["rmse", "frame_rmse", "tail_sum_pearson_r", "per_segment_rmse"]:
        assert cluster_metrics["test"][key] == pytest.approx(local_metrics["test"][key], rel=1e-5), key
    assert [h["val_loss"] for h in cluster_metrics["history"]] == pytest.approx(
        [h["val_loss"] for h in local_metrics["history"]], rel=1e-5)


def check_failed_run(result, workdir, target, snakefile):
    assert result.returncode != 0, result.stdout[-3000:]
    assert "Error in rule motion_correct" in result.stdout
    ids = submitted_jobs(result.stdout)["motion_correct"]
    assert len(ids) == 2  # the first attempt and one retry, both through sbatch
    jobs = [slurm_job(job_id) for job_id in ids]
    assert [job["JobState"] for job in jobs] == ["FAILED", "FAILED"]
    assert [job["MinMemoryNode"] for job in jobs] == ["4000M", "8000M"]  # mem_mb = 4000 * attempt
    # The job's log names the file and the problem; nothing is left that a later run would trust.
    log = (workdir / "results/logs/motion_correct/bad/plane0.log").read_text()
    assert "data/plane0.tif: cannot read TIFF" in log
    assert not (workdir / target).exists()
    plan = snakemake(workdir, "-n", target, snakefile=snakefile)
    assert planned_jobs(plan.stdout) == {"motion_correct": 1}
    # SLURM itself holds no job of this run any more.
    queue = subprocess.run(["squeue", "-h", "-j", ",".join(ids), "-t", "PENDING,RUNNING"],
                           text=True, capture_output=True).stdout
    assert queue.strip() == ""
