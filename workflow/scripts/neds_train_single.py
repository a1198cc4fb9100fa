"""Snakemake entry point of rule neds_train_single (logic: pipeline.neds.stages.run_single_session)."""

import torch

from pipeline.logs import rule_log
from pipeline.neds.config import NedsConfig
from pipeline.neds.stages import run_single_session

with rule_log(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    run_single_session(
        snakemake.input.binned, snakemake.wildcards.variant, NedsConfig.from_mapping(snakemake.params.neds),
        snakemake.params.seed, model_path=snakemake.output.model, metrics_path=snakemake.output.metrics,
        checkpoint_dir=snakemake.params.checkpoint_dir,
    )
