"""Snakemake entry point of rule neds_train_single (logic: pipeline.neds.stages.run_single_session)."""

import torch

from pipeline.logs import rule_log
from pipeline.neds.config import MaskingParams, ModelParams, TrainingParams
from pipeline.neds.stages import configured_device, run_single_session

with rule_log(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    run_single_session(
        snakemake.input.binned, snakemake.wildcards.variant, ModelParams.from_mapping(snakemake.params.model),
        MaskingParams.from_mapping(snakemake.params.masking), TrainingParams.from_mapping(snakemake.params.training),
        snakemake.params.seed, device=configured_device(snakemake.config), model_path=snakemake.output.model,
        metrics_path=snakemake.output.metrics, checkpoint_dir=snakemake.params.checkpoint_dir,
    )
