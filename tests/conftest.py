"""Fixtures shared by all tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from helpers import REPO


@pytest.fixture
def test_workdir(tmp_path: Path) -> Path:
    """A Snakemake working directory holding a copy of the small CI configuration
    (.test/config): config.yaml plus its recordings tables."""
    shutil.copytree(REPO / ".test" / "config", tmp_path / "config")
    return tmp_path
