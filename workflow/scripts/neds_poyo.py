"""Snakemake entry point of rule neds_poyo (logic: pipeline.neds.stages.run_poyo)."""

import torch

from pipeline.logs import rule_log
from pipeline.neds.config import PoyoParams
from pipeline.neds.stages import configured_device, run_poyo

with rule_log(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    run_poyo(snakemake.input.binned, PoyoParams.from_mapping(snakemake.params.poyo), snakemake.params.seed,
             device=configured_device(snakemake.config), metrics_path=snakemake.output[0])
