"""Snakemake entry point of rule synth_zebrafish_zstack (logic: pipeline.synth.zebrafish)."""

from pipeline.logs import rule_log
from pipeline.synth.zebrafish import render_zstack

with rule_log(snakemake.log[0]):
    render_zstack(snakemake.input.truth, int(snakemake.wildcards.plane), snakemake.output.stack)
