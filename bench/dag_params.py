"""Dump the params of every job of a workflow's DAG, as Snakemake's params rerun trigger
records them, to compare two commits: identical dumps mean a finished workdir reruns nothing
for the params trigger after switching commits.

    .venv/bin/python bench/dag_params.py OUT.tsv [snakemake dry-run arguments]

Runs ``snakemake -n --forceall -q <arguments>`` in this process with Snakemake's
``Job._expand_params`` wrapped; writes one line per job, sorted: rule, the job's outputs,
then its params (each value serialised by ``PersistenceBase._serialize_param_builtin``, sorted,
as the trigger stores them; no job's params hold pandas objects). Run it from the repository root of the commit to dump."""

from __future__ import annotations

import sys

from snakemake import cli
from snakemake.jobs import Job
from snakemake.persistence import PersistenceBase


def main(out_path: str, args: list[str]) -> None:
    records = {}
    expand = Job._expand_params

    def recording_expand(job):
        expand(job)
        params = sorted(str(PersistenceBase._serialize_param_builtin(None, value)) for value in job.non_derived_params)
        records[(job.rule.name, tuple(sorted(map(str, job.output))))] = params

    Job._expand_params = recording_expand
    try:
        cli.main(["-n", "--forceall", "-q", *args])
    except SystemExit as exit_:
        if exit_.code:
            raise
    with open(out_path, "w") as out:
        for (rule, outputs), params in sorted(records.items()):
            out.write("\t".join([rule, " ".join(outputs), *params]) + "\n")
    print(f"{len(records)} jobs -> {out_path}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
