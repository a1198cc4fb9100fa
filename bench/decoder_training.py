"""Benchmark: the NLP4Neuro decoder training loop against a loop like the original code's.

Issue 5 asks, on identical model and data (10,000 neurons x 2,800 frames, LSTM hidden 256,
batch 32, seq_len 10 and 20), for: peak memory <= 1/3 of the original loop's and flat in
seq_len; windows/s at least equal; and achieved FLOP/s as a fraction of a plain matmul's
FLOP/s on the same machine, for the LSTM and a small transformer.

Variants, each run in its own fresh subprocess (so its peak RSS is its own):

- ``ours``: ``pipeline.data.windows.make_splits`` (chronological 70/15/15 split, train-only
  z-scoring, lazy ``WindowSet`` blocks) and the real ``pipeline.train.loop.train_decoder``
  (``epoch_batch_order`` batches gathered by ``WindowSet.batch``, Adam for the LSTM / AdamW
  for the transformer, MSE, default gradient clipping at norm 1). It is stopped after
  ``warmup + steps`` optimiser steps by raising from its ``on_batch_end`` hook; the hook's
  timestamps time the steps.
- ``original``: the original scripts' loop as described in the issue: every window
  materialised as a copy (``np.stack([x[i:i+L] for i in range(n-L+1)])``), wrapped in
  ``TensorDataset`` + ``DataLoader(batch_size=32, shuffle=True)``, the same model trained
  with Adam + MSE (per-frame z-scoring across neurons, as those scripts did).
  Two peers, both run by default (``--original-windows``): ``train`` materialises the
  training block's windows only (70% of frames; the smallest such loop, so the hardest peer
  to beat on memory); ``all`` materialises the windows of the whole recording before
  splitting, which is what the issue's measured figures (2.1 GB / 3.2 GB, +1.1 GB per 10
  frames of seq_len = one float32 copy of all 2,791 windows) correspond to.
- ``ours`` with ``--model transformer``: an untrained GPT-2 (n_embd 256, 4 layers, 4 heads,
  linear input embedding) through the same loop, for its achieved FLOP/s.

Data are synthetic float32 activity (frames x neurons) and tail angles (frames x 6) from a
seeded NumPy RNG: the values do not change speed or memory, only the shapes do.

Measured per run: peak RSS (VmHWM of the subprocess), windows/s over the timed steps after
the warm-up steps, achieved FLOP/s = training FLOPs per window x windows/s, and the
GFLOP/s of a plain float32 ``torch.matmul`` (n x n, best of reps) timed in the same process
right after training (after the peak RSS was read). Training FLOPs per window:

- LSTM (formula; N neurons, H hidden, L steps; 1 multiply-add = 2 FLOPs):
  forward = 2 L [4H (N + H) + 6H]; backward = weight gradients (same as forward) + the
  gradient through the recurrent and head weights 2 L [4H H + 6H] (the input needs no
  gradient); training = 2 forward + 2 L (4H H + 6H), about 2.05x forward here. (The usual
  "training = 3x forward" rule would overstate it by ~1.45x.)
- transformer: counted with ``torch.utils.flop_counter.FlopCounterMode`` over one
  forward + backward of a training batch, divided by the batch size.

The parent runs every (variant x seq_len) ``--repeats`` times, alternating the variants
(fresh process each), keeps the median windows/s and the largest peak RSS per cell, and
prints a table, ratios, and PASS/FAIL lines computed from the measurements.

Reproduce (from the repository root; 16 fresh processes; 24 min on a 2-core VM at load
average 10-13, much less on an idle machine):

    .venv/bin/python bench/decoder_training.py [--seq-lens 10 20] [--steps 20] [--repeats 2] [--quick]

``--step-check SEQ_LEN`` instead alternates ours' and the original training step in one
process on one model (a speed comparison that outside load disturbs less; ~2 min).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

from pipeline.memory import peak_rss_mb

SPLIT_FRACTIONS = (0.7, 0.15, 0.15)
GPT2_OVERRIDES = {"n_embd": 256, "n_layer": 4, "n_head": 4, "n_positions": 64,
                  "vocab_size": 2, "bos_token_id": 0, "eos_token_id": 0}  # vocabulary unused (inputs_embeds)


def synthetic_arrays(n_frames: int, n_neurons: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(frames, neurons) float32 activity and (frames, 6) float32 tail angles (rad)."""
    rng = np.random.default_rng(seed)
    activity = rng.standard_normal((n_frames, n_neurons), dtype=np.float32)
    tail = 0.3 * rng.standard_normal((n_frames, 6), dtype=np.float32)
    return activity, tail


