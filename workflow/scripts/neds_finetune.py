"""Snakemake entry point of rule neds_finetune (logic: pipeline.neds.stages.run_finetuning)."""

import torch

from pipeline.logs import rule_log
from pipeline.neds.config import NedsConfig
from pipeline.neds.stages import run_finetuning

with rule_log(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    run_finetuning(
        snakemake.input.pretrained, snakemake.input.binned, NedsConfig.from_mapping(snakemake.params.neds),
        snakemake.params.seed, model_path=snakemake.output.model, metrics_path=snakemake.output.metrics,
        checkpoint_dir=snakemake.params.checkpoint_dir,
    )
