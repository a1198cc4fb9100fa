"""Snakemake entry point of rule neds_baseline_finetune (logic:
pipeline.neds.stages.run_baseline_finetuning)."""

import torch

from pipeline.logs import rule_log
from pipeline.neds.stages import configured_device, multi_session_params, run_baseline_finetuning

with rule_log(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    baseline = snakemake.wildcards.baseline
    run_baseline_finetuning(
        baseline, snakemake.input.pretrained, snakemake.input.binned,
        multi_session_params(baseline, snakemake.params.baseline), snakemake.params.seed,
        device=configured_device(snakemake.config), metrics_path=snakemake.output[0],
    )