def lstm_training_flops_per_window(seq_len: int, n_neurons: int, hidden: int) -> float:
    forward = 2 * seq_len * (4 * hidden * (n_neurons + hidden) + 6 * hidden)
    return 2 * forward + 2 * seq_len * (4 * hidden * hidden + 6 * hidden)


def build_model(args: argparse.Namespace):
    from pipeline.models.catalog import ModelSpec, build_decoder

    if args.model == "lstm":
        spec = ModelSpec(kind="lstm", architecture={"hidden_size": args.hidden})
    else:
        spec = ModelSpec(kind="transformer", architecture={"family": "gpt2", "config_overrides": GPT2_OVERRIDES})
    return spec.kind, build_decoder(spec, args.n_neurons, "untrained", "linear", {}, args.seed)


def matmul_gflops(size: int, reps: int) -> tuple[float, float]:
    """Best-of-``reps`` float32 GFLOP/s of an n x n @ n x n ``torch.matmul``: per second of
    wall clock, and per CPU-second of this process."""
    import torch

    a = torch.randn(size, size)
    b = torch.randn(size, size)
    torch.matmul(a, b)  # warm-up
    best_wall = best_cpu = float("inf")
    for _ in range(reps):
        wall, cpu = time.perf_counter(), time.process_time()
        torch.matmul(a, b)
        best_wall, best_cpu = min(best_wall, time.perf_counter() - wall), min(best_cpu, time.process_time() - cpu)
    return 2 * size**3 / best_wall / 1e9, 2 * size**3 / best_cpu / 1e9


def transformer_flops_per_window(model, inputs, targets) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    model.train()
    counter = FlopCounterMode(display=False)
    with counter:
        loss = torch.nn.functional.mse_loss(model(inputs), targets)
        loss.backward()
    model.zero_grad(set_to_none=True)
    return counter.get_total_flops() / inputs.shape[0]


def throughput(stamps: list[tuple[float, float]], args: argparse.Namespace) -> dict:
    """Windows/s over the timed steps (wall clock), and windows per CPU-second of this process
    (all its threads): the latter is what other jobs on a shared machine disturb least."""
    windows = args.steps * args.batch_size
    (wall0, cpu0), (wall1, cpu1) = stamps[args.warmup - 1], stamps[-1]
    return {"windows_per_s": windows / (wall1 - wall0), "windows_per_cpu_s": windows / (cpu1 - cpu0)}


class _Done(Exception):
    """Raised from the training hook once the timed steps are done."""


