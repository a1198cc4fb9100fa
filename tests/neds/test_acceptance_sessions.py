"""Acceptance of the NEDS stages on six synthetic IBL sessions with shared structure, three
held out (issue 16, "Done when"): the stage functions the rules call
(:mod:`pipeline.neds.stages`) run as the DAG runs them, and every method is scored on the
held-out sessions only, mean over sessions.

- NEDS (the multi-session model fine-tuned on each held-out session, the paper's main model)
  beats the per-session linear encoder on bits per spike and the linear decoder on each of
  the four decoding targets (single-trial R² for wheel and whisker, balanced accuracy for
  choice and block);
- multi-session pretraining helps: the fine-tuned model beats the single-session multimodal
  model on encoding and decoding;
- brain-region classification from neuron embeddings (balanced accuracy, chance 1 / regions):
  every variant (one classifier per session: single-session models have unrelated embedding
  coordinates) and the multi-session model (folds grouped by session, and stratified) above
  chance; every variant >= chance + 0.1; multimodal >= each unimodal variant (held at the
  module's model seeds and at +1000 / +2000: see its test).

Sessions: :mod:`pipeline.synth.ibl` defaults (sparse, drifting firing; wheel mostly still; a
weak, mainly pre-stimulus block prior; regions with distinct tuning and region-specific
shared fluctuations, generator 2.2.0), shared region profiles
(one ``shared_seed``), 600 trials and 120 clusters each (~50 neurons >= 2 Hz after the
binning filter; ~120 test trials per session). 600, not 200 trials: IBL sessions hold several
hundred trials, and with 200 (~40 test trials per session, 3 sessions) the discrete targets'
comparison with the linear decoder was at its noise level. On generator 2.2.0 at 200 trials
(2026-12-03, held-out means): 40 epochs, NEDS multi-session block 0.585 < linear 0.621
(choice 0.635 vs 0.625); 60 epochs, choice 0.584 < 0.625 and block 0.615 < 0.621, grouped
multi-session region accuracy 0.179 < chance 0.2; the same sessions with other spike
realisations moved linear block between 0.458 and 0.621 (docs/architecture.md). At 600 trials,
40 epochs (2026-12-03 02:04 UTC, alone, 10:04 wall, 608 CPU-s), NEDS multi-session / linear:
bps 0.063 / 0.021, wheel R² 0.780 / 0.504, whisker R² 0.483 / 0.347, choice 0.769 / 0.650,
block 0.615 / 0.457; single-session multimodal 0.062, 0.680, 0.461, 0.709, 0.623; region
(within session) multimodal 0.574, encoding-only 0.481, decoding-only 0.424, multi-session
grouped 0.304, stratified 0.507. For CI time the trials are binned at 40 ms (50 bins per 2 s trial, half the
paper's 100) and the models are tiny (1 layer, width 32, no attention dropout: on CPU
``scaled_dot_product_attention`` with dropout is ~18x slower than without), trained 40 epochs:
a multimodal model trains each head in only a share of its samples (choice ~1/3: the
``target_fraction`` of the training history), and at 20 epochs its choice decoder had not
left the class prior (NEDS multi-session 0.511 against the linear 0.641).

POYO+ and multi-session NDT2 ("beat chance on every target") are built on branch
s2-16baselines; their checks belong in :data:`CHANCE_BEATING_BASELINES` below once their
stages exist (method name -> stage running it on the held-out sessions).
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

from pipeline.ibl.binning import bin_session
from pipeline.ibl.config import BinningConfig
from pipeline.neds import stages
from pipeline.neds.config import (
    BaselineParams,
    MaskingParams,
    ModelParams,
    NedsConfig,
    RegionParams,
    TrainingParams,
)
from pipeline.synth.config import IblSynthParams
from pipeline.synth.ibl import SESSION_PATH, generate_session

pytestmark = [pytest.mark.slow, pytest.mark.acceptance]  # 10:04 wall, 608 CPU-s alone on 2 cores: opt-in (README "Testing")

SHARED_SEED = 5
SESSIONS = {f"ses{i}": 100 + i for i in range(6)}  # session id -> session seed
HELDOUT = ("ses3", "ses4", "ses5")
SYNTH = IblSynthParams(n_trials=600, n_clusters=120)
BINNING = BinningConfig(bin_size_s=0.04)
MODEL = ModelParams(embed_dim=32, n_heads=2, n_layers=1, mlp_dim=64, dropout=0.1, attention_dropout=0.0)
TRAINING = TrainingParams(epochs=40, batch_size=16, learning_rate=0.003, weight_decay=0.01)
PRETRAINING = TrainingParams(epochs=40, batch_size=16, learning_rate=0.003, weight_decay=0.01)
FINETUNING = TrainingParams(epochs=40, batch_size=16, learning_rate=0.003, weight_decay=0.01, adapter_only_epochs=5)
NEDS = NedsConfig(variants=("multimodal", "encoding", "decoding"), heldout_sessions=HELDOUT)
#: Baselines that must beat chance on every decoding target (issue 16): POYO+ and
#: multi-session NDT2 from branch s2-16baselines go here.
CHANCE_BEATING_BASELINES: tuple[str, ...] = ()

CONTINUOUS_TARGETS = ("wheel_speed_r2", "whisker_motion_energy_r2")
DISCRETE_TARGETS = ("choice_balanced_accuracy", "block_balanced_accuracy")


@pytest.fixture(scope="module")
def binned(tmp_path_factory) -> dict[str, str]:
    """Six synthetic sessions, generated and binned like the DAG's IBL stages: id -> binned file."""
    return make_sessions(tmp_path_factory.mktemp("acceptance_sessions"))


