"""Snakemake entry point of rule motion_correct (logic: pipeline.imaging.motion)."""

from pipeline.imaging.motion import correct_motion
from pipeline.logs import rule_log

with rule_log(snakemake.log[0]):
    correct_motion(snakemake.params.method, snakemake.input.stack, snakemake.output[0], snakemake.params.settings)
