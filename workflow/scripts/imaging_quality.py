"""Snakemake entry point of rule imaging_quality (logic: pipeline.imaging.quality_report)."""

from pipeline.imaging.quality_report import write_quality_report
from pipeline.logs import rule_log

with rule_log(snakemake.log[0]):
    write_quality_report(
        snakemake.wildcards.fish,
        snakemake.input.registered,
        snakemake.input.neural,
        snakemake.output.page,
        snakemake.output.drift,
        snakemake.output.z_position,
        zstack_paths=list(snakemake.input.zstack) or None,
        zstack_step_um=snakemake.params.zstack_step_um,
    )