def make_sessions(root) -> dict[str, str]:
    """Generate and bin :data:`SESSIONS` under ``root`` (a Path): session id -> binned file."""
    paths = {}
    for sid, session_seed in SESSIONS.items():
        generate_session(root / sid, root / f"{sid}_truth.h5", SYNTH, shared_seed=SHARED_SEED,
                         session_seed=session_seed, progress=False)
        paths[sid] = str(root / f"{sid}.h5")
        bin_session({"session_id": sid, "one_cache": str(root / sid), "session": SESSION_PATH, "probes": "all"},
                    paths[sid], BINNING, split_seed=session_seed, progress=False)
    return paths


def train_models(binned: dict[str, str], out, model_seed_offset: int = 0,
                 multi_session: bool = True) -> tuple[dict[str, dict[str, dict]], dict[str, list[tuple[str, str]]]]:
    """The DAG's NEDS training stages on ``binned`` (session id -> binned file), model files
    under ``out``: every variant single-session on each held-out session, and (when
    ``multi_session``) the model pretrained on the other sessions, fine-tuned on each
    held-out one. Model seeds are this module's plus ``model_seed_offset`` (bench/
    region_features.py retrains at other offsets). Returns (method -> held-out session ->
    test metrics, region-stage model name -> [(model file, binned file)])."""
    metrics: dict[str, dict[str, dict]] = {}
    models: dict[str, list[tuple[str, str]]] = {}
    for variant in NEDS.variants:
        masking = dataclasses.replace(NEDS.masking, schemes=NEDS.variant_schemes(variant))
        for sid in HELDOUT:
            name = f"neds_{variant}"
            record = stages.run_single_session(
                binned[sid], variant, MODEL, masking, TRAINING, seed=SESSIONS[sid] + model_seed_offset, device="cpu",
                model_path=out / f"{name}_{sid}.pt", metrics_path=out / f"{name}_{sid}.json",
                checkpoint_dir=out / f"ckpt_{name}_{sid}", progress=False)
            metrics.setdefault(name, {})[sid] = record["metrics"]
            models.setdefault(variant, []).append((str(out / f"{name}_{sid}.pt"), binned[sid]))
    if not multi_session:
        return metrics, models
    stages.run_pretraining([binned[s] for s in SESSIONS if s not in HELDOUT], MODEL, NEDS.masking, PRETRAINING,
                           seed=1 + model_seed_offset, device="cpu", model_path=out / "pretrained.pt",
                           summary_path=out / "pretrained.json", checkpoint_dir=out / "ckpt_pretrained", progress=False)
    for sid in HELDOUT:
        record = stages.run_finetuning(out / "pretrained.pt", binned[sid], NEDS.masking, FINETUNING,
                                       seed=SESSIONS[sid] + model_seed_offset, device="cpu",
                                       model_path=out / f"finetuned_{sid}.pt",
                                       metrics_path=out / f"finetuned_{sid}.json",
                                       checkpoint_dir=out / f"ckpt_finetuned_{sid}", progress=False)
        metrics.setdefault("neds_multi_session", {})[sid] = record["metrics"]
        models.setdefault("multi_session", []).append((str(out / f"finetuned_{sid}.pt"), binned[sid]))
    return metrics, models


