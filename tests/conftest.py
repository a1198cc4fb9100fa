"""Fixtures shared by all tests, and the order and grouping of the tests for parallel runs."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from xdist.scheduler import LoadScopeScheduling

from helpers import REPO, run_snakemake

#: The tests of tests/cluster share one local SLURM (and one finished local run of .test/config,
#: a session fixture, which the end-to-end test checks): under pytest-xdist they form one group
#: that runs in one worker, in order.
CLUSTER_TESTS = REPO / "tests" / "cluster"
CLUSTER_GROUP = "tests/cluster"
#: Test files that take a minute or more in CI outside tests/cluster and hold no `ci` test:
#: scheduled right after the files with a `ci` test. test_acceptance.py's fixture trains NEDS
#: (80 s of set-up in the CI run of 895b012, `--durations`).
LONG_FILES = [REPO / "tests" / "neds" / "test_acceptance.py"]


def group_of(nodeid: str) -> str:
    """The group of a test id ("tests/x/test_y.py::test_z[p]", relative to the repository):
    CLUSTER_GROUP for the tests of tests/cluster, else the test's file."""
    file = nodeid.split("::", 1)[0]
    return CLUSTER_GROUP if file.startswith(CLUSTER_GROUP + "/") else file


class GroupedScheduling(LoadScopeScheduling):
    """pytest-xdist scheduling by groups of tests (xdist's own `--dist loadgroup` reads marks
    that pytest 9 no longer passes on): the tests of tests/cluster are one group, every other
    test file is one (so that its module-scoped fixtures are built once). A worker runs a
    group in collection order; the groups are handed out in collection order (which
    pytest_collection_modifyitems below makes longest first), as workers become free."""

    def _split_scope(self, nodeid: str) -> str:
        return group_of(nodeid)


def pytest_xdist_make_scheduler(config, log):
    """GroupedScheduling for every pytest-xdist run that distributes tests (not `--dist each`),
    so that `pytest -n N` never runs two cluster tests at once; groups keep collection order
    (LoadScopeScheduling would sort them by test count)."""
    if config.getoption("dist") == "each":
        return None
    config.option.loadscopereorder = False
    return GroupedScheduling(config, log)


def pytest_collection_modifyitems(items) -> None:
    """Order the tests longest group first (GroupedScheduling hands groups out in this order,
    and the workers should finish together): the tests of tests/cluster, then the files
    holding a `ci` test (the slow tests CI runs outside tests/cluster: the aggregation rules on
    fabricated jobs), then LONG_FILES, then the rest as collected. A stable sort: within a file nothing moves (tests/cluster/conftest.py
    orders its own tests); a run without pytest-xdist keeps this order too."""
    def rank(item) -> int:
        if item.path.is_relative_to(CLUSTER_TESTS):
            return 0
        if item.path in ci_files:
            return 1
        return 2 if item.path in LONG_FILES else 3

    ci_files = {item.path for item in items if item.get_closest_marker("ci")}
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
