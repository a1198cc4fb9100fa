"""The slurm profile's site block, applied as the README says to a site with a `cpu` and a
`gpu` partition, sends exactly the jobs that ask for a GPU to `gpu`, every other job to
`cpu`, training jobs with the early-warning signal, and time limits and memory that grow
per attempt.
Checked on the sbatch lines snakemake-executor-plugin-slurm submits, recorded by stand-in
SLURM commands on PATH (no cluster needed: the stand-in reports every job as failed, so
the run ends right after submitting)."""

from __future__ import annotations

import os
import re
import shlex
import shutil

import yaml

from helpers import REPO, run_snakemake

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


def test_site_block_sends_only_gpu_jobs_to_the_gpu_partition(touched_workdir, tmp_path):
    workdir = tmp_path / "run"
    shutil.copytree(touched_workdir, workdir, symlinks=True)
    config_path = workdir / "config" / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["nlp4neuro"]["models"]["gpt2_tiny"]["gpus"] = 1  # a GPU model next to CPU ones (lstm)
    config_path.write_text(yaml.safe_dump(config))
    site_profile(workdir)
    env, calls = stand_in_slurm(tmp_path / "slurm")

    targets = [f"results/nlp4neuro/{RUN.format(model=m)}/metrics.json" for m in ("lstm", "gpt2_tiny")]
    targets.append("results/ibl/binned/sesA.h5")  # a CPU job (nothing downstream is a target)
    result = run_snakemake(
        "--profile", "profiles/mycluster", "--retries", "1", "--slurm-init-seconds-before-status-checks", "1",
        "--seconds-between-status-checks", "1", "--forcerun", "train_decoder", "bin_ibl_session", "--", *targets,
        workdir=workdir, cwd=workdir, env=env, timeout=300)  # run from where the profile is, as a user does
    submitted = [shlex.split(line)[1:] for line in calls.read_text().splitlines() if line.startswith("sbatch ")]
    assert len(submitted) == 6, result.stdout[-3000:]  # 3 jobs, each failed once and retried

    def option(args, name):
        return args[args.index(name) + 1] if name in args else None

    attempts = {}
    for args in submitted:
        attempts.setdefault(option(args, "--comment"), []).append(args)
    gpu_job, gpu_retry = attempts["rule_train_decoder_wildcards_model_comparison_fishA_gpt2_tiny_untrained_linear_5_0"]
    cpu_job, cpu_retry = attempts["rule_train_decoder_wildcards_model_comparison_fishA_lstm_untrained_linear_5_0"]
    binning, binning_retry = attempts["rule_bin_ibl_session_wildcards_sesA"]
    assert option(gpu_job, "-p") == "gpu" and "--gpus=1" in gpu_job
    assert option(cpu_job, "-p") == "cpu" and not any(a.startswith("--gpu") for a in cpu_job)
    assert option(binning, "-p") == "cpu"
    assert all("--qos=normal" in args for args in submitted)
    for args in (gpu_job, cpu_job):  # early warning before the time limit; attempt 1: runtime_min
        assert "--signal=USR1@300" in args and option(args, "-t") == "60"
    # the retry asks for twice the time and memory (runtime and mem_mb scale with attempt)
    assert [(option(a, "-t"), option(a, "--mem")) for a in (cpu_retry, gpu_retry)] == [("120", "8000")] * 2
    assert (option(binning, "-t"), option(binning_retry, "-t")) == ("30", "60")
    assert option(gpu_retry, "-p") == "gpu" and option(cpu_retry, "-p") == option(binning_retry, "-p") == "cpu"
