"""The environment definitions agree with each other and with the README commands."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys

import pytest
import yaml

from helpers import REPO


def lock_pins() -> dict[str, str]:
    """Normalised package name -> pinned version in requirements.lock (comments dropped)."""
    pins = {}
    for line in (REPO / "requirements.lock").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, version = line.split("==")
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_lock_pins_torch_for_every_platform():
    # The CPU wheel here is 2.13.0+cpu; the plain pin also selects the CUDA build on a cluster.
    assert lock_pins()["torch"] == "2.13.0"
    assert re.match(r"^9\.", lock_pins()["snakemake"])


def test_conda_env_pins_match_the_lock():
    pins = lock_pins()
    for env_file in sorted((REPO / "envs").glob("*.yaml")):
        env = yaml.safe_load(env_file.read_text())
        pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
        for requirement in pip_section:
            name, version = requirement.split("==")
            assert pins[name.lower().replace("_", "-")] == version, (env_file.name, requirement)


def test_the_rules_conda_env_pins_exactly_the_locks():
    """envs/pipeline.yaml is bin/conda-env's output: every pin of requirements.lock (direct
    and transitive), nothing else."""
    check = subprocess.run([sys.executable, str(REPO / "bin" / "conda-env"), "--check"], text=True,
                           capture_output=True)
    assert check.returncode == 0, check.stderr
    env = yaml.safe_load((REPO / "envs" / "pipeline.yaml").read_text())
    pip_section = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    env_pins = dict(requirement.split("==") for requirement in pip_section)
    assert {name.lower().replace("_", "-"): v for name, v in env_pins.items()} == lock_pins()


def test_every_direct_dependency_is_locked():
    text = (REPO / "pyproject.toml").read_text()
    block = text.split("dependencies = [")[1].split("]")[0]
    names = [re.match(r'\s*"([A-Za-z0-9_.-]+)', line).group(1) for line in block.splitlines() if '"' in line]
    pins = lock_pins()
    assert names and all(n.lower().replace("_", "-") in pins for n in names)


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    quickstart = readme.split("## Quickstart")[1].split("```bash")[1].split("```")[0]
    commands = [line.split("#")[0].strip() for line in quickstart.strip().splitlines()]
    assert commands == ["bin/demo", "bin/test"]
    ci = [l for l in (REPO / ".ci" / "run").read_text().splitlines() if l and not l.startswith("#")]
    assert ci[-1] == "exec bin/test"
    for script in ["bin/setup", "bin/demo", "bin/test", ".ci/run"]:
        assert os.access(REPO / script, os.X_OK), script


RECORD_SELECTION = """
import json, os
def pytest_deselected(items):
    with open(os.environ["SELECTION_FILE"], "a") as file:
        file.writelines(json.dumps(["deselected", item.nodeid]) + "\\n" for item in items)
def pytest_collection_finish(session):
    with open(os.environ["SELECTION_FILE"], "a") as file:
        file.writelines(json.dumps(["selected", item.nodeid]) + "\\n" for item in session.items)
