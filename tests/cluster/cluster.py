"""Helpers of the cluster tests: a real single-node SLURM (bin/slurm-local), a copy of the
workflow to edit, Snakemake runs through a profile, planned-job counts of dry runs."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest

from helpers import REPO

SLURM_LOCAL = REPO / "bin" / "slurm-local"
#: The SLURM tests' config: the part of .test/config with one fish (2 planes), one session and
#: the lstm (its config.yaml says why); copied into a workdir.
CLUSTER_CONFIG = Path(__file__).resolve().parent / "config"
#: What a copy of the workflow needs (and what the rerun tests edit in it).
WORKFLOW_PARTS = ["Snakefile", "rules", "workflow", "src", "config", "envs", "profiles", "README.md", "docs"]
#: Settings for the test cluster: poll job states soon (the plugin waits 40 s by default) and
#: every 2 s (with STEADY_POLLING: the plugin's back-off is off).
FAST_POLLING = ["--slurm-init-seconds-before-status-checks", "2", "--seconds-between-status-checks", "2"]
#: `python -m snakemake` with the SLURM plugin polling at a steady interval (see its docstring).
STEADY_POLLING = Path(__file__).resolve().parent / "snakemake_steady_polling.py"
STEADY_SNAKEMAKE = [sys.executable, str(STEADY_POLLING)]
#: Training jobs with one thread, as profiles/local runs them (`set-threads`), instead of the
#: rule's `threads: 2`: the thread count decides the float reductions that runs are compared
#: on, and a 1-CPU job shares the 2-core test node with another job where a 2-CPU job holds it
#: alone ("=": the option takes several values).
ONE_TRAINING_THREAD = ("--set-threads=train_decoder=1",)


#: Set (by `bin/test --with-slurm`, or CI) to let the tests install and start SLURM.
START_SLURM_VARIABLE = "PIPELINE_START_SLURM"


def start_slurm() -> None:
    """Bring up the local SLURM with bin/slurm-local -- which installs Debian packages and
    starts daemons as root -- only under CI or when asked (PIPELINE_START_SLURM, set by
    `bin/test --with-slurm`); otherwise use a SLURM that is already running, or skip saying
    how to get one. Skips with the script's reason where it cannot run here (not root, no
    apt-get, install failed, a real slurm.conf), unless CI is set: CI must not skip
    silently, so there it fails."""
    if not (os.environ.get("CI") or os.environ.get(START_SLURM_VARIABLE)):
        status = subprocess.run([str(SLURM_LOCAL), "status"], text=True, capture_output=True)
        if status.returncode != 0:
            pytest.skip("no local SLURM is running; `bin/test --with-slurm tests/cluster` installs and starts "
                        "one (root, apt: bin/slurm-local)")
        return
    try:
        result = subprocess.run([str(SLURM_LOCAL)], text=True, capture_output=True, timeout=900)
    except subprocess.TimeoutExpired:
        pytest.fail("bin/slurm-local did not finish within 900 s")
    if result.returncode == 0:
        return
    lines = result.stderr.strip().splitlines() or [f"bin/slurm-local exited with {result.returncode}"]
    if result.returncode == 3 and not os.environ.get("CI"):
        pytest.skip(lines[-1])
    pytest.fail(f"bin/slurm-local failed (exit {result.returncode}, CI={os.environ.get('CI')!r}):\n"
                + "\n".join(lines[-20:]))


def copy_workflow(destination: Path) -> Path:
    """Copy the workflow (Snakefile, rules, scripts, src, config, ...) so a test can edit
    files without touching the checkout; returns the copy's Snakefile."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "results", ".snakemake")
    destination.mkdir(parents=True, exist_ok=True)
    for part in WORKFLOW_PARTS:
        source = REPO / part
        if source.is_dir():
            shutil.copytree(source, destination / part, ignore=ignore)
        else:
            shutil.copy2(source, destination / part)
    return destination / "Snakefile"


def new_workdir(path: Path) -> Path:
    """A working directory holding a copy of the cluster test config."""
    shutil.copytree(CLUSTER_CONFIG, path / "config")
    return path


def start_snakemake(workdir: Path, *args: str, snakefile: Path = REPO / "Snakefile", profile: str = "local",
                    timeout: int = 600) -> subprocess.Popen:
    """Start snakemake (through STEADY_POLLING) with a profile of this repository under
    `timeout -k` (so that a hung cluster run cannot hang the tests); stdout and stderr go to
    one temporary file (a pipe nobody reads while another run goes on could fill up and block it)."""
    command = ["timeout", "-k", "20", str(timeout), *STEADY_SNAKEMAKE,
               "--snakefile", str(snakefile), "--directory", str(workdir),
               "--profile", str(REPO / "profiles" / profile)]
    if profile == "slurm":
        command += FAST_POLLING
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    output = tempfile.TemporaryFile("w+")
    process = subprocess.Popen([*command, *args], cwd=workdir, env=env, text=True, stdout=output,
                               stderr=subprocess.STDOUT)
    process.output_file = output
    process.recorder = None
    if profile != "local":  # a SLURM run: keep its jobs' records as they end (slurm_job)
        process.recorder = threading.Thread(target=record_ended_jobs, args=(process,), daemon=True)
        process.recorder.start()
    return process


