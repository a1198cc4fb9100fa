"""Snakemake entry point of rule neds_search_draw (logic: pipeline.neds.stages.run_search_draw)."""

import torch

from pipeline.logs import rule_log
from pipeline.neds.config import MaskingParams, ModelParams, TrainingParams
from pipeline.neds.stages import configured_device, run_search_draw

with rule_log(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    run_search_draw(
        snakemake.input.binned, snakemake.wildcards.variant, int(snakemake.wildcards.draw),
        ModelParams.from_mapping(snakemake.params.model), MaskingParams.from_mapping(snakemake.params.masking),
        TrainingParams.from_mapping(snakemake.params.training), snakemake.params.seed,
        device=configured_device(snakemake.config), model_path=snakemake.output.model,
        validation_path=snakemake.output.validation, checkpoint_dir=snakemake.params.checkpoint_dir,
    )
