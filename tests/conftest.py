"""Fixtures shared by all tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from helpers import REPO


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
