"""Benchmark: the W_in forward patterns of :func:`pipeline.neds.region.input_patterns` as
correlations (what the region stage classifies) vs as covariances (peer: the definition
before, Σ W_inᵀ), with the W_out rows unchanged, on trained NEDS models.

Three sources of models:

- default: synthetic IBL sessions of real size (:mod:`pipeline.synth.ibl` with the real spike
  fixture's rate distribution, 400 trials, 1,000 clusters -> ~440 neurons >= 2 Hz; session
  generation as ``bench/neds_realistic.py``), one model per variant (multimodal,
  encoding-only, decoding-only) trained with that bench's model and optimiser, cached in
  ``--workdir``; scored within session (the single-session scheme).
- ``--models FILE``: a JSON file ``{name: [[model file, binned file], ...]}`` of models trained
  elsewhere (e.g. the six-session acceptance models: stage calls of
  tests/neds/test_acceptance_sessions.py with the model seeds offset). Names whose records
  name a pretrained model (fine-tuned multi-session) are also scored grouped by session and
  stratified across the pooled neurons.
- ``--acceptance-offsets 0 1000 2000``: the six sessions of
  tests/neds/test_acceptance_sessions.py, generated and binned by its ``make_sessions``, and
  its models retrained by its ``train_models`` with the model seeds offset by each value (0:
  the module's own seeds); ``--multi-session`` also pretrains and fine-tunes. Every offset is
  scored as above (name ``<model> +<offset>``).

Prints, per model name and feature definition, the balanced accuracy (SVC, the stage's
defaults but ``--repeats`` fold shufflings) with its chance, the CPU seconds and the load
average. Reproduce (repository root):

    PYTHONPATH=$PWD/src .venv/bin/python bench/region_features.py [--seeds 0 1] [--epochs 40]
    PYTHONPATH=$PWD/src .venv/bin/python bench/region_features.py --models models.json --repeats 3
    PYTHONPATH=$PWD/src .venv/bin/python bench/region_features.py --acceptance-offsets 0 1000 2000 \
        --multi-session --repeats 10 --workdir /tmp/region_acceptance
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib.util
import json
import os
import resource
import time
from pathlib import Path

import numpy as np
import torch
from neds_realistic import MODEL, TRAINING, make_session  # bench/ is the script's folder

from pipeline.neds import stages
from pipeline.neds.config import NedsConfig, RegionParams
from pipeline.neds.data import load_session
from pipeline.neds.region import classify_regions, embedding_matrices, region_features
from pipeline.neds.train import load_model

VARIANTS = ("multimodal", "encoding", "decoding")


def covariance_features(features: np.ndarray, input_weight: np.ndarray, spikes: np.ndarray,
                        tasks: tuple[str, ...]) -> np.ndarray:
    """The peer: ``features`` (:func:`region_features`) with the W_in block's correlations
    turned back into covariances (times each neuron's count SD and each embedding
    dimension's SD over the bins)."""
    if "neural_in" not in embedding_matrices(tasks):
        return features
    counts = spikes.reshape(-1, spikes.shape[2]).astype(float)
    scale = np.outer(counts.std(axis=0, ddof=1), (counts @ input_weight.T).std(axis=0, ddof=1))
    dim = input_weight.shape[0]
    return np.concatenate([features[:, :dim] * scale, features[:, dim:]], axis=1)


def score(pairs: list[tuple[str, str]], params: RegionParams) -> dict[str, dict[str, float]]:
    """definition -> scheme -> balanced accuracy (and chance) for one model name's sessions."""
    pooled = {"correlation": [], "covariance": []}
    acronyms, sessions, multi_session = [], [], []
    for model_path, binned_path in pairs:
        data = load_session(binned_path)
        model, saved = load_model(model_path)
        tasks = tuple(saved["record"]["training"]["tasks"])
        spikes = data.spikes[data.splits["train"]]
        features = region_features(model, data.session_id, tasks, spikes)
        weight = model.adapters[data.session_id].neural_in.weight.detach().cpu().numpy()
        pooled["correlation"].append(features)
        pooled["covariance"].append(covariance_features(features, weight, spikes, tasks))
        acronyms.append(data.regions)
        sessions.append(np.full(data.n_neurons, data.session_id))
        multi_session.append("pretrained" in saved["record"])
    acronyms, sessions = np.concatenate(acronyms), np.concatenate(sessions)
    schemes = ("grouped", "stratified", "within_session") if all(multi_session) else ("within_session",)
    out = {}
    for definition, parts in pooled.items():
        x = np.concatenate(parts)
        out[definition] = {}
        for scheme in schemes:
            result = classify_regions(x, acronyms, params, seed=0, sessions=sessions, scheme=scheme)
            out[definition][scheme] = (result["balanced_accuracy"], result["balanced_chance"])
    return out


def train_realistic(workdir: Path, seeds: list[int], clusters: int, trials: int, epochs: int) -> dict:
    """{variant: [(model file, binned file) per session seed]}, trained once and cached."""
    neds = NedsConfig()
    models: dict[str, list[tuple[str, str]]] = {}
    for seed in seeds:
        binned, _ = make_session(workdir, clusters, trials, seed)
        for variant in VARIANTS:
            path = workdir / f"region_{variant}_{seed}_{epochs}ep.pt"
            if not path.exists():
                masking = dataclasses.replace(neds.masking, schemes=neds.variant_schemes(variant))
                cpu = time.process_time()
                stages.run_single_session(binned, variant, MODEL, masking, dataclasses.replace(TRAINING, epochs=epochs),
                                          seed=seed, device="cpu", model_path=path,
                                          metrics_path=path.with_suffix(".json"),
                                          checkpoint_dir=workdir / f"ckpt_{path.stem}", progress=False)
                print(f"trained {path.name}: {time.process_time() - cpu:.0f} CPU-s", flush=True)
            models.setdefault(variant, []).append((str(path), str(binned)))
    return models


def train_acceptance(workdir: Path, offsets: list[int], multi_session: bool) -> dict:
    """{"<model name> +<offset>": [(model file, binned file) per held-out session]}: the
    acceptance module's sessions and stage calls (imported from it, so they stay the test's)."""
    path = Path(__file__).resolve().parents[1] / "tests" / "neds" / "test_acceptance_sessions.py"
    spec = importlib.util.spec_from_file_location("test_acceptance_sessions", path)
    acceptance = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(acceptance)
    (workdir / "sessions").mkdir(parents=True, exist_ok=True)
    cpu = time.process_time()
    binned = acceptance.make_sessions(workdir / "sessions")
    print(f"sessions: {time.process_time() - cpu:.0f} CPU-s", flush=True)
    models = {}
    for offset in offsets:
        out = workdir / f"offset{offset}"
        out.mkdir(parents=True, exist_ok=True)
        cpu = time.process_time()
        _, trained = acceptance.train_models(binned, out, model_seed_offset=offset, multi_session=multi_session)
        print(f"offset {offset}: trained in {time.process_time() - cpu:.0f} CPU-s, load {os.getloadavg()}", flush=True)
        models.update({f"{name} +{offset}": pairs for name, pairs in trained.items()})
    return models


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", help="JSON {name: [[model, binned], ...]} of trained models")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--trials", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=TRAINING.epochs)
    parser.add_argument("--repeats", type=int, default=3, help="stratified fold shufflings")
    parser.add_argument("--acceptance-offsets", type=int, nargs="+",
                        help="retrain the acceptance module's models at these model-seed offsets")
    parser.add_argument("--multi-session", action="store_true",
                        help="with --acceptance-offsets: also pretrain and fine-tune the multi-session model")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workdir", default="/tmp/neds_realistic")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print("load average before", os.getloadavg(), flush=True)
    if args.models:
        models = {k: v for k, v in json.loads(Path(args.models).read_text()).items() if k != "binned"}
    elif args.acceptance_offsets is not None:
        models = train_acceptance(Path(args.workdir), args.acceptance_offsets, args.multi_session)
    else:
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
        models = train_realistic(Path(args.workdir), args.seeds, args.clusters, args.trials, args.epochs)
    params = RegionParams(cv_repeats=args.repeats)
    for name, pairs in models.items():
        cpu = time.process_time()
        for definition, schemes in score(pairs, params).items():
            print(f"{name:14s} {definition:11s} " + "  ".join(
                f"{scheme} {accuracy:.3f} (chance {chance:.3f})" for scheme, (accuracy, chance) in schemes.items()),
                flush=True)
        print(f"{name}: {time.process_time() - cpu:.0f} CPU-s to score, load average {os.getloadavg()}", flush=True)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"process CPU {usage.ru_utime + usage.ru_stime:.0f} s, max RSS {usage.ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
