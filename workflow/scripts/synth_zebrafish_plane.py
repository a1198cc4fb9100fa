"""Snakemake entry point of rule synth_zebrafish_plane (logic: pipeline.synth.zebrafish)."""

from pipeline.logs import rule_log
from pipeline.synth.zebrafish import render_plane

with rule_log(snakemake.log[0]):
    render_plane(snakemake.input.truth, int(snakemake.wildcards.plane), snakemake.output.stack)
