"""`python -m snakemake`, with snakemake-executor-plugin-slurm checking job states at the
steady interval given by `--seconds-between-status-checks` (tests/cluster/ only).

The plugin backs off while no job finishes: each status check that finds every job still
running adds 10 s to the next wait, up to 180 s (Executor.check_active_jobs, version 2.8).
On a production cluster that spares slurmctld; on the single-node test cluster a job that
runs 100 s is noticed up to ~40 s after it ended, and every layer of the DAG waits so. Here
the wait stays at the command line's interval. Nothing else of the plugin changes: what the
tests check (submissions, time limits, signals, retries, job states) is the plugin's own."""

from __future__ import annotations

import sys
from pathlib import Path

# Run as a script, Python puts tests/cluster first on sys.path, where `config/` and
# `cluster.py` would shadow any importable module of those names: drop it (as `-m snakemake` would).
sys.path[:] = [entry for entry in sys.path if Path(entry or ".").resolve() != Path(__file__).resolve().parent]

from snakemake_executor_plugin_slurm import Executor  # noqa: E402
from snakemake.cli import main  # noqa: E402

# The plugin sets `self.next_seconds_between_status_checks` after each check (the back-off,
# and the reset to the initial wait); the remote executor sleeps for what the property reads.
# Fail loudly if a new plugin version no longer works this way, instead of silently polling slowly.
assert isinstance(getattr(Executor, "next_seconds_between_status_checks", None), property), \
    "snakemake-executor-plugin-slurm: next_seconds_between_status_checks is no longer a property"


def _steady_interval(executor) -> int:
    return executor.workflow.remote_execution_settings.seconds_between_status_checks


Executor.next_seconds_between_status_checks = property(_steady_interval, lambda executor, value: None)

if __name__ == "__main__":
    sys.exit(main())
