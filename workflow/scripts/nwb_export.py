"""Snakemake entry point of rule nwb_export (logic: pipeline.io.nwb)."""

from pipeline.io.nwb import export_fish_nwb
from pipeline.logs import rule_log

with rule_log(snakemake.log[0]):
    export_fish_nwb(snakemake.input.neural, snakemake.input.behavior, snakemake.output[0], snakemake.wildcards.fish)
