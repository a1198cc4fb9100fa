"""Fixtures shared by all tests, and the order and grouping of the tests for parallel runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from helpers import REPO, run_snakemake

#: The xdist_group of the tests of tests/cluster: they share one local SLURM (and one finished
#: local run, a session fixture), so `--dist loadgroup` runs them in one worker, in order.
CLUSTER_GROUP = "slurm"
CLUSTER_TESTS = REPO / "tests" / "cluster"
#: Test files that take a minute or more in CI outside tests/cluster and hold no `ci` test
#: (their module fixtures train a model): scheduled right after the files with a `ci` test (see
#: pytest_collection_modifyitems). Measured in CI with --durations (README "Testing").
LONG_FILES = [REPO / "tests" / "neds" / "test_acceptance.py"]


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the xdist_group marks
def pytest_collection_modifyitems(items) -> None:
    """Group and order the tests for pytest-xdist (bin/test under CI: `-n 2 --dist loadgroup
    --no-loadscope-reorder`, README "Testing"); a run without xdist keeps this order too.

    Groups (`xdist_group`; a group runs in one worker, in collection order): the tests of
    tests/cluster form one (CLUSTER_GROUP); every other test file is its own, so that its
    module-scoped fixtures are built once. Order: the groups with the longest tests first,
    since xdist hands the groups out in collection order and the workers should finish
    together: the cluster group, then the files holding a `ci` test (the slow tests CI runs:
    the end-to-end run), then LONG_FILES, then the rest as collected (a stable sort: within a
    group nothing moves)."""
    def rank(item) -> int:
        if item.path.is_relative_to(CLUSTER_TESTS):
            return 0
        if item.path in ci_files:
            return 1
        return 2 if item.path in LONG_FILES else 3

    ci_files = {item.path for item in items if item.get_closest_marker("ci")}
    for item in items:
        group = CLUSTER_GROUP if item.path.is_relative_to(CLUSTER_TESTS) else str(item.path.relative_to(REPO))
        item.add_marker(pytest.mark.xdist_group(group))
    items.sort(key=rank)


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
