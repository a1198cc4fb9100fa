"""Benchmark: binning a synthetic IBL session of 1,000 clusters x ~1 h of spikes.

Measures, each in a fresh subprocess (wall time and peak RSS):

1. ``stage``: the whole stage, ``pipeline.ibl.binning.bin_session`` (load + validate,
   filters, spike counts, wheel and whisker resampling, HDF5 output);
2. ``ours``: opening the session with ONE-api (local cache tables, dataset and revision
   resolution), memory-mapping the spikes, then the spike-count kernel ``bin_spikes`` on
   the kept trials and neurons;
3. ``peer``: the same ONE-api read, then the same counts with ``numpy.histogram2d`` per
   trial over that trial's spikes (the straightforward implementation), checked equal to
   ``ours``.

Reports ratios peer / ours. Reproduce (from the repository root, ~2 min):

    .venv/bin/python bench/ibl_binning.py [--workdir /tmp/ibl_bench] [--clusters 1000] [--trials 800] [--repeats 3]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from pipeline.memory import peak_rss_mb


def make_session(workdir: Path, n_clusters: int, n_trials: int) -> dict:
    from pipeline.synth.config import IblSynthParams
    from pipeline.synth.ibl import generate_session

    from pipeline.synth.ibl import SESSION_PATH

    cache = workdir / "one_cache"
    if not cache.exists():
        generate_session(cache, workdir / "truth.h5", IblSynthParams(n_trials=n_trials, n_clusters=n_clusters),
                         shared_seed=1, session_seed=2, progress=False)
    return {"session_id": "bench", "subject": "bench", "one_cache": str(cache), "session": SESSION_PATH,
            "probes": "all"}


def run_method(method: str, workdir: Path, session: dict) -> dict:
    from pipeline.ibl.binning import _LazyRows, bin_session, bin_spikes
    from pipeline.ibl.config import BinningConfig
    from pipeline.io.alf import OneSession
    from pipeline.synth.ibl import PROBE_COLLECTION

    config = BinningConfig()
    start = time.perf_counter()
    if method == "stage":
        bin_session(session, workdir / "binned.h5", config, split_seed=0, progress=False)
        result = {}
    else:
        import h5py

        with h5py.File(workdir / "binned.h5") as f:  # kept trials and neurons of the stage run
            align, clusters = f["trials/align_time_s"][()], f["neurons/cluster_id"][()]
        import one.api  # noqa: F401  (module import is process start-up, not the read)

        edges = config.relative_edges_s
        start = time.perf_counter()  # ONE-api read (cache tables, dataset resolution) + counting
        spikes = OneSession(session["one_cache"], session["session"]).object_files("spikes", PROBE_COLLECTION)
        times = np.load(spikes["times"], mmap_mode="r")
        spike_clusters = np.load(spikes["clusters"], mmap_mode="r")
        rows = np.full(int(spike_clusters.max()) + 1, -1)
        rows[clusters] = np.arange(clusters.size)
        read_seconds = time.perf_counter() - start
        if method == "ours":
            counts = bin_spikes(times, _LazyRows(spike_clusters, rows), clusters.size, align, edges)
        else:
            counts = np.zeros((align.size, edges.size - 1, clusters.size), np.uint16)
            neuron_edges = np.arange(clusters.size + 1) - 0.5
            for i, t0 in enumerate(align):
                lo, hi = np.searchsorted(times, [t0 + edges[0], t0 + edges[-1]])
                r = rows[np.asarray(spike_clusters[lo:hi])]
                keep = r >= 0
                counts[i] = np.histogram2d(np.asarray(times[lo:hi])[keep], r[keep], bins=[t0 + edges, neuron_edges])[0]
    seconds, peak = time.perf_counter() - start, peak_rss_mb()
    if method != "stage":
        result = {"spikes": int(counts.sum(dtype=np.int64)), "sha256": hashlib.sha256(counts.data).hexdigest(),
                  "read_seconds": read_seconds, "count_seconds": seconds - read_seconds}
    return {**result, "seconds": seconds, "peak_rss_mb": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/ibl_bench"))
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--trials", type=int, default=800)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--method", choices=["stage", "ours", "peer"], help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    session = make_session(args.workdir, args.clusters, args.trials)
    if args.method:
        print(json.dumps(run_method(args.method, args.workdir, session)))
        return

    from pipeline.synth.ibl import PROBE_COLLECTION

    times = np.load(Path(session["one_cache"]) / session["session"] / PROBE_COLLECTION / "spikes.times.npy",
                    mmap_mode="r")
    print(f"session: {args.clusters} clusters, {times.size:,} spikes over {(times[-1] - times[0]) / 3600:.2f} h")
    results = {}
    for method in ["stage", "ours", "peer"]:
        runs = []
        for _ in range(args.repeats):  # fresh process each time; keep the fastest
            output = subprocess.run([sys.executable, __file__, "--workdir", str(args.workdir), "--clusters",
                                     str(args.clusters), "--trials", str(args.trials), "--method", method],
                                    check=True, capture_output=True, text=True).stdout
            runs.append(json.loads(output.strip().splitlines()[-1]))
        results[method] = min(runs, key=lambda r: r["seconds"])
        print(f"{method:>5}: {results[method]['seconds']:7.2f} s (best of {args.repeats}), "
              f"peak RSS {results[method]['peak_rss_mb']:7.0f} MB")
    assert results["ours"]["sha256"] == results["peer"]["sha256"], "peer and ours disagree"
    print(f"ONE-api read + spike counting: peer (histogram2d per trial) / ours = {results['peer']['seconds'] / results['ours']['seconds']:.2f}x")
    for method in ["ours", "peer"]:
        print(f"{method:>5}: ONE-api read {results[method]['read_seconds']:.2f} s, counting {results[method]['count_seconds']:.2f} s")
    print(f"spike counting alone: peer / ours = {results['peer']['count_seconds'] / results['ours']['count_seconds']:.2f}x")


if __name__ == "__main__":
    main()
