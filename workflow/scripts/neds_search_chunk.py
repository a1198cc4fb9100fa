"""Snakemake entry point of rule neds_search_chunk (logic: pipeline.neds.stages.run_search_chunk)."""

import torch

from pipeline.logs import rule_log
from pipeline.neds.config import MaskingParams, ModelParams, TrainingParams
from pipeline.neds.stages import configured_device, run_search_chunk

with rule_log(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    run_search_chunk(
        snakemake.input.binned, snakemake.wildcards.variant,
        [(draw["draw"], ModelParams.from_mapping(draw["model"]), MaskingParams.from_mapping(draw["masking"]),
          TrainingParams.from_mapping(draw["training"])) for draw in snakemake.params.draws],
        snakemake.params.seed, device=configured_device(snakemake.config), model_path=snakemake.output.model,
        validation_path=snakemake.output.validation, checkpoint_dir=snakemake.params.checkpoint_dir,
    )
