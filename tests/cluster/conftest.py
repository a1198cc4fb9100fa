"""Fixtures of the cluster tests: the local SLURM, and the session's one finished local run of
the small CI configuration `.test/config` (with its own copy of the workflow): the end-to-end
checks read it, the SLURM test compares its cluster config (a part of `.test/config`) with it,
the rerun tests plan against it, the preemption and time-limit tests start from copies."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import shutil

import pytest

from cluster import copy_workflow, snakemake, start_slurm
from helpers import REPO


def pytest_collection_modifyitems(items) -> None:
    """Move the SLURM test (test_slurm.py) before the first test that uses finished_local_run:
    it starts its SLURM runs and only then asks for the local run, which goes on meanwhile
    (tests/cluster/test_slurm.py); after another test had made it, there would be nothing to
    overlap. The other tests keep their order."""
    here = Path(__file__).resolve().parent
    slurm_tests = [item for item in items if item.path == here / "test_slurm.py"]
    rest = [item for item in items if item.path != here / "test_slurm.py"]
    first_user = next((i for i, item in enumerate(rest) if "finished_local_run" in getattr(item, "fixturenames", ())),
                      None)
    if slurm_tests and first_user is not None:
        items[:] = rest[:first_user] + slurm_tests + rest[first_user:]


@pytest.fixture(scope="session")
def slurm() -> None:
    """A running single-node SLURM (skips, or fails under CI, where it cannot start)."""
    start_slurm()


@dataclass
class FinishedRun:
    snakefile: Path  # the copy of the workflow that ran (tests may edit it, then restore it)
    workdir: Path
    wall_s: float


@pytest.fixture(scope="session")
def finished_local_run(tmp_path_factory) -> FinishedRun:
    """`.test/config` (every rule; three decoders, so that the rerun tests can see which
    model's jobs a change plans) run to completion with the local profile: the one local run
    of the whole DAG in a test session. In a session with the SLURM test, that test asks for it
    first, while its SLURM runs go on (pytest_collection_modifyitems above): `wall_s` is then
    a wall time next to them."""
    root = tmp_path_factory.mktemp("local_run")
    snakefile = copy_workflow(root / "code")
    workdir = root / "work"
    shutil.copytree(REPO / ".test" / "config", workdir / "config")
    start = time.monotonic()
    # next to the SLURM runs; the timeout only catches a hang: 265 s alone on 2 idle cores
    # (CI of 5134073), over 20 min at load 12-15 (s6-ci's run of 20067ec), 64 min at load
    # 11-25 (bench/README.md)
    result = snakemake(workdir, "--cores", "2", snakefile=snakefile, timeout=5400)
    wall_s = time.monotonic() - start
    assert result.returncode == 0, result.stdout[-5000:]
    return FinishedRun(snakefile, workdir, wall_s)
