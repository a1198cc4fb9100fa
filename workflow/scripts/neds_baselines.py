"""Snakemake entry point of rule neds_baselines (logic: pipeline.neds.stages.run_baselines)."""

from pipeline.logs import rule_log
from pipeline.neds.config import BaselineParams
from pipeline.neds.stages import run_baselines

with rule_log(snakemake.log[0]):
    run_baselines(snakemake.input.binned, BaselineParams.from_mapping(snakemake.params.baselines),
                  snakemake.params.seed, snakemake.output[0])
