"""Session builders for the IBL tests (fixtures registered in conftest.py): small synthetic
ONE caches (with ground truth) and one that adds the REAL spikes of
../shared/data/real/ibl_fixtures as a second probe."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from one.alf.cache import make_parquet_db

from pipeline.ibl.regions import allen_ids_from_acronyms
from pipeline.synth.config import IblSynthParams
from pipeline.synth.ibl import CHANNELS_REVISION, SESSION_PATH, generate_session

from helpers import require_real_ibl_fixtures

#: Allen acronyms given to the real clusters (cycled): fine structures whose prefixes are
#: other regions (VISam4 is not VISa, POL is not PO) and their parents.
REAL_ACRONYMS = ["VISam4", "POL", "VISa5", "PO", "CA1", "DG-sg", "LP"]


@pytest.fixture(scope="session")
def synthetic_session(tmp_path_factory) -> dict:
    """A small synthetic ONE cache: its sessions-table row plus the truth file path."""
    root = tmp_path_factory.mktemp("ibl_synth")
    generate_session(root / "cache", root / "truth.h5", IblSynthParams(n_trials=120, n_clusters=40),
                     shared_seed=1, session_seed=2, progress=False)
    return {"session_id": "ses", "subject": "S1", "one_cache": str(root / "cache"), "session": SESSION_PATH,
            "probes": "all", "truth": str(root / "truth.h5")}


def alf_dir(session: dict) -> Path:
    """The session's ``alf`` folder."""
    return Path(session["one_cache"]) / session["session"] / "alf"


def copy_session(session: dict, destination: Path) -> dict:
    """A writable copy of a session's ONE cache (tests that break inputs use it)."""
    shutil.copytree(session["one_cache"], destination)
    return {**session, "one_cache": str(destination)}


def rebuild_cache(session: dict) -> None:
    """Rebuild the cache tables with ONE's own function after adding or removing files."""
    make_parquet_db(session["one_cache"], hash_ids=True)


@pytest.fixture
def real_spike_session(tmp_path, synthetic_session) -> dict:
    """The synthetic session plus a second probe, ``alf/probe01/pykilosort``, holding the
    REAL spikes (0-120 s, 289 clusters, ids up to 499); its channel locations are a first
    release of root (997) and a revision with :data:`REAL_ACRONYMS`; the synthetic trials
    are replaced by 50 trials inside the real spikes' span (table only: per-attribute
    trial files removed) and the wheel by a real one."""
    fixtures = require_real_ibl_fixtures()
    session = copy_session(synthetic_session, tmp_path / "real")
    alf = alf_dir(session)
    probe = alf / "probe01" / "pykilosort"
    shutil.copytree(fixtures / "spikes", probe)
    n_ids = int(np.load(probe / "spikes.clusters.npy").max()) + 1
    np.save(probe / "clusters.channels.npy", np.arange(n_ids) % 384)
    np.save(probe / "channels.brainLocationIds_ccf_2017.npy", np.full(384, 997))
    (probe / CHANNELS_REVISION).mkdir()
    ids = allen_ids_from_acronyms(np.array(REAL_ACRONYMS), "test")
    np.save(probe / CHANNELS_REVISION / "channels.brainLocationIds_ccf_2017.npy", ids[np.arange(384) % len(ids)])
    rng = np.random.default_rng(0)
    stim_on = np.sort(rng.uniform(2.0, 117.0, 50))
    trials = {
        "stimOn_times": stim_on, "firstMovement_times": stim_on + 0.3, "feedback_times": stim_on + 0.6,
        "response_times": stim_on + 0.5, "goCue_times": stim_on - 0.01,
        "choice": rng.choice([-1.0, 1.0], 50), "feedbackType": np.ones(50),
        "probabilityLeft": np.full(50, 0.5), "contrastLeft": np.full(50, 1.0), "contrastRight": np.full(50, np.nan),
    }
    for path in alf.glob("_ibl_trials.*"):
        path.unlink()
    pd.DataFrame(trials).to_parquet(alf / "_ibl_trials.table.pqt")
    for name in ["position", "timestamps"]:
        shutil.copy(fixtures / "wheel_radians_irregular" / f"wheel.{name}.npy", alf / f"_ibl_wheel.{name}.npy")
    rebuild_cache(session)
    return session