@pytest.fixture(scope="module")
def measured(binned, tmp_path_factory, one_torch_thread_module):
    """Every stage of the NEDS DAG on the six sessions -> {"metrics": method -> held-out
    session -> test metrics, "region": model name -> region classification}."""
    out = tmp_path_factory.mktemp("acceptance_outputs")
    metrics, models = train_models(binned, out)
    for sid in HELDOUT:
        record = stages.run_baselines(binned[sid], BaselineParams(), seed=SESSIONS[sid], out_path=out / f"base_{sid}.json")
        metrics.setdefault("linear", {})[sid] = record["linear"]
        metrics.setdefault("chance", {})[sid] = record["chance"]
    region = stages.run_region_classification(models, RegionParams(), seed=0, out_path=out / "region.json")
    result = {"metrics": metrics, "region": region}
    print(json.dumps(summary_table(metrics), indent=1))
    print({name: (r["balanced_accuracy"], r["balanced_chance"], r["accuracy"], r["chance"]) for name, r in region.items()})
    return result


@pytest.fixture(scope="module")
def one_torch_thread_module():
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def held_out_mean(metrics: dict[str, dict], method: str, key: str) -> float:
    return float(np.mean([metrics[method][sid][key] for sid in HELDOUT]))


def summary_table(metrics: dict[str, dict]) -> dict[str, dict[str, str]]:
    """method -> metric -> "mean ± s.e." over the held-out sessions (for the log and the docs)."""
    table = {}
    for method, per_session in metrics.items():
        keys = [k for k in ("bps", *CONTINUOUS_TARGETS, *DISCRETE_TARGETS) if k in per_session[HELDOUT[0]]]
        table[method] = {}
        for key in keys:
            values = np.array([per_session[sid][key] for sid in HELDOUT])
            table[method][key] = f"{values.mean():.3f} ± {values.std(ddof=1) / np.sqrt(values.size):.3f}"
    return table


def test_neds_encodes_better_than_the_linear_encoder(measured):
    m = measured["metrics"]
    assert held_out_mean(m, "neds_multi_session", "bps") > max(held_out_mean(m, "linear", "bps"), 0.0)


@pytest.mark.parametrize("target", CONTINUOUS_TARGETS + DISCRETE_TARGETS)
def test_neds_decodes_better_than_the_linear_decoder(measured, target):
    m = measured["metrics"]
    assert held_out_mean(m, "neds_multi_session", target) > held_out_mean(m, "linear", target)
    assert held_out_mean(m, "neds_multi_session", target) > held_out_mean(m, "chance", target)


@pytest.mark.parametrize("key", ("bps", "decoding"))
def test_multi_session_pretraining_beats_single_session_training(measured, key):
    m = measured["metrics"]

    def score(method):
        if key == "bps":
            return held_out_mean(m, method, "bps")
        return float(np.mean([held_out_mean(m, method, k) for k in CONTINUOUS_TARGETS + DISCRETE_TARGETS]))

    assert score("neds_multi_session") > score("neds_multimodal")


