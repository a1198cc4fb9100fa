"""Dump the params of every job of a workflow's DAG, as Snakemake's params rerun trigger
records them, to compare two commits: identical dumps mean a finished workdir reruns nothing
for the params trigger after switching commits.

    .venv/bin/python bench/dag_params.py OUT.tsv [snakemake dry-run arguments]

Runs ``snakemake -n --forceall -q <arguments>`` in this process with Snakemake's
``Job._expand_params`` wrapped; writes one line per job, sorted: rule, the job's outputs,
then its params (each value serialised by ``PersistenceBase._serialize_param_builtin``, sorted,
as the trigger stores them; no job's params hold pandas objects). Run it from the repository root of the commit to dump.

``OUT.runs.tsv`` is written next to it: one line per NLP4Neuro training run, sorted, whatever
the number of runs per job: its job dict, params hash, model spec, training and embedding
params (``train_decoder`` jobs: ``job``, ``params_hash``; ``train_decoder_runs<a>to<b>`` jobs:
the run's entry of ``jobs`` and ``params_hashes``). Identical run dumps of two commits with
different runs per job mean every run trains with the same values."""

from __future__ import annotations

import sys

from snakemake import cli
from snakemake.jobs import Job
from snakemake.persistence import PersistenceBase


def main(out_path: str, args: list[str]) -> None:
    records, runs = {}, set()
    expand = Job._expand_params

    def recording_expand(job):
        expand(job)
        params = sorted(str(PersistenceBase._serialize_param_builtin(None, value)) for value in job.non_derived_params)
        records[(job.rule.name, tuple(sorted(map(str, job.output))))] = params
        if job.rule.name.startswith("train_decoder"):
            named = dict(job.params.items())
            jobs, hashes = (named["jobs"], named["params_hashes"]) if "jobs" in named else (
                [named["job"]], [named["params_hash"]])
            shared = [repr(named[name]) for name in ("model_spec", "training", "embedding")]
            runs.update("\t".join([repr(run), params_hash, *shared]) for run, params_hash in zip(jobs, hashes))

    Job._expand_params = recording_expand
    try:
        cli.main(["-n", "--forceall", "-q", *args])
    except SystemExit as exit_:
        if exit_.code:
            raise
    with open(out_path, "w") as out:
        for (rule, outputs), params in sorted(records.items()):
            out.write("\t".join([rule, " ".join(outputs), *params]) + "\n")
    runs_path = out_path.removesuffix(".tsv") + ".runs.tsv"
    with open(runs_path, "w") as out:
        out.writelines(line + "\n" for line in sorted(runs))
    print(f"{len(records)} jobs -> {out_path}, {len(runs)} training runs -> {runs_path}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
