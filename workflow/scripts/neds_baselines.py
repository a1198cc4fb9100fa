"""Snakemake entry point of rule neds_baselines (logic: pipeline.neds.stages.run_baselines)."""

from pipeline.logs import rule_log
from pipeline.neds.config import NedsConfig
from pipeline.neds.stages import run_baselines

with rule_log(snakemake.log[0]):
    run_baselines(snakemake.input.binned, NedsConfig.from_mapping(snakemake.params.neds), snakemake.params.seed,
                  snakemake.output[0])