def test_region_features_classify_above_chance_for_every_model(measured):
    """Every variant (one classifier per session), and the multi-session model with folds
    grouped by session (neurons of held-out sessions only) and stratified, scores above its
    balanced chance."""
    region = measured["region"]
    for name in ("multimodal", "encoding", "decoding", "multi_session", "multi_session_stratified"):
        assert region[name]["balanced_accuracy"] > region[name]["balanced_chance"], name
    assert region["multi_session"]["cv"].startswith("grouped by session")
    assert all(region[v]["cv"].startswith("within session") for v in ("multimodal", "encoding", "decoding"))


def test_every_single_session_variant_classifies_regions_at_least_chance_plus_0_1(measured):
    """Features: W_out rows and the forward patterns of W_in as correlations
    (pipeline.neds.region). Measured 2026-12-02 (branch s7-region; the three held-out
    sessions, paper's SVC, within session, 10 x 5-fold; chance 0.200) on models retrained with
    this module's stage calls at its model seeds / +1000 / +2000: multimodal 0.393 / 0.398 /
    0.406, encoding-only 0.370 / 0.450 / 0.414, decoding-only 0.337 / 0.356 / 0.347 (raw W_in
    columns, branch s6-region: decoding-only 0.291 / 0.294, below chance + 0.1). This module's
    own run (2026-12-02) gave the first figures exactly. After the gradient-norm loss balance
    (main af49513, models trained by the new objective) this module gave 0.382 / 0.367 / 0.337
    at its model seeds, and (retrained, 10 x 5-fold) 0.383 / 0.459 / 0.356 at +1000, 0.401 / 0.417 /
    0.347 at +2000. Generator 2.2.0 (region-specific fluctuations; bench/region_features.py
    --acceptance-offsets 0 1000 2000 --repeats 10, 2026-12-03), sessions of 200 trials: 0.466 /
    0.347 / 0.370 at its model seeds, 0.450 / 0.415 / 0.349 at +1000, 0.439 / 0.390 / 0.392 at
    +2000; of 600 trials (this module now): 0.574 / 0.481 / 0.424, 0.534 / 0.448 / 0.419, 0.562 /
    0.517 / 0.343."""
    region = measured["region"]
    for variant in ("multimodal", "encoding", "decoding"):
        assert region[variant]["balanced_accuracy"] >= region[variant]["balanced_chance"] + 0.1, variant


def test_multimodal_region_features_classify_at_least_as_well_as_each_unimodal_variant(measured):
    """Issue 16: region accuracy multimodal >= each unimodal variant. Holds since generator
    2.2.0 (region-specific shared fluctuations, literature-sized: pipeline.synth.ibl): a model
    that sees spikes can read a neuron's region from which co-fluctuation it shares, an
    encoding-only model (every spike token hidden) cannot. Measured 2026-12-03
    (bench/region_features.py --acceptance-offsets 0 1000 2000 --multi-session --repeats 10,
    branch s8-region; sessions of 200 trials, within session, chance 0.2) at this module's
    model seeds / +1000 / +2000:
    multimodal 0.466 / 0.450 / 0.439, encoding-only 0.347 / 0.415 / 0.390, decoding-only
    0.370 / 0.349 / 0.392. On generator 2.1.0 (latents region-independent only) the ordering
    held at this module's seeds only (multimodal 0.382 / 0.383 / 0.401, encoding-only
    0.367 / 0.459 / 0.417): the multimodal W_out rows carried twice the encoding-only rows'
    variance explained by the two region-independent latents, which dilute region identity.
    The ordering rests on the latents' size: with half the default loading (0.15; within-region
    noise correlations 0.036-0.068 instead of 0.064-0.095 at 100 ms) it failed at this module's
    seeds (multimodal 0.371 < encoding-only 0.375; bench/README). On this module's 600-trial
    sessions (2026-12-03, bench/region_features.py --acceptance-offsets 1000 2000 --repeats 10,
    17:31 wall, 739 CPU-s at load 1-3.5, and the module's own run): multimodal 0.574 / 0.534 /
    0.562, encoding-only 0.481 / 0.448 / 0.517, decoding-only 0.424 / 0.419 / 0.343."""
    region = measured["region"]
    for variant in ("encoding", "decoding"):
        assert region["multimodal"]["balanced_accuracy"] >= region[variant]["balanced_accuracy"], variant