def run_ours(args: argparse.Namespace) -> dict:
    import torch

    from pipeline.data.windows import DecodingRecording, make_splits
    from pipeline.train.config import TrainingParams
    from pipeline.train.loop import train_decoder

    started = time.perf_counter()
    activity, tail = synthetic_arrays(args.n_frames, args.n_neurons, args.seed)
    recording = DecodingRecording(
        activity, tail, np.zeros((args.n_neurons, 3), np.float32), np.full(args.n_neurons, "r"),
        np.arange(args.n_frames, dtype=np.float64), "dff",
    )
    splits = make_splits(recording, SPLIT_FRACTIONS, args.seq_len)
    recording, activity = recording.without_activity(), None  # as pipeline.train.job does
    kind, model = build_model(args)
    setup_s, setup_peak = time.perf_counter() - started, peak_rss_mb()

    n_steps = args.warmup + args.steps
    stamps: list[float] = []

    def on_batch_end(epoch: int, batch: int) -> None:
        stamps.append((time.perf_counter(), time.process_time()))
        if len(stamps) == n_steps:
            raise _Done

    params = TrainingParams(epochs=10**6, batch_size=args.batch_size)
    with tempfile.TemporaryDirectory(prefix="bench-ckpt-") as checkpoint_dir:
        try:
            train_decoder(model, kind, splits, params, args.seed, checkpoint_dir, torch.device("cpu"),
                          on_batch_end=on_batch_end)
        except _Done:
            pass
    peak = peak_rss_mb()
    if len(stamps) != n_steps:
        raise RuntimeError(f"expected {n_steps} steps, got {len(stamps)}")
    # Steps never cross an epoch here (61 batches per epoch at 10,000 x 2,800), so every
    # timed step is one full batch and no validation pass falls inside the timed interval.
    if n_steps > -(-len(splits.train) // args.batch_size):
        raise ValueError("--warmup + --steps exceed one epoch; lower --steps")
    n_windows = len(splits.train)
    extra = {}
    if args.model == "transformer":
        inputs, targets = splits.train.batch(torch.arange(args.batch_size))
        extra["flops_per_window"] = transformer_flops_per_window(model, inputs, targets)
    return {"setup_s": setup_s, "setup_peak_rss_mb": setup_peak, "peak_rss_mb": peak,
            **throughput(stamps, args), "train_windows": n_windows, **extra}


def run_original(args: argparse.Namespace) -> dict:
    import torch
    from torch import nn
    from torch.utils.data import DataLoader, TensorDataset

    started = time.perf_counter()
    activity, tail = synthetic_arrays(args.n_frames, args.n_neurons, args.seed)
    # The original scripts z-scored every frame across neurons, over the whole recording.
    x = (activity - activity.mean(axis=1, keepdims=True)) / activity.std(axis=1, keepdims=True)
    y = tail
    del activity
    n_train = round(SPLIT_FRACTIONS[0] * args.n_frames)
    n = n_train if args.peer_windows == "train" else args.n_frames
    L = args.seq_len
    inputs = np.stack([x[i : i + L] for i in range(n - L + 1)])  # every window as a copy
    targets = np.stack([y[i : i + L] for i in range(n - L + 1)])
    if args.peer_windows == "all":
        n_windows = n_train - L + 1  # training windows of the chronological split
        inputs, targets = inputs[:n_windows], targets[:n_windows]  # views: all windows stay resident
    loader = DataLoader(TensorDataset(torch.from_numpy(inputs), torch.from_numpy(targets)),
                        batch_size=args.batch_size, shuffle=True)
    torch.manual_seed(args.seed)
    _, model = build_model(args)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    setup_s, setup_peak = time.perf_counter() - started, peak_rss_mb()

    n_steps = args.warmup + args.steps
    stamps: list[float] = []
    model.train()
    while len(stamps) < n_steps:
        for batch_inputs, batch_targets in loader:
            if len(batch_inputs) != args.batch_size:
                continue  # keep every timed step a full batch (the last one of an epoch is not)
            loss = nn.functional.mse_loss(model(batch_inputs), batch_targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss.item()
            stamps.append((time.perf_counter(), time.process_time()))
            if len(stamps) == n_steps:
                break
    peak = peak_rss_mb()
    return {"setup_s": setup_s, "setup_peak_rss_mb": setup_peak, "peak_rss_mb": peak,
            **throughput(stamps, args), "train_windows": len(loader.dataset)}


def run_worker(args: argparse.Namespace) -> dict:
    import torch

    result = run_ours(args) if args.variant == "ours" else run_original(args)
    if args.model == "lstm":
        result["flops_per_window"] = lstm_training_flops_per_window(args.seq_len, args.n_neurons, args.hidden)
    # after the peak RSS was read
    result["matmul_gflops"], result["matmul_gflops_per_cpu_s"] = matmul_gflops(args.matmul_size, args.matmul_reps)
    result["achieved_gflops"] = result["flops_per_window"] * result["windows_per_s"] / 1e9
    result["fraction"] = result["achieved_gflops"] / result["matmul_gflops"]
    result["fraction_cpu"] = (result["flops_per_window"] * result["windows_per_cpu_s"] / 1e9
                              / result["matmul_gflops_per_cpu_s"])
    result["threads"] = torch.get_num_threads()
    result["torch"] = torch.__version__
    return result


def worker_command(args: argparse.Namespace, cell: tuple[str, str, int]) -> list[str]:
    variant, model, seq_len = cell
    command = [sys.executable, __file__, "--model", model, "--seq-len", str(seq_len)]
    if variant == "ours":
        command += ["--variant", "ours"]
    else:
        command += ["--variant", "original", "--peer-windows", variant.removeprefix("original-")]
    for name in ("n_neurons", "n_frames", "hidden", "batch_size", "steps", "warmup", "seed",
                 "matmul_size", "matmul_reps"):
        command += ["--" + name.replace("_", "-"), str(getattr(args, name))]
    return command


def step_check(args: argparse.Namespace, seq_len: int, pairs: int = 10) -> None:
    """One process, one model: ours' step (``WindowSet.batch`` + gradient clipping) and the
    original step (``DataLoader`` collate, no clipping) alternated ``pairs`` times after two
    warm-up pairs, so outside load hits both alike. Prints median times per part."""
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from pipeline.data.windows import DecodingRecording, make_splits
    from pipeline.train.checkpoint import epoch_batch_order

    activity, tail = synthetic_arrays(args.n_frames, args.n_neurons, args.seed)
    recording = DecodingRecording(
        activity, tail, np.zeros((args.n_neurons, 3), np.float32), np.full(args.n_neurons, "r"),
        np.arange(args.n_frames, dtype=np.float64), "dff",
    )
    splits = make_splits(recording, SPLIT_FRACTIONS, seq_len)
    x, y, n = splits.train.inputs.numpy(), splits.train.targets.numpy(), len(splits.train)
    loader = DataLoader(TensorDataset(torch.from_numpy(np.stack([x[i : i + seq_len] for i in range(n)])),
                                      torch.from_numpy(np.stack([y[i : i + seq_len] for i in range(n)]))),
                        batch_size=args.batch_size, shuffle=True)
    batches = iter(loader)
    order = epoch_batch_order(n, args.batch_size, args.seed, 0)
    args.model = "lstm"
    _, model = build_model(args)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
    times: dict[str, list[float]] = {k: [] for k in ("ours: gather", "ours: clip", "ours: step",
                                                     "original: collate", "original: step")}

    def step(inputs, targets, clip: bool) -> float:
        loss = torch.nn.functional.mse_loss(model(inputs), targets)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        clip_s = 0.0
        if clip:
            started = time.perf_counter()
            torch.nn.utils.clip_grad_norm_(list(model.parameters()), 1.0)
            clip_s = time.perf_counter() - started
        optimizer.step()
        loss.item()
        return clip_s

    for i in range(pairs + 2):
        t0 = time.perf_counter()
        inputs, targets = splits.train.batch(order[i])
        t1 = time.perf_counter()
        clip_s = step(inputs, targets, clip=True)
        t2 = time.perf_counter()
        inputs, targets = next(batches)
        t3 = time.perf_counter()
        step(inputs, targets, clip=False)
        t4 = time.perf_counter()
        if i >= 2:
            for key, value in zip(times, (t1 - t0, clip_s, t2 - t0, t3 - t2, t4 - t2)):
                times[key].append(value)
    print(f"step check, seq_len {seq_len}, {torch.get_num_threads()} threads, {pairs} alternated pairs after 2 "
          f"warm-up pairs: median (min) seconds")
    for key, values in times.items():
        print(f"  {key:>18}: {statistics.median(values):.4f} ({min(values):.4f})")
    ratios = [a / b for a, b in zip(times["original: step"], times["ours: step"])]
    print(f"  step time original / ours: median {statistics.median(ratios):.2f} "
          f"(range {min(ratios):.2f}-{max(ratios):.2f})")


LABELS = {"ours": "ours (WindowSet + train_decoder)", "original-train": "original, training windows materialised",
          "original-all": "original, all windows materialised"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-neurons", type=int, default=10_000)
    parser.add_argument("--n-frames", type=int, default=2_800)
    parser.add_argument("--hidden", type=int, default=256, help="LSTM hidden size")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-lens", type=int, nargs="+", default=[10, 20])
    parser.add_argument("--steps", type=int, default=20, help="timed optimiser steps per run")
    parser.add_argument("--warmup", type=int, default=2, help="untimed optimiser steps first")
    parser.add_argument("--repeats", type=int, default=2, help="fresh-process runs per cell, variants alternating")
    parser.add_argument("--original-windows", choices=["train", "all"], nargs="+", default=["train", "all"],
                        help="peers to run: the original loop materialising the training block's windows, "
                             "and/or the whole recording's")
    parser.add_argument("--no-transformer", action="store_true", help="skip the GPT-2 FLOP/s runs")
    parser.add_argument("--matmul-size", type=int, default=2048)
    parser.add_argument("--matmul-reps", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true",
                        help="small check: 2,000 neurons, hidden 64, 5 timed steps, 1 repeat")
    parser.add_argument("--step-check", type=int, metavar="SEQ_LEN",
                        help="instead: alternate ours' and the original training step in one process")
    parser.add_argument("--variant", choices=["ours", "original"], help=argparse.SUPPRESS)
    parser.add_argument("--peer-windows", choices=["train", "all"], default="train", help=argparse.SUPPRESS)
    parser.add_argument("--model", choices=["lstm", "transformer"], default="lstm", help=argparse.SUPPRESS)
    parser.add_argument("--seq-len", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(run_worker(args)))
        return
    if args.step_check:
        step_check(args, args.step_check)
        return
    if args.quick:
        args.n_neurons, args.hidden, args.steps, args.repeats, args.matmul_size = 2_000, 64, 5, 1, 1024

    peers = [f"original-{w}" for w in args.original_windows]
    cells = [(variant, "lstm", L) for L in args.seq_lens for variant in ["ours", *peers]]
    if not args.no_transformer:
        cells += [("ours", "transformer", L) for L in args.seq_lens]
    print(f"data: {args.n_neurons:,} neurons x {args.n_frames:,} frames (synthetic float32), split "
          f"{SPLIT_FRACTIONS}; LSTM hidden {args.hidden}; GPT-2 {GPT2_OVERRIDES}; batch {args.batch_size}; "
          f"{args.warmup} warm-up + {args.steps} timed steps; {args.repeats} repeat(s)", flush=True)
    runs: dict[tuple, list[dict]] = {cell: [] for cell in cells}
    started = time.perf_counter()
    for repeat in range(args.repeats):
        order = cells if repeat % 2 == 0 else cells[::-1]  # alternate so drifts in load hit every variant
        for cell in order:
            output = subprocess.run(worker_command(args, cell), check=True, capture_output=True, text=True).stdout
            result = json.loads(output.strip().splitlines()[-1])
            runs[cell].append(result)
            print(f"  run {repeat + 1}: {cell[0]:>14} {cell[1]:>11} L={cell[2]:<3} {result['windows_per_s']:7.1f} "
                  f"windows/s, {result['windows_per_cpu_s']:6.1f} windows/CPU-s, peak RSS "
                  f"{result['peak_rss_mb']:6.0f} MB, matmul {result['matmul_gflops']:5.1f} GFLOP/s", flush=True)

    def median(cell, key):
        return statistics.median(r[key] for r in runs[cell])

    first = runs[cells[0]][0]
    print(f"\ntorch {first['torch']}, {first['threads']} threads, CPU; {time.perf_counter() - started:.0f} s in all; "
          f"throughputs and fractions: medians over {args.repeats} run(s) (each run in brackets); peak RSS: "
          f"max over runs\n")
    header = ("| loop | model | seq_len | windows/s | windows/CPU-s | peak RSS MB | RSS after setup MB | setup s "
              "| training GFLOP/window | achieved GFLOP/s | matmul GFLOP/s | fraction of matmul (wall) "
              "| fraction of matmul (CPU time) |")
    print(header)
    print("|---" * (header.count("|") - 1) + "|")
    for cell in cells:
        variant, model, L = cell

        def each(key, results=runs[cell]):
            return ", ".join(f"{r[key]:.1f}" for r in results)

        print(f"| {LABELS[variant]} | {model} | {L} | {median(cell, 'windows_per_s'):.1f} ({each('windows_per_s')}) "
              f"| {median(cell, 'windows_per_cpu_s'):.1f} ({each('windows_per_cpu_s')}) "
              f"| {max(r['peak_rss_mb'] for r in runs[cell]):.0f} "
              f"| {max(r['setup_peak_rss_mb'] for r in runs[cell]):.0f} | {median(cell, 'setup_s'):.1f} "
              f"| {first_value(runs[cell], 'flops_per_window') / 1e9:.3f} | {median(cell, 'achieved_gflops'):.1f} "
              f"| {median(cell, 'matmul_gflops'):.1f} | {median(cell, 'fraction'):.3f} "
              f"| {median(cell, 'fraction_cpu'):.3f} |")

    print()

    def noise(key):  # largest run-to-run spread of a cell (relative to its median), at least 5%
        return max([0.05] + [(max(r[key] for r in rs) - min(r[key] for r in rs)) / statistics.median(r[key] for r in rs)
                             for rs in runs.values()])

    ours_peaks = [max(r["peak_rss_mb"] for r in runs[("ours", "lstm", L)]) for L in args.seq_lens]
    growth = (max(ours_peaks) - min(ours_peaks)) / min(ours_peaks)
    for peer in peers:
        memory = {L: max(r["peak_rss_mb"] for r in runs[("ours", "lstm", L)])
                  / max(r["peak_rss_mb"] for r in runs[(peer, "lstm", L)]) for L in args.seq_lens}
        print(f"vs {LABELS[peer]} (ours / peer):")
        for L in args.seq_lens:
            print(f"  seq_len {L}: peak RSS {memory[L]:.2f}; windows/s "
                  f"{median(('ours', 'lstm', L), 'windows_per_s') / median((peer, 'lstm', L), 'windows_per_s'):.2f}; "
                  f"windows/CPU-s "
                  f"{median(('ours', 'lstm', L), 'windows_per_cpu_s') / median((peer, 'lstm', L), 'windows_per_cpu_s'):.2f}")
        print(f"  {'PASS' if max(memory.values()) <= 1 / 3 else 'FAIL'}: peak memory ours <= 1/3 of peer "
              f"(worst ratio {max(memory.values()):.2f})")
        for key, what in (("windows_per_s", "windows/s"), ("windows_per_cpu_s", "windows/CPU-s")):
            worst = min(median(("ours", "lstm", L), key) / median((peer, "lstm", L), key) for L in args.seq_lens)
            print(f"  {'PASS' if worst >= 1 - noise(key) else 'FAIL'}: {what} ours >= peer within noise "
                  f"(worst ratio {worst:.2f}; allowance {100 * noise(key):.0f}% = largest run-to-run spread of a "
                  f"cell, at least 5%)")
    print(f"{'PASS' if growth <= 0.05 else 'FAIL'}: ours flat in seq_len (peak RSS {min(ours_peaks):.0f}-"
          f"{max(ours_peaks):.0f} MB, {100 * growth:.1f}% apart; allowed 5%)")


def first_value(results: list[dict], key: str) -> float:
    return results[0][key]


if __name__ == "__main__":
    main()
