"""bin/slurm-local and the fixture around it: SLURM is installed and started only under CI or
when asked (`bin/test --with-slurm`); where it cannot be started the tests skip with the
script's reason, except under CI, where they fail."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

import cluster


@pytest.fixture
def fake_script(tmp_path, monkeypatch):
    def make(exit_code, message):
        script = tmp_path / "slurm-local"
        script.write_text(f"#!/bin/sh\necho 'some progress' >&2\necho '{message}' >&2\nexit {exit_code}\n")
        script.chmod(0o755)
        monkeypatch.setattr(cluster, "SLURM_LOCAL", script)
    return make


def test_not_asked_uses_a_running_slurm_or_skips_saying_how_to_start_one(fake_script, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.delenv(cluster.START_SLURM_VARIABLE, raising=False)
    fake_script(1, "bin/slurm-local: no SLURM running")  # `bin/slurm-local status` fails: nothing installed
    with pytest.raises(pytest.skip.Exception, match="bin/test --with-slurm"):
        cluster.start_slurm()
    fake_script(0, "running")
    cluster.start_slurm()  # a running SLURM is used as it is


def test_cannot_start_skips_with_the_reason_outside_ci(fake_script, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv(cluster.START_SLURM_VARIABLE, "1")
    fake_script(3, "bin/slurm-local: cannot start SLURM here: not root (uid 1000)")
    with pytest.raises(pytest.skip.Exception, match=r"not root \(uid 1000\)"):
        cluster.start_slurm()


def test_cannot_start_fails_under_ci(fake_script, monkeypatch):
    monkeypatch.setenv("CI", "true")
    fake_script(3, "bin/slurm-local: cannot start SLURM here: no apt-get")
    with pytest.raises(pytest.fail.Exception, match="no apt-get"):
        cluster.start_slurm()


def test_a_daemon_that_does_not_start_fails_everywhere(fake_script, monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    monkeypatch.setenv(cluster.START_SLURM_VARIABLE, "1")
    fake_script(1, "bin/slurm-local: slurmctld did not start")
    with pytest.raises(pytest.fail.Exception, match="slurmctld did not start"):
        cluster.start_slurm()


@pytest.mark.skipif(os.geteuid() != 0 or not shutil.which("runuser"), reason="needs root and runuser to drop to nobody")
def test_the_script_refuses_to_run_as_a_normal_user():
    result = subprocess.run(["runuser", "-u", "nobody", "--", str(cluster.SLURM_LOCAL)], text=True,
                            capture_output=True, timeout=60)
    assert result.returncode == 3
    assert result.stderr.strip().splitlines()[-1].startswith("bin/slurm-local: cannot start SLURM here: not root")
