"""Snakemake entry point of rule neds_report (logic: pipeline.neds.stages.run_report)."""

from pipeline.logs import rule_log
from pipeline.neds.report import REPORT_FIGURES, REPORT_TABLES
from pipeline.neds.stages import run_report

with rule_log(snakemake.log[0]):
    out = snakemake.output
    run_report(
        list(snakemake.input.models) + list(snakemake.input.decoders), list(snakemake.input.baselines), snakemake.input.rrr,
        list(snakemake.input.models) + list(snakemake.input.pretraining), snakemake.input.region,
        dict(zip(snakemake.params.sessions, snakemake.input.binned)),
        tables={name: (out[f"{name}_csv"], out[f"{name}_md"]) for name in REPORT_TABLES},
        figures={name: (out[f"{name}_pdf"], out[f"{name}_png"]) for name in REPORT_FIGURES},
    )
