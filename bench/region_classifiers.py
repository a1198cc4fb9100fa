"""Benchmark: region classifiers of :mod:`pipeline.neds.region` (``region.classifier``), the
paper's linear SVC (peer, C by inner CV) vs shrinkage LDA, on planted neuron embeddings of the
acceptance sessions' size: 3 sessions x 50 neurons (10 per region, 5 regions), 32 features,
each session its own region means (``signal`` x standard normal, a basis of its own, as a
single-session model), unit isotropic noise plus ``nuisance`` shared high-variance
directions (SD 3 per feature); one classifier per session, 5-fold x 2 repeats.

Prints per planted seed and classifier the balanced accuracy and the process CPU seconds, the
CPU ratio svc / lda of the same run, and the load average before and after. Reproduce (from
the repository root, ~1 min alone):

    PYTHONPATH=$PWD/src .venv/bin/python bench/region_classifiers.py [--nuisance 4] [--signal 0.6]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from pipeline.neds.config import RegionParams
from pipeline.neds.region import classify_regions

REGIONS = ("PO", "LP", "DG", "CA1", "VISa")


def planted(seed: int, nuisance: int, signal: float, n_sessions: int = 3, per_region: int = 10,
            n_features: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(embeddings (neurons, n_features), acronyms, session ids) as the module docstring."""
    rng = np.random.default_rng(seed)
    x, acronyms, sessions = [], [], []
    for s in range(n_sessions):
        region = np.repeat(np.arange(len(REGIONS)), per_region)
        means = signal * rng.standard_normal((len(REGIONS), n_features))
        mixing = 3.0 * rng.standard_normal((nuisance, n_features))
        x.append(means[region] + rng.standard_normal((region.size, n_features))
                 + rng.standard_normal((region.size, nuisance)) @ mixing)
        acronyms.append(np.array(REGIONS)[region])
        sessions.append(np.full(region.size, f"s{s}"))
    return np.concatenate(x), np.concatenate(acronyms), np.concatenate(sessions)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nuisance", type=int, default=4)
    parser.add_argument("--signal", type=float, default=0.6)
    args = parser.parse_args()
    print("load average before", os.getloadavg())
    for seed in (0, 1):
        x, acronyms, sessions = planted(seed, args.nuisance, args.signal)
        cpu = {}
        for classifier in ("lda", "svc"):
            start = time.process_time()
            result = classify_regions(x, acronyms, RegionParams(classifier=classifier, cv_repeats=2), seed=0,
                                      sessions=sessions, scheme="within_session")
            cpu[classifier] = time.process_time() - start
            print(f"seed {seed} {classifier}: balanced accuracy {result['balanced_accuracy']:.3f}, "
                  f"{cpu[classifier]:.1f} CPU-s")
        print(f"seed {seed}: CPU svc / lda {cpu['svc'] / cpu['lda']:.1f}")
    print("load average after", os.getloadavg())


if __name__ == "__main__":
    main()
