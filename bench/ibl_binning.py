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

Each repeat runs the three methods one after the other (so outside load hits them alike);
reports per method the median and range over the repeats of wall time (and process CPU
time, which outside load disturbs less), and the ratios peer / ours of the medians, with
the load average before and after. Reproduce (from the repository root, ~3 min):

    PYTHONPATH=$PWD/src .venv/bin/python bench/ibl_binning.py [--workdir /tmp/ibl_bench] [--clusters 1000] [--trials 800] [--repeats 5]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from pipeline.memory import peak_rss_mb


METHODS = ["stage", "ours", "peer"]


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
    from pipeline.ibl.binning import bin_session, bin_spikes
    from pipeline.ibl.config import BinningConfig
    from pipeline.io.alf import OneSession
    from pipeline.synth.ibl import PROBE_COLLECTION

    config = BinningConfig()
    start, start_cpu = time.perf_counter(), time.process_time()
    if method == "stage":
        bin_session(session, workdir / "binned.h5", config, split_seed=0, progress=False)
        result = {}
    else:
        import h5py

        with h5py.File(workdir / "binned.h5") as f:  # kept trials and neurons of the stage run
            align, clusters = f["trials/align_time_s"][()], f["neurons/cluster_id"][()]
        import one.api  # noqa: F401  (module import is process start-up, not the read)

        edges = config.relative_edges_s
        start, start_cpu = time.perf_counter(), time.process_time()  # ONE-api read + counting
        spikes = OneSession(session["one_cache"], session["session"]).object_files("spikes", PROBE_COLLECTION)
        times = np.load(spikes["times"], mmap_mode="r")
        spike_clusters = np.load(spikes["clusters"], mmap_mode="r")
        rows = np.full(int(spike_clusters.max()) + 1, -1)
        rows[clusters] = np.arange(clusters.size)
        read_seconds, read_cpu = time.perf_counter() - start, time.process_time() - start_cpu
        if method == "ours":
            counts = bin_spikes(times, spike_clusters, rows, align, edges)
        else:
            counts = np.zeros((align.size, edges.size - 1, clusters.size), np.uint16)
            neuron_edges = np.arange(clusters.size + 1) - 0.5
            for i, t0 in enumerate(align):
                lo, hi = np.searchsorted(times, [t0 + edges[0], t0 + edges[-1]])
                r = rows[np.asarray(spike_clusters[lo:hi])]
                keep = r >= 0
                counts[i] = np.histogram2d(np.asarray(times[lo:hi])[keep], r[keep], bins=[t0 + edges, neuron_edges])[0]
    seconds, cpu_seconds, peak = time.perf_counter() - start, time.process_time() - start_cpu, peak_rss_mb()
    if method != "stage":
        result = {"spikes": int(counts.sum(dtype=np.int64)), "sha256": hashlib.sha256(counts.data).hexdigest(),
                  "read_seconds": read_seconds, "count_seconds": seconds - read_seconds,
                  "read_cpu_seconds": read_cpu, "count_cpu_seconds": cpu_seconds - read_cpu}
    return {**result, "seconds": seconds, "cpu_seconds": cpu_seconds, "peak_rss_mb": peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/ibl_bench"))
    parser.add_argument("--clusters", type=int, default=1000)
    parser.add_argument("--trials", type=int, default=800)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--method", choices=METHODS, help=argparse.SUPPRESS)
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
    print(f"load average before: {os.getloadavg()}")
    runs: dict[str, list[dict]] = {method: [] for method in METHODS}
    for _ in range(args.repeats):  # methods alternate within each repeat, each in a fresh process
        for method in METHODS:
            output = subprocess.run([sys.executable, __file__, "--workdir", str(args.workdir), "--clusters",
                                     str(args.clusters), "--trials", str(args.trials), "--method", method],
                                    check=True, capture_output=True, text=True).stdout
            runs[method].append(json.loads(output.strip().splitlines()[-1]))
    print(f"load average after: {os.getloadavg()}")
    assert len({r["sha256"] for r in runs["ours"] + runs["peer"]}) == 1, "peer and ours disagree"

    def median(method: str, key: str) -> float:
        return float(np.median([r[key] for r in runs[method]]))

    for method in METHODS:
        wall = [r["seconds"] for r in runs[method]]
        print(f"{method:>5}: {median(method, 'seconds'):6.2f} s wall (median of {args.repeats}; "
              f"{min(wall):.2f}-{max(wall):.2f}), {median(method, 'cpu_seconds'):6.2f} s CPU, "
              f"peak RSS {max(r['peak_rss_mb'] for r in runs[method]):5.0f} MB")
    for method in ["ours", "peer"]:
        print(f"{method:>5}: ONE-api read {median(method, 'read_seconds'):.3f} s wall / "
              f"{median(method, 'read_cpu_seconds'):.3f} s CPU, counting {median(method, 'count_seconds'):.3f} s wall / "
              f"{median(method, 'count_cpu_seconds'):.3f} s CPU")
    for label, key in [("ONE-api read + spike counting", "seconds"), ("spike counting alone", "count_seconds")]:
        cpu_key = key.replace("seconds", "cpu_seconds")
        print(f"{label}: peer (histogram2d per trial) / ours = {median('peer', key) / median('ours', key):.2f}x wall, "
              f"{median('peer', cpu_key) / median('ours', cpu_key):.2f}x CPU (medians)")


if __name__ == "__main__":
    main()
