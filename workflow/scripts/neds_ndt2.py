"""Snakemake entry point of rule neds_ndt2 (logic: pipeline.neds.stages.run_ndt2)."""

import torch

from pipeline.logs import rule_log
from pipeline.neds.config import Ndt2Params
from pipeline.neds.stages import configured_device, run_ndt2

with rule_log(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    run_ndt2(snakemake.input.binned, Ndt2Params.from_mapping(snakemake.params.ndt2), snakemake.params.seed,
             device=configured_device(snakemake.config), metrics_path=snakemake.output[0])
