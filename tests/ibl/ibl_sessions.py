"""Session builders for the IBL tests (fixtures registered in conftest.py): small synthetic ones (with ground truth) and one assembled
from the REAL fixtures in ../shared/data/real/ibl_fixtures."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from pipeline.synth.ibl import IblSynthParams, generate_session

from helpers import require_real_ibl_fixtures


@pytest.fixture(scope="session")
def synthetic_session(tmp_path_factory) -> dict:
    """A small synthetic session: its sessions-table row plus the truth file path."""
    root = tmp_path_factory.mktemp("ibl_synth")
    generate_session(root / "ses", root / "truth.h5", IblSynthParams(n_trials=120, n_clusters=40),
                     shared_seed=1, session_seed=2, progress=False)
    return {"session_id": "ses", "subject": "S1", "alf_dir": str(root / "ses"), "probe": "probe00",
            "truth": str(root / "truth.h5")}


def copy_session(session: dict, destination: Path) -> dict:
    """A writable copy of a session folder (tests that break inputs use it)."""
    shutil.copytree(session["alf_dir"], destination)
    return {**session, "alf_dir": str(destination)}


@pytest.fixture
def real_spike_session(tmp_path, synthetic_session) -> dict:
    """REAL spikes (0-120 s, 289 clusters, ids up to 499) with synthetic trial events
    placed inside their span, a real wheel and the synthetic camera; regions made up."""
    fixtures = require_real_ibl_fixtures()
    session = copy_session(synthetic_session, tmp_path / "real")
    probe = Path(session["alf_dir"]) / "probe00"
    shutil.rmtree(probe)
    shutil.copytree(fixtures / "spikes", probe)
    n_ids = int(np.load(probe / "spikes.clusters.npy").max()) + 1
    np.save(probe / "clusters.brainLocationAcronyms_ccf_2017.npy", np.array(["CA1", "DG", "LP", "PO", "VISa"] * 100)[:n_ids])
    alf = Path(session["alf_dir"])
    rng = np.random.default_rng(0)
    stim_on = np.sort(rng.uniform(2.0, 117.0, 50))
    trials = {
        "stimOn_times": stim_on, "firstMovement_times": stim_on + 0.3, "feedback_times": stim_on + 0.6,
        "response_times": stim_on + 0.5, "goCue_times": stim_on - 0.01,
        "choice": rng.choice([-1.0, 1.0], 50), "feedbackType": np.ones(50),
        "probabilityLeft": np.full(50, 0.5), "contrastLeft": np.full(50, 1.0), "contrastRight": np.full(50, np.nan),
    }
    for name, values in trials.items():
        np.save(alf / f"_ibl_trials.{name}.npy", values)
    (alf / "_ibl_trials.intervals.npy").unlink()
    for name in ["position", "timestamps"]:
        shutil.copy(fixtures / "wheel_radians_irregular" / f"wheel.{name}.npy", alf / f"_ibl_wheel.{name}.npy")
    return session
