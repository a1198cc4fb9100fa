"""Snakemake entry point of rule nwb_plane (logic: pipeline.io.nwb)."""

from pipeline.io.nwb import write_nwb_plane_stack
from pipeline.logs import rule_log

with rule_log(snakemake.log[0]):
    write_nwb_plane_stack(snakemake.input.nwb, int(snakemake.wildcards.plane), snakemake.output[0])
