"""Fixtures of the NEDS tests: small synthetic IBL sessions (ground truth known), binned by
the pipeline's own binning stage, and one multimodal model trained on one of them."""

from __future__ import annotations

import pytest
import torch

from pipeline.ibl.binning import bin_session
from pipeline.ibl.config import BinningConfig
from pipeline.neds.config import MaskingParams, ModelParams, TrainingParams
from pipeline.neds.data import load_session
from pipeline.neds.train import build_model, train_model
from pipeline.synth.config import IblSynthParams
from pipeline.synth.ibl import SESSION_PATH, generate_session

#: A model small enough to train in about a minute on one CPU core.
TINY_MODEL = ModelParams(embed_dim=32, n_heads=2, n_layers=1, mlp_dim=64, dropout=0.1, attention_dropout=0.1)
TRAINING = TrainingParams(epochs=25, batch_size=8, learning_rate=0.003, weight_decay=0.01)


@pytest.fixture(autouse=True)
def _single_torch_thread(one_torch_thread):
    """Every NEDS test runs with one torch thread (tests/conftest.py)."""


@pytest.fixture(scope="session")
def binned_sessions(tmp_path_factory) -> dict[str, str]:
    """Two synthetic sessions (200 trials, ~50 neurons >= 2 Hz each, same region profiles)
    -> binned files; session id -> path."""
    root = tmp_path_factory.mktemp("neds_sessions")
    paths = {}
    for session_seed, sid in [(11, "sesA"), (12, "sesB")]:
        generate_session(root / sid, root / f"{sid}_truth.h5", IblSynthParams(n_trials=200, n_clusters=120),
                         shared_seed=5, session_seed=session_seed, progress=False)
        paths[sid] = str(root / f"{sid}.h5")
        bin_session({"session_id": sid, "one_cache": str(root / sid), "session": SESSION_PATH, "probes": "all"},
                    paths[sid], BinningConfig(),
                    split_seed=session_seed, progress=False)
    return paths


@pytest.fixture(scope="session")
def sessions(binned_sessions):
    return {sid: load_session(path) for sid, path in binned_sessions.items()}


@pytest.fixture(scope="session")
def trained_multimodal(sessions, tmp_path_factory):
    """(model, training summary) of the multimodal model trained on sesA's training trials."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    data = sessions["sesA"]
    model = build_model(TINY_MODEL, {"sesA": data}, seed=3)
    summary = train_model(model, {"sesA": data}, MaskingParams().schemes, MaskingParams(), TRAINING, seed=3,
                          checkpoint_dir=tmp_path_factory.mktemp("ckpt"), device=torch.device("cpu"), progress=False)
    torch.set_num_threads(previous)
    return model, summary
