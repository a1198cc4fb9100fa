"""Snakemake entry point of rule neds_pretrain (logic: pipeline.neds.stages.run_pretraining)."""

import torch

from pipeline.logs import rule_log
from pipeline.neds.config import NedsConfig
from pipeline.neds.stages import run_pretraining

with rule_log(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    run_pretraining(
        list(snakemake.input.binned), NedsConfig.from_mapping(snakemake.params.neds), snakemake.params.seed,
        model_path=snakemake.output.model, summary_path=snakemake.output.summary,
        checkpoint_dir=snakemake.params.checkpoint_dir,
    )
