"""Snakemake entry point of rule train_decoder (logic: pipeline.train.job)."""

import torch

from pipeline.logs import rule_log
from pipeline.models.catalog import ModelSpec
from pipeline.train.config import TrainingParams
from pipeline.train.experiments import resolve_design
from pipeline.train.job import DecodingJob, run_decoding_job

with rule_log(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    job = dict(snakemake.params.job)
    run_decoding_job(
        snakemake.input.neural,
        snakemake.input.behavior,
        DecodingJob(**{**job, "split_fractions": tuple(job["split_fractions"])}),
        ModelSpec.from_mapping(snakemake.params.model_spec),
        TrainingParams.from_mapping(snakemake.params.training),
        snakemake.params.embedding,
        checkpoint_dir=snakemake.params.checkpoint_dir,
        model_path=snakemake.output.model,
        predictions_path=snakemake.output.predictions,
        metrics_path=snakemake.output.metrics,
        config_hash=snakemake.params.params_hash,
        device=resolve_design(snakemake.config["nlp4neuro"]).device,  # runtime setting: not a param
    )
