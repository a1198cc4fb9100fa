"""Snakemake entry point of rule motion_correct (logic: pipeline.imaging.motion)."""

from pipeline.config import job_settings
from pipeline.imaging.motion import METHOD_SECTIONS, correct_motion
from pipeline.logs import rule_log

with rule_log(snakemake.log[0]):
    method = snakemake.params.method
    settings = job_settings(snakemake.config, METHOD_SECTIONS[method], snakemake.params.settings)
    correct_motion(method, snakemake.input.stack, snakemake.output[0], settings)
