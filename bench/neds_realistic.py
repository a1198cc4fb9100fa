"""NEDS multimodal vs the linear baseline on ONE synthetic IBL session of realistic size.

Real IBL probes keep 300-700 neurons after the 2 Hz filter (our acceptance sessions ~50), so
this bench checks that NEDS still beats the per-session linear encoder (bits per spike) and
decoder (wheel / whisker single-trial R², choice / block balanced accuracy) at that size,
for one or more spike gradient ratios (``--spike-gradient-ratios``, the training key
``spike_gradient_ratio`` of :func:`pipeline.neds.model.balanced_objective`).

Session: :mod:`pipeline.synth.ibl` with 400 trials and ``--clusters`` clusters; the
cluster firing rates are log-normal with the median and log-SD measured on the real spike
fixture (``/work/shared/data/real/ibl_fixtures/spikes``: 289 clusters, median 0.98 Hz,
log-SD 2.21, 59 % below 2 Hz); the bench prints the generated session's statistics beside
them (median rate, log-SD, fraction below 2 Hz, neurons kept, fraction of bins with the
wheel still). Binned at 40 ms (50 bins per 2 s trial) as the acceptance test, trained with
the acceptance test's model and optimiser (1 layer, width 32; 40 epochs) on CPU.

    PYTHONPATH=src .venv/bin/python bench/neds_realistic.py [--clusters 1000] [--spike-gradient-ratios 1] \
        [--seeds 0] [--threads 2] [--workdir /tmp/neds_realistic] [--tag NAME_]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import resource
import time
from pathlib import Path

import numpy as np
import torch

from pipeline.ibl.binning import bin_session
from pipeline.ibl.config import BinningConfig
from pipeline.neds import stages
from pipeline.neds.config import BaselineParams, MaskingParams, ModelParams, TrainingParams
from pipeline.neds.data import load_session
from pipeline.synth.config import IblSynthParams
from pipeline.synth.ibl import PROBE_COLLECTION, SESSION_PATH, generate_session

#: Cluster firing rates of the real spike fixture (median Hz, natural-log SD, fraction < 2 Hz).
REAL_FIXTURE = {"median_hz": 0.98, "log_sd": 2.21, "fraction_below_2hz": 0.59}
BINNING = BinningConfig(bin_size_s=0.04)
MODEL = ModelParams(embed_dim=32, n_heads=2, n_layers=1, mlp_dim=64, dropout=0.1, attention_dropout=0.0)
TRAINING = TrainingParams(epochs=40, batch_size=16, learning_rate=0.003, weight_decay=0.01)
KEYS = ("bps", "wheel_speed_r2", "whisker_motion_energy_r2", "choice_balanced_accuracy", "block_balanced_accuracy")


def make_session(workdir: Path, n_clusters: int, n_trials: int, seed: int) -> tuple[Path, int]:
    """Generate and bin one session (cached in ``workdir``); print its firing and wheel statistics.
    Returns the binned file and its number of neurons."""
    binned = workdir / f"ses{seed}_{n_clusters}x{n_trials}.h5"
    alf = workdir / f"ses{seed}_{n_clusters}x{n_trials}"
    if not binned.exists():
        params = IblSynthParams(n_trials=n_trials, n_clusters=n_clusters,
                                rate_median_hz=REAL_FIXTURE["median_hz"], rate_log_sd=REAL_FIXTURE["log_sd"])
        generate_session(alf, workdir / f"{alf.name}_truth.h5", params, shared_seed=5, session_seed=100 + seed,
                         progress=False)
        bin_session({"session_id": alf.name, "one_cache": str(alf), "session": SESSION_PATH, "probes": "all"},
                    str(binned), BINNING, split_seed=100 + seed, progress=False)
    spikes_dir = alf / SESSION_PATH / PROBE_COLLECTION
    times, clusters = np.load(spikes_dir / "spikes.times.npy"), np.load(spikes_dir / "spikes.clusters.npy")
    rates = np.bincount(clusters) / (times.max() - times.min())
    rates = rates[rates > 0]
    data = load_session(binned)
    wheel = data.arrays("train")["wheel_speed"]
    print(json.dumps({"session": alf.name, "clusters_firing": int(rates.size),
                      "median_hz": round(float(np.median(rates)), 2), "log_sd": round(float(np.log(rates).std()), 2),
                      "fraction_below_2hz": round(float(np.mean(rates < 2)), 2), "neurons_kept": data.n_neurons,
                      "wheel_still_fraction": round(float(np.mean(np.abs(wheel - wheel.min()) < 1e-3)), 2),
                      "real_fixture": REAL_FIXTURE}))
    return binned, data.n_neurons


def target_shortfall(summary: dict) -> dict[str, float]:
    """Per metric of :data:`KEYS`: its best validation value over the epochs minus its value at
    the selected epoch (validation trials; what selecting each target at its own best epoch
    would have gained on validation)."""
    history = [h for h in summary["history"] if h["val_metrics"] is not None]
    selected = summary["history"][summary["best_epoch"]]["val_metrics"]

    def value(metrics: dict, key: str) -> float:
        return float(np.mean([m[key] for m in metrics.values()]))

    return {key: round(max(value(h["val_metrics"], key) for h in history) - value(selected, key), 3) for key in KEYS}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--trials", type=int, default=400)
    parser.add_argument("--spike-gradient-ratios", type=float, nargs="+", default=[1.0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=TRAINING.epochs)
    parser.add_argument("--workdir", default="/tmp/neds_realistic")
    parser.add_argument("--tag", default="", help="prefix of this run's model files in the work folder (sessions "
                                                  "and linear baselines are shared between tags)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for seed in args.seeds:
        binned, n_neurons = make_session(workdir, args.clusters, args.trials, seed)
        linear_path = workdir / f"linear_{seed}.json"  # deterministic given the session and seed: reused
        linear = json.loads(linear_path.read_text()) if linear_path.exists() else \
            stages.run_baselines(binned, BaselineParams(), seed=seed, out_path=linear_path)
        rows.append({"seed": seed, "method": "linear", **{k: linear["linear"][k] for k in KEYS}})
        for ratio in args.spike_gradient_ratios:
            training = dataclasses.replace(TRAINING, epochs=args.epochs, spike_gradient_ratio=ratio)
            cpu, wall = time.process_time(), time.perf_counter()
            record = stages.run_single_session(
                binned, "multimodal", MODEL, MaskingParams(), training, seed=seed, device="cpu",
                model_path=workdir / f"{args.tag}neds_{seed}_r{ratio:g}.pt",
                metrics_path=workdir / f"{args.tag}neds_{seed}_r{ratio:g}.json",
                checkpoint_dir=workdir / f"{args.tag}ckpt_{seed}_r{ratio:g}", progress=False)
            weights = [h["spike_gradient_weight"] for h in record["training"]["history"]]
            rows.append({"seed": seed, "method": f"{args.tag}neds spike_gradient_ratio={ratio:g}",
                         **{k: record["metrics"][k] for k in KEYS},
                         "best_epoch": record["training"]["best_epoch"],
                         "task_best_epoch": record["training"]["task_best_epoch"],
                         "task_shortfall": {t: round(v, 3) for t, v in record["training"]["task_shortfall"].items()},
                         "target_shortfall": target_shortfall(record["training"]),
                         "spike_weight_first_last_epoch": [round(weights[0], 1), round(weights[-1], 1)],
                         "wall_s": round(time.perf_counter() - wall), "cpu_s": round(time.process_time() - cpu)})
            print(json.dumps(rows[-1]), flush=True)
    print(f"\n| seed | method | {' | '.join(KEYS)} |\n|---|---|{'---|' * len(KEYS)}")
    for row in rows:
        print(f"| {row['seed']} | {row['method']} | " + " | ".join(f"{row[k]:.3f}" for k in KEYS) + " |")
    usage = resource.getrusage(resource.RUSAGE_SELF)
    print(f"CPU {usage.ru_utime + usage.ru_stime:.0f} s, max RSS {usage.ru_maxrss / 1024:.0f} MiB")


if __name__ == "__main__":
    main()
