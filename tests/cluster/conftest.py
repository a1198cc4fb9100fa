"""Fixtures of the cluster tests: the local SLURM, and one finished local run of the
cluster config (with its own copy of the workflow) that the rerun tests plan against."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import pytest

import yaml

from cluster import copy_workflow, new_workdir, snakemake, start_slurm


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
    """The cluster config, plus a second decoder (reservoir, so that the rerun tests can
    see which model's jobs a change plans), run to completion with the local profile. In a
    session with the SLURM test, that test asks for it first, while its SLURM runs go on
    (pytest_collection_modifyitems above): `wall_s` is then a wall time next to them."""
    root = tmp_path_factory.mktemp("local_run")
    snakefile = copy_workflow(root / "code")
    workdir = new_workdir(root / "work")
    config_path = workdir / "config" / "config.yaml"
    config = yaml.safe_load(config_path.read_text())
    config["nlp4neuro"]["models"]["reservoir"] = {"kind": "reservoir", "architecture": {"reservoir_size": 50}}
    config["nlp4neuro"]["experiments"]["model_comparison"]["models"].append("reservoir")
    config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    start = time.monotonic()
    result = snakemake(workdir, "--cores", "2", snakefile=snakefile, timeout=900)  # next to the SLURM runs
    wall_s = time.monotonic() - start
    assert result.returncode == 0, result.stdout[-5000:]
    return FinishedRun(snakefile, workdir, wall_s)