#: The last `scontrol show job` record of every job that ended during a SLURM run: SLURM
#: forgets a job MinJobAge (600 s, bin/slurm-local) after it ended, and a run on a loaded
#: 2-core machine can last longer than that (its first jobs were gone by the time it ended).
ENDED_JOBS: dict[str, dict[str, str]] = {}
ENDED_STATES = {"COMPLETED", "FAILED", "TIMEOUT", "CANCELLED", "OUT_OF_MEMORY", "NODE_FAIL", "PREEMPTED", "BOOT_FAIL",
                "DEADLINE"}


def record_ended_jobs(process: subprocess.Popen) -> None:
    """Every 5 s until `process` ends, and once after: keep the records of the jobs SLURM
    reports as ended (ENDED_JOBS)."""
    while True:
        running = process.poll() is None
        listing = subprocess.run(["scontrol", "show", "job", "-o"], text=True, capture_output=True).stdout
        for line in listing.splitlines():
            job = dict(item.split("=", 1) for item in line.split() if "=" in item)
            if job.get("JobState") in ENDED_STATES and "JobId" in job:
                ENDED_JOBS[job["JobId"]] = job
        if not running:
            return
        time.sleep(5)


def finish(process: subprocess.Popen) -> subprocess.CompletedProcess:
    """Wait for a run started by start_snakemake; cancel SLURM jobs it left behind."""
    process.wait()
    if process.recorder is not None:
        process.recorder.join()
    with process.output_file as file:
        file.seek(0)
        output = file.read()
    cancel_leftover_jobs(output)
    return subprocess.CompletedProcess(process.args, process.returncode, output)


def snakemake(workdir: Path, *args: str, **options) -> subprocess.CompletedProcess:
    """Run snakemake (see start_snakemake); the output is ``.stdout``."""
    return finish(start_snakemake(workdir, *args, **options))


def cancel_leftover_jobs(output: str) -> None:
    """Cancel the SLURM jobs of a run that ended abnormally (e.g. killed by timeout)."""
    for run_id in set(re.findall(r"SLURM run ID: (\S+)", output)):
        subprocess.run(["scancel", f"--name={run_id}"], capture_output=True)


def submitted_jobs(output: str) -> dict[str, list[str]]:
    """Rule (or ``group_<group>_<its rules>``) -> SLURM job ids, in submission order, from a
    run's output."""
    jobs: dict[str, list[str]] = {}
    for job_id, kind in re.findall(r"submitted with SLURM jobid (\d+) \(log: \S*/slurm_logs/(?:rule_)?([^/]+)/", output):
        jobs.setdefault(kind, []).append(job_id)
    return jobs


def grouped_rules(output: str) -> dict[str, str]:
    """Rule -> group of the jobs a (dry) run ran inside group jobs: after a "Group job G"
    line, the group's jobs are printed indented (each followed by a "Shell command" line)."""
    rules, group = {}, None
    for line in output.splitlines():
        header = re.search(r"Group job (\w+) \(", line)
        if header:
            group = header.group(1)
        elif re.match(r"\[|(?:local)?rule |Job ", line):  # the next job printed (not indented)
            group = None
        elif group and (member := re.match(r"^ {4}(?:local)?rule (\w+):", line)):
            rules[member.group(1)] = group
    return rules


def slurm_job(job_id: str) -> dict[str, str]:
    """`scontrol show job` as a dict (JobState, TRES, MinMemoryNode, ...); for a job SLURM no
    longer reports, its record taken when it ended (ENDED_JOBS)."""
    result = subprocess.run(["scontrol", "show", "job", "-o", job_id], text=True, capture_output=True)
    if result.returncode != 0 and job_id in ENDED_JOBS:
        return ENDED_JOBS[job_id]
    result.check_returncode()
    return dict(item.split("=", 1) for item in result.stdout.split() if "=" in item)


def planned_jobs(output: str) -> dict[str, int]:
    """Rule -> job count from the 'Job stats' table of a (dry) run; {} when nothing to do."""
    if "Job stats:" not in output:
        assert "Nothing to be done" in output, output[-3000:]
        return {}
    table = output.split("Job stats:")[1].split("total")[0]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)$", table, re.MULTILINE)}


def planned_wildcards(output: str, rule: str) -> list[dict[str, str]]:
    """The wildcards of every planned job of `rule` in a (dry) run's output (the jobs of a
    group job are printed indented)."""
    jobs = []
    for block in re.split(r"^\s*(?:local)?rule ", output, flags=re.MULTILINE)[1:]:
        name, _, body = block.partition(":")
        found = re.search(r"^\s+wildcards: (.*)$", body, re.MULTILINE)
        if name == rule and found:
            jobs.append(dict(item.split("=", 1) for item in found.group(1).split(", ")))
    return jobs
