"""Snakemake entry point of rule neds_finetune (logic: pipeline.neds.stages.run_finetuning)."""

import torch

from pipeline.logs import rule_log
from pipeline.neds.config import MaskingParams, TrainingParams
from pipeline.neds.stages import configured_device, run_finetuning

with rule_log(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    run_finetuning(
        snakemake.input.pretrained, snakemake.input.binned, MaskingParams.from_mapping(snakemake.params.masking),
        TrainingParams.from_mapping(snakemake.params.training), snakemake.params.seed,
        device=configured_device(snakemake.config), model_path=snakemake.output.model,
        metrics_path=snakemake.output.metrics, checkpoint_dir=snakemake.params.checkpoint_dir,
    )
