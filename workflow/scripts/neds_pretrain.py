"""Snakemake entry point of rule neds_pretrain (logic: pipeline.neds.stages.run_pretraining)."""

import torch

from pipeline.logs import rule_log
from pipeline.neds.config import MaskingParams, ModelParams, TrainingParams
from pipeline.neds.stages import configured_device, run_pretraining

with rule_log(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    run_pretraining(
        list(snakemake.input.binned), ModelParams.from_mapping(snakemake.params.model),
        MaskingParams.from_mapping(snakemake.params.masking), TrainingParams.from_mapping(snakemake.params.training),
        snakemake.params.seed, device=configured_device(snakemake.config), model_path=snakemake.output.model,
        summary_path=snakemake.output.summary, checkpoint_dir=snakemake.params.checkpoint_dir,
    )
