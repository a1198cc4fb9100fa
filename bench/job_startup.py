"""Start-up of a training job (rule train_decoder) per model kind, in fresh processes.

What a job does before its first training step that does not depend on the data: start
the interpreter, import workflow/scripts/train_decoder.py's modules, resolve the config's
``nlp4neuro`` section (pipeline.train.experiments.resolve_design, as the script does for the
device) and import the decoder module of its model's kind (pipeline.models.catalog.build_decoder:
reservoir, LSTM, or the language-model module plus transformers, which it loads before the
weights). Reported per kind: best-of-N wall time and which heavy libraries the process loaded.
The peer is the transformer job's start-up, measured in the same run.

Usage: .venv/bin/python bench/job_startup.py [--repeats 5] [--configfile config/config.yaml]
(run from the repository root; PYTHONPATH=src to measure this checkout's sources).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

HEAVY = ("torch", "scipy", "h5py", "transformers", "peft", "bitsandbytes", "safetensors", "sklearn", "matplotlib")

#: The job's start-up for model kind sys.argv[2] under config file sys.argv[1]; prints the heavy modules loaded.
JOB = """
import json, sys
import torch
import yaml
from pipeline.logs import rule_log
from pipeline.models.catalog import ModelSpec
from pipeline.train.experiments import resolve_design
from pipeline.train.job import DecodingJob, run_decoding_job
with open(sys.argv[1]) as f:
    design = resolve_design(yaml.safe_load(f)["nlp4neuro"])
kind = sys.argv[2]
if kind == "reservoir":
    import pipeline.models.reservoir
elif kind == "lstm":
    import pipeline.models.lstm
else:
    import pipeline.models.language
    from pipeline.torch_compat import import_transformers
    import_transformers()
print("LOADED=" + json.dumps(sorted(m for m in json.loads(sys.argv[3]) if m in sys.modules)))
"""


def startup(configfile: str, kind: str) -> tuple[float, float, list[str]]:
    """Wall seconds, CPU seconds (user + system) and heavy modules of one job start-up."""
    cpu_before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    result = subprocess.run([sys.executable, "-c", JOB, configfile, kind, json.dumps(HEAVY)],
                            check=True, text=True, stdout=subprocess.PIPE)
    seconds = time.perf_counter() - started
    cpu_after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (cpu_after.ru_utime - cpu_before.ru_utime) + (cpu_after.ru_stime - cpu_before.ru_stime)
    return seconds, cpu, json.loads(result.stdout.rsplit("LOADED=", 1)[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--configfile", default="config/config.yaml")
    args = parser.parse_args()
    kinds = ("reservoir", "lstm", "transformer")
    wall: dict[str, list[float]] = {kind: [] for kind in kinds}
    cpu: dict[str, list[float]] = {kind: [] for kind in kinds}
    loaded: dict[str, list[str]] = {}
    for _ in range(args.repeats):  # kinds alternate, so outside load hits each alike
        for kind in kinds:
            seconds, cpu_seconds, loaded[kind] = startup(args.configfile, kind)
            wall[kind].append(seconds)
            cpu[kind].append(cpu_seconds)
    peer_wall, peer_cpu = min(wall["transformer"]), min(cpu["transformer"])
    print(f"{args.repeats} runs per kind; load average before/after: see `uptime`")
    print("| job kind | best wall s | best CPU s | transformer / this (wall) | (CPU) | heavy modules loaded |")
    print("|---|---|---|---|---|---|")
    for kind in kinds:
        best_wall, best_cpu = min(wall[kind]), min(cpu[kind])
        print(f"| {kind} | {best_wall:.2f} | {best_cpu:.2f} | {peer_wall / best_wall:.2f}x | "
              f"{peer_cpu / best_cpu:.2f}x | {', '.join(loaded[kind])} |")


if __name__ == "__main__":
    main()
