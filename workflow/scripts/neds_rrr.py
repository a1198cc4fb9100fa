"""Snakemake entry point of rule neds_rrr (logic: pipeline.neds.stages.run_rrr)."""

from pipeline.logs import rule_log
from pipeline.neds.config import BaselineParams
from pipeline.neds.stages import run_rrr

with rule_log(snakemake.log[0]):
    run_rrr(list(snakemake.input.binned), BaselineParams.from_mapping(snakemake.params.baselines),
            snakemake.params.seed, snakemake.output[0])
