"""The slurm profile's site block, applied as the README says to a site with a `cpu` and a
`gpu` partition, sends exactly the jobs that ask for a GPU to `gpu`, every other job to
`cpu`, batches short CPU jobs into group jobs (never with a GPU job), gives every job the
early-warning signal, and asks for time limits and memory that grow per attempt.
Checked on the sbatch lines snakemake-executor-plugin-slurm submits, recorded by stand-in
SLURM commands on PATH (no cluster needed: the stand-in reports every job as failed, so
the run ends right after submitting). Snakemake runs through STEADY_SNAKEMAKE, as in the
other cluster tests: the plugin's back-off would add 10 s to its wait after each status check
that sees no job end, and Snakemake waits that out before it exits."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import subprocess

import yaml

from cluster import STEADY_SNAKEMAKE
from helpers import REPO

STAND_IN = """#!/bin/bash
# Stand-in for a SLURM command: records the call; sbatch answers a new job id, squeue and
# sacct report every job FAILED, scontrol a MinJobAge; the rest answer nothing. One call at
# a time (the plugin submits from several threads).
exec 9>"{dir}/lock"
flock 9
echo "$(basename "$0") $*" >> "{log}"
submitted=$(grep -c '^sbatch ' "{log}")
case "$(basename "$0")" in
  sbatch) echo $((100 + submitted)) ;;
  squeue|sacct) for i in $(seq 1 "$submitted"); do echo "$((100 + i))|FAILED"; done ;;
  scontrol) echo "MinJobAge               = 300 sec" ;;
esac
"""
COMMANDS = ["sbatch", "squeue", "sacct", "scontrol", "sinfo", "sacctmgr", "sshare", "scancel"]
RUN = "model_comparison/fishA/{model}/untrained-linear/L5/run0"


def stand_in_slurm(directory) -> tuple[dict[str, str], object]:
    """PATH with the stand-in commands first, and the file their calls are recorded in."""
    directory.mkdir()
    log = directory / "calls.log"
    for name in COMMANDS:
        path = directory / name
        path.write_text(STAND_IN.format(log=log, dir=directory))
        path.chmod(0o755)
    return {"PATH": f"{directory}:{os.environ['PATH']}"}, log


def site_profile(workdir):
    """README: `cp -r profiles/slurm profiles/mycluster`, uncomment the site block's
    option lines (`# slurm-...`), partitions.yaml as shipped (partitions cpu and gpu)."""
    profile = workdir / "profiles" / "mycluster"
    shutil.copytree(REPO / "profiles" / "slurm", profile)
    config = profile / "config.yaml"
    config.write_text(re.sub(r"^# (slurm-[a-z-]+: )", r"\1", config.read_text(), flags=re.MULTILINE))
    assert yaml.safe_load(config.read_text())["slurm-partition-config"] == "profiles/mycluster/partitions.yaml"
    return profile


def test_site_block_sends_only_gpu_jobs_to_the_gpu_partition_and_batches_short_cpu_jobs(touched_workdir, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(touched_workdir, workdir, symlinks=True)
    config_path = workdir / "config" / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["nlp4neuro"]["models"]["gpt2_tiny"]["gpus"] = 1  # a GPU model next to CPU ones
    config_path.write_text(yaml.safe_dump(config))
    site_profile(workdir)
    env, calls = stand_in_slurm(tmp_path / "slurm")

    targets = [f"results/nlp4neuro/{RUN.format(model=m)}/metrics.json" for m in ("reservoir", "lstm", "gpt2_tiny")]
    targets += ["results/ibl/binned/sesA.h5", "results/ibl/binned/sesB.h5"]  # CPU jobs upstream of NEDS
    result = subprocess.run(
        [*STEADY_SNAKEMAKE, "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
         "--profile", "profiles/mycluster", "--cores", "8", "--retries", "1", "--keep-going",
         "--slurm-init-seconds-before-status-checks", "1", "--seconds-between-status-checks", "1",
         "--forcerun", "train_decoder", "bin_ibl_session", "--", *targets],
        cwd=workdir, env={**os.environ, "PYTHONHASHSEED": "0", **env}, text=True, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, timeout=300)  # run from where the profile is, as a user does
    submitted = [shlex.split(line)[1:] for line in calls.read_text().splitlines() if line.startswith("sbatch ")]

    def option(args, name):
        return args[args.index(name) + 1] if name in args else None

    def submission(args):  # group_cpu_training, group_cpu_inputs or rule_<name>: its log folder
        folder = re.search(r"slurm_logs/([^/]+)/", option(args, "--output")).group(1)
        return next((group for group in ("group_cpu_training", "group_cpu_inputs") if folder.startswith(group)), folder)

    attempts = {}
    for args in submitted:
        attempts.setdefault(submission(args), []).append(args)
    # 5 jobs in 3 submissions (the CPU trainings in one, both binning jobs in another), each
    # failed once and retried (--keep-going: every submission gets its retry before the run ends)
    assert sorted(attempts) == ["group_cpu_inputs", "group_cpu_training", "rule_train_decoder"], result.stdout[-3000:]
    assert all(len(calls_) == 2 for calls_ in attempts.values()), result.stdout[-3000:]
    gpu_job, gpu_retry = attempts["rule_train_decoder"]
    cpu_group, cpu_group_retry = attempts["group_cpu_training"]
    inputs_group, inputs_group_retry = attempts["group_cpu_inputs"]
    assert "gpt2_tiny" in option(gpu_job, "--comment")

    def target_jobs(args):  # the jobs a submission runs (the --target-jobs of its snakemake)
        return [arg for arg in args if re.fullmatch(r"\w+:\w+=\S*", arg)]

    assert sorted(job.split(",model=")[1].split(",")[0] for job in target_jobs(cpu_group)) == ["lstm", "reservoir"]
    assert sorted(target_jobs(inputs_group)) == ["bin_ibl_session:session=sesA", "bin_ibl_session:session=sesB"]
    assert option(gpu_job, "-p") == "gpu" and "--gpus=1" in gpu_job
    for args in (cpu_group, inputs_group):
        assert option(args, "-p") == "cpu" and not any(a.startswith("--gpu") for a in args)
    assert all("--qos=normal" in args for args in submitted)
    assert all("--signal=URG@300" in args for args in submitted)  # the early warning, for every job
    # attempt 1: runtime_min (60); the group's two trainings run side by side (2 + 2 threads
    # within `--cores 8`), so it asks for the sum of their threads and memory, and the longer
    # time limit
    assert (option(gpu_job, "-t"), option(cpu_group, "-t"), option(inputs_group, "-t")) == ("60", "60", "30")
    assert option(cpu_group, "--mem") == "8000" and "--cpus-per-task=4" in cpu_group
    # the retry asks for twice the time and memory (runtime and mem_mb scale with attempt)
    assert [(option(a, "-t"), option(a, "--mem")) for a in (gpu_retry, cpu_group_retry)] == [
        ("120", "8000"), ("120", "16000")]
    assert option(inputs_group_retry, "-t") == "60"
    assert option(gpu_retry, "-p") == "gpu" and option(cpu_group_retry, "-p") == option(inputs_group_retry, "-p") == "cpu"
