"""Helpers shared by the tests: repository paths, the real data, running Snakemake."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
#: Small real recordings shared by all developers and CI (see its README.md).
REAL_DATA = REPO.parent / "shared" / "data" / "real"
SNAKEMAKE = [sys.executable, "-m", "snakemake"]


def run_snakemake(*args: str, workdir: Path | None = None, timeout: int = 900,
                  env: dict[str, str] | None = None, cwd: Path = REPO) -> subprocess.CompletedProcess:
    """Run snakemake on the repository's Snakefile from ``cwd`` (``env``: variables to set
    besides the current environment); returns the completed process (stdout and stderr
    merged into ``.stdout``)."""
    command = [*SNAKEMAKE, "--snakefile", str(REPO / "Snakefile")]
    if workdir is not None:
        command += ["--directory", str(workdir)]
    env = {**os.environ, "PYTHONHASHSEED": "0", **(env or {})}
    return subprocess.run(
        [*command, *args], cwd=cwd, env=env, text=True, timeout=timeout,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )


def require_real_ibl_fixtures() -> Path:
    """The REAL IBL fixtures folder, or skip the test saying where it was looked for."""
    fixtures = REAL_DATA / "ibl_fixtures"
    if not fixtures.is_dir():
        pytest.skip(f"real IBL fixtures not found at {fixtures}")
    return fixtures