"""


def root_conftest():
    """tests/conftest.py as a module (`import conftest` would give whichever conftest.py was
    imported first under that name)."""
    spec = importlib.util.spec_from_file_location("root_conftest", REPO / "tests" / "conftest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_ci_budget_rule_keeps_the_slurm_tests_and_the_end_to_end_run(tmp_path):
    """bin/test under CI passes a -m that leaves out the `slow` tests not marked `ci`: every
    test of tests/cluster (the SLURM tests, the end-to-end run of .test/config, and the tests
    sharing that run) still runs; a slow test outside the rule (NDT2 on three seeds) does not.
    For the parallel workers (tests/conftest.py), the tests of tests/cluster form one
    group (one worker runs them, in order) and come first, then a file holding a `ci` test (the
    aggregation rules on fabricated jobs), whatever the order on the command line; every other
    file is a group of its own.
    (One collection, recording what the -m selects and deselects, in order, with the groups.)"""
    expression = re.search(r'markers=\(-m "([^"]+)"\)', (REPO / "bin" / "test").read_text()).group(1)
    (tmp_path / "record_selection.py").write_text(RECORD_SELECTION)
    selection = tmp_path / "selection.jsonl"
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "-p", "record_selection",
         "-m", expression, "tests/neds/test_ndt2.py", "tests/report/test_workflow_evaluation.py", "tests/cluster"],
        cwd=REPO, text=True, capture_output=True, timeout=300,
        env={**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(tmp_path)]),
             "SELECTION_FILE": str(selection)})
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    group_of = root_conftest().group_of
    in_ci, left_out, selected_in_order = set(), set(), []
    for line in selection.read_text().splitlines():
        kind, test = json.loads(line)
        (in_ci if kind == "selected" else left_out).add(test)
        if kind == "selected":
            selected_in_order.append((test.split("::")[0], group_of(test)))
    cluster = {test for test in in_ci | left_out if test.startswith("tests/cluster/")}
    assert {test.split("::")[0] for test in cluster} >= {"tests/cluster/test_slurm.py", "tests/cluster/test_time_limit.py"}
    assert cluster <= in_ci
    assert "tests/cluster/test_local_run.py::test_ci_config_runs_end_to_end" in in_ci
    assert "tests/neds/test_ndt2.py::test_ndt2_beats_chance_on_a_tiny_session" in left_out
    files_in_order = [file for i, (file, _) in enumerate(selected_in_order) if i == 0 or selected_in_order[i - 1][0] != file]
    n_cluster = len([file for file in files_in_order if file.startswith("tests/cluster/")])
    assert all(file.startswith("tests/cluster/") for file in files_in_order[:n_cluster]), files_in_order
    assert files_in_order[n_cluster:] == ["tests/report/test_workflow_evaluation.py", "tests/neds/test_ndt2.py"], \
        files_in_order
    assert {group for file, group in selected_in_order if file.startswith("tests/cluster/")} == {"tests/cluster"}
    assert all(group == file for file, group in selected_in_order if not file.startswith("tests/cluster/"))


@pytest.mark.parametrize("environment, expected", [
    ({"CI": "true"}, ["-n", "2"]),
    ({"CI": "true", "PIPELINE_TEST_WORKERS": "1"}, ["-n", "1"]),
    ({"PIPELINE_TEST_WORKERS": "3"}, ["-n", "3"]),
    ({}, []),
])
def test_bin_test_runs_ci_on_two_workers(tmp_path, environment, expected):
    """bin/test gives pytest `-n 2` under CI (tests/conftest.py: tests/cluster in one
    worker), `-n N` for PIPELINE_TEST_WORKERS=N, and no -n otherwise; extra arguments follow.
    (bin/setup and the venv's python replaced by stand-ins; the latter prints its arguments.)"""
    (tmp_path / "bin").mkdir()
    shutil.copy(REPO / "bin" / "test", tmp_path / "bin" / "test")
    (tmp_path / "bin" / "setup").write_text("#!/bin/bash\nexit 0\n")
    (tmp_path / ".venv" / "bin").mkdir(parents=True)
    (tmp_path / ".venv" / "bin" / "python").write_text('#!/bin/bash\nprintf "%s\\n" "$@"\n')
    for script in ["bin/setup", ".venv/bin/python"]:
        (tmp_path / script).chmod(0o755)
    environment = {**{k: v for k, v in os.environ.items() if k not in ("CI", "PIPELINE_TEST_WORKERS")}, **environment}
    result = subprocess.run(["bash", str(tmp_path / "bin" / "test"), "tests/x"], text=True, capture_output=True,
                            env=environment)
    assert result.returncode == 0, result.stderr
    arguments = result.stdout.splitlines()
    assert arguments[:2] == ["-m", "pytest"] and arguments[-1] == "tests/x"
    options = arguments[2:-1]
    if "CI" in environment:
        assert options[:2] == ["-m", "not demo and not acceptance and (ci or not slow)"]
        options = options[2:]
    assert options == expected


@pytest.mark.parametrize(
    "fake_python, message",
    [
        ("exit 1", "Python >= 3.11 is required"),  # answers the version check with "too old"
        ('case "$*" in *ensurepip*) exit 1;; *) exit 0;; esac', "sudo apt install python"),  # no python3-venv
    ],
)
def test_setup_says_which_prerequisite_to_install(tmp_path, fake_python, message):
    """bin/setup stops before creating anything when Python is too old or cannot make a
    virtual environment (Debian/Ubuntu without python3-venv), naming the fix."""
    (tmp_path / "bin").mkdir()
    shutil.copy(REPO / "bin" / "setup", tmp_path / "bin" / "setup")
    python = tmp_path / "python3"
    python.write_text(f"#!/bin/bash\ncase \"$*\" in *version_info[0]*) echo 3.11;; esac\n{fake_python}\n")
    python.chmod(0o755)
    result = subprocess.run(["bash", str(tmp_path / "bin" / "setup")], text=True, capture_output=True,
                            env={**os.environ, "PYTHON": str(python)})
    assert result.returncode == 1 and message in result.stderr, result.stderr
    assert not (tmp_path / ".venv").exists()
