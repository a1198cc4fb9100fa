"""The environment definitions agree with each other and with the README commands."""

from __future__ import annotations

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
