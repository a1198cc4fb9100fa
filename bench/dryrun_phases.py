"""Split a dry run's CPU time into phases: import, reading the Snakefile, building the DAG
(requested files -> producing jobs, post-processing), the `script:` source lookups, params,
resources, job printing, ``inspect.signature`` (across phases), and the workflow's own
helpers.

    PYTHONPATH=src .venv/bin/python bench/dryrun_phases.py [snakemake arguments]
    PYTHONPATH=src .venv/bin/python bench/dryrun_phases.py -n --configfile config/paper.yaml --forceall -q

Runs ``snakemake.cli.main(<arguments>)`` in this process with the functions below wrapped;
each wrapper adds ``time.process_time()`` spent in its outermost call (nested calls of the
same function count once; async functions are timed across their awaits, which a dry run's
DAG build runs one after another). Phases nest as indented (an indented phase is part of the
one above it, when called from it); the wrappers add ~10 % to the total. Prints
``phase<TAB>CPU s`` lines to stderr after Snakemake's output. Figures: bench/README.md
("Where a paper dry run's time goes")."""

from __future__ import annotations

import functools
import inspect
import sys
import time

_started = time.process_time()
from snakemake import cli, dag, jobs, output_index, rules, script, workflow  # noqa: E402

IMPORT_SECONDS = time.process_time() - _started

# (owner, attribute, label): the label's indentation is the nesting shown in the report
PHASES = [
    (workflow.Workflow, "include", "read the Snakefile (parse, config, tables, rule definitions)"),
    (dag.DAG, "init", "build the DAG"),
    (dag.DAG, "file2jobs", "  requested file -> its producing job (output index, new jobs)"),
    (output_index.OutputIndex, "match_producers", "    output-pattern matching"),
    (jobs.Job, "__init__", "    job creation (inputs, outputs, logs of each job)"),
    (dag.DAG, "postprocess", "  post-processing"),
    (dag.DAG, "update_conda_envs", "    conda env of every job (evaluates its params)"),
    (rules.Rule, "expand_params", "      params (functions and patterns)"),
    (dag.DAG, "check_directory_outputs", "  check_directory_outputs (sorts every output path)"),
    (script, "get_source", "script: source lookups (one per job)"),
    (rules.Rule, "expand_resources", "resources (evaluated when a job is printed)"),
    (jobs.Job, "log_info", "job printing (without -q)"),
    # across the phases above: Snakemake reads a params / resources / input function's
    # parameters on every call (pipeline.workflow_functions.per_job declares them once)
    (inspect, "signature", "inspect.signature (across phases: parameters of rule functions)"),
]


def _timed(function, label: str, seconds: dict[str, float]):
    depth = [0]

    def add(started: float) -> None:
        depth[0] -= 1
        if not depth[0]:
            seconds[label] = seconds.get(label, 0.0) + time.process_time() - started

    if inspect.iscoroutinefunction(function):

        @functools.wraps(function)
        async def timed_async(*args, **kwargs):
            depth[0] += 1
            started = time.process_time()
            try:
                return await function(*args, **kwargs)
            finally:
                add(started)

        return timed_async

    @functools.wraps(function)
    def timed(*args, **kwargs):
        depth[0] += 1
        started = time.process_time()
        try:
            return function(*args, **kwargs)
        finally:
            add(started)

    return timed


def main(args: list[str]) -> None:
    seconds: dict[str, float] = {}
    for owner, name, label in PHASES:
        setattr(owner, name, _timed(getattr(owner, name), label, seconds))
    # the workflow's own helpers, wrapped in their modules before the Snakefile imports them
    from pipeline import config, provenance, seeding
    from pipeline.neds import search

    own = [(search, "draw_sections", "ours: NEDS search draws' params"),
           (provenance, "config_hash", "ours: training params hashes"),
           (seeding, "derive_seed", "ours: derived seeds"),
           (config, "read_fish_table", "ours: fish table"),
           (config, "read_session_table", "ours: session table")]
    for owner, name, label in own:
        setattr(owner, name, _timed(getattr(owner, name), label, seconds))
    started = time.process_time()
    try:
        cli.main(args)
    except SystemExit as exit_:
        if exit_.code:
            raise
    total = time.process_time() - started
    print(f"import snakemake\t{IMPORT_SECONDS:.2f}", file=sys.stderr)
    print(f"snakemake.cli.main (all of the rest)\t{total:.2f}", file=sys.stderr)
    for label in [label for _, _, label in PHASES] + [label for _, _, label in own]:
        if label in seconds:
            print(f"{label}\t{seconds[label]:.2f}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
