"""Snakemake entry point of rule salience (logic: pipeline.salience.job)."""

import torch

from pipeline.logs import rule_log
from pipeline.salience.config import SalienceParams
from pipeline.salience.job import run_salience_job
from pipeline.train.experiments import resolve_design

with rule_log(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    settings = SalienceParams.from_mapping(snakemake.params.salience)
    run_salience_job(
        snakemake.input.model,
        snakemake.input.neural,
        snakemake.input.behavior,
        snakemake.output[0],
        split=settings.split,
        k=settings.top_k,
        truth_path=snakemake.input.get("truth"),
        match_distance_px=settings.match_distance_px,
        device=resolve_design(snakemake.config["nlp4neuro"]).device,  # runtime setting: not a param
    )
