"""Fixtures shared by all tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from helpers import REPO, run_snakemake


@pytest.fixture
def test_workdir(tmp_path: Path) -> Path:
    """A Snakemake working directory holding a copy of the small CI configuration
    (.test/config): config.yaml plus its recordings tables."""
    shutil.copytree(REPO / ".test" / "config", tmp_path / "config")
    return tmp_path


@pytest.fixture
def one_torch_thread():
    """Run a test with one torch thread: its tensors are small and the cores are shared, so
    torch's thread pool only adds oversubscription. Restores the previous count after."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def touched_workdir(tmp_path_factory) -> Path:
    """The CI configuration as after a finished run, without running a job: every output
    of the DAG created empty, then ``snakemake --touch`` records each job's metadata (params,
    code, inputs) as a real run would. Tests copy it and edit the copy. (For outputs with
    contract-valid content, see the module fixture of tests/report/test_workflow_evaluation.py.)"""
    workdir = tmp_path_factory.mktemp("touched")
    shutil.copytree(REPO / ".test" / "config", workdir / "config")
    plan = run_snakemake("-n", "--forceall", workdir=workdir)
    assert plan.returncode == 0, plan.stdout
    for line in plan.stdout.splitlines():
        if line.strip().startswith("output:"):
            for name in line.split("output:", 1)[1].split(","):
                path = workdir / name.strip()
                if "." in path.name:  # a file; the directory() outputs have no suffix
                    path.parent.mkdir(parents=True, exist_ok=True)
                    path.touch()
                else:
                    path.mkdir(parents=True, exist_ok=True)
    touched = run_snakemake("--touch", "--forceall", "--cores", "1", workdir=workdir)
    assert touched.returncode == 0, touched.stdout
    return workdir
