"""NDT2 and POYO+, single-session and multi-session (pretrained on two synthetic sessions,
adapted to a third), beat the chance predictor on the held-out session's test trials
(single-session NDT2: tests/neds/test_ndt2.py, same session and criteria).

Targets asserted: wheel speed and whisker motion energy single-trial R², choice balanced
accuracy. Block is reported, not asserted: on these generated sessions even an ideal
observer is barely above chance (block balanced accuracy of a 3-class logistic regression on
sesA's test trials: 0.55 from the true subjective prior that drives the neurons, 0.41 from
the neurons' counts projected on the generator's true block weights, chance 0.33), so a
35-trial test set cannot separate a working decoder from chance (see the issue-16 note).

Sessions: 600 trials each (~120 test trials), as the NEDS acceptance module. With generator
2.2.0 (region-specific fluctuations) and 200 trials, held-out sesA's whisker motion energy was
within reach of none of the three models (R² 0.043 / 0.111 / 0.087 for multi-session NDT2 /
POYO+ / multi-session POYO+ against chance 0.064 + 0.05; the linear decoder 0.186), a
35-trial test set of a session whose whisker signal is weak.
"""

from __future__ import annotations

import logging

import pytest
import torch

from pipeline.ibl.binning import bin_session
from pipeline.ibl.config import BinningConfig
from pipeline.neds.config import Ndt2MultiSessionParams, PoyoMultiSessionParams, PoyoParams
from pipeline.neds.data import load_session
from pipeline.neds.evaluate import chance_metrics
from pipeline.neds.ndt2 import evaluate_ndt2, finetune_ndt2, pretrain_ndt2
from pipeline.neds.poyo import evaluate_poyo, finetune_poyo, pretrain_poyo, train_poyo
from pipeline.synth.config import IblSynthParams
from pipeline.synth.ibl import SESSION_PATH, generate_session

pytestmark = [pytest.mark.slow, pytest.mark.acceptance]  # 2:00 wall, 122 CPU-s on 2 cores at load ~2: opt-in (README "Testing")
log = logging.getLogger(__name__)

NDT2 = Ndt2MultiSessionParams(patch_size=32, embed_dim=32, n_heads=2, n_layers=1, decoder_layers=1, mlp_dim=64,
                              pretrain_epochs=4, finetune_epochs=4, decode_epochs=40, batch_size=16,
                              learning_rate=0.002)
POYO = dict(embed_dim=32, head_dim=16, n_heads=2, n_layers=1, batch_size=16, learning_rate=0.003)
CPU = torch.device("cpu")


SYNTH = IblSynthParams(n_trials=600, n_clusters=120)  # as tests/neds/test_acceptance_sessions.py


@pytest.fixture(scope="module")
def heldout_and_pretraining(tmp_path_factory):
    """(sesA, {sesB, sesC}): three sessions of one generator (shared structure, session seeds
    11 / 12 / 13 as the tiny sessions of tests/neds/conftest.py), 600 trials each."""
    root = tmp_path_factory.mktemp("neds_transformer_sessions")
    sessions = {}
    for session_seed, sid in [(11, "sesA"), (12, "sesB"), (13, "sesC")]:
        generate_session(root / sid, root / f"{sid}_truth.h5", SYNTH, shared_seed=5, session_seed=session_seed,
                         progress=False)
        bin_session({"session_id": sid, "one_cache": str(root / sid), "session": SESSION_PATH, "probes": "all"},
                    root / f"{sid}.h5", BinningConfig(), split_seed=session_seed, progress=False)
        sessions[sid] = load_session(root / f"{sid}.h5")
    return sessions["sesA"], {"sesB": sessions["sesB"], "sesC": sessions["sesC"]}


def _train(model_name, heldout, pretraining):
    if model_name == "ndt2_multi_session":
        model, _ = pretrain_ndt2(pretraining, NDT2, seed=1, device=CPU)
        finetune_ndt2(model, heldout, seed=1, device=CPU)
        return evaluate_ndt2(model, heldout)
    if model_name == "poyo":
        model, _ = train_poyo(heldout, PoyoParams(**POYO, max_spikes=1024, epochs=20), seed=1, device=CPU)
        return evaluate_poyo(model, heldout, seed=1)
    params = PoyoMultiSessionParams(**POYO, epochs=15, identify_epochs=5, finetune_epochs=15)
    model, _ = pretrain_poyo(pretraining, params, seed=1, device=CPU)
    finetune_poyo(model, heldout, seed=1, device=CPU)
    return evaluate_poyo(model, heldout, seed=1)


@pytest.mark.parametrize("model_name", ["ndt2_multi_session", "poyo", "poyo_multi_session"])
def test_beats_chance_on_the_held_out_session(heldout_and_pretraining, model_name):
    heldout, pretraining = heldout_and_pretraining
    metrics, chance = _train(model_name, heldout, pretraining), chance_metrics(heldout)
    log.info("%s on %s: %s (chance %s)", model_name, heldout.session_id, metrics, chance)
    for name in ("wheel_speed_r2", "whisker_motion_energy_r2"):
        assert metrics[name] > chance[name] + 0.05, (name, metrics[name], chance[name])
    # ~120 test trials: balanced accuracy 0.6 is ~12 trials above the 0.5 of chance
    assert metrics["choice_balanced_accuracy"] > 0.6, metrics["choice_balanced_accuracy"]
