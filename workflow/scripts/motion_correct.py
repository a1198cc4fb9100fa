"""Snakemake entry point of rule motion_correct (logic: pipeline.imaging.normcorre)."""

from pipeline.imaging.normcorre import NormcorreParams, motion_correct
from pipeline.logs import rule_log

with rule_log(snakemake.log[0]):
    motion_correct(snakemake.input.stack, snakemake.output[0], NormcorreParams.from_mapping(snakemake.params.normcorre))
