"""Snakemake entry point of the train_decoder_runs<a>to<b> rules (logic: pipeline.train.job.run_decoding_runs)."""

import torch

from pipeline.logs import rule_log
from pipeline.models.catalog import ModelSpec
from pipeline.train.config import TrainingParams
from pipeline.train.experiments import resolve_design
from pipeline.train.job import DecodingJob, run_decoding_runs

with rule_log(snakemake.log[0]):
    torch.set_num_threads(snakemake.threads)
    run_decoding_runs(
        snakemake.input.neural,
        snakemake.input.behavior,
        [DecodingJob(**{**job, "split_fractions": tuple(job["split_fractions"])}) for job in snakemake.params.jobs],
        ModelSpec.from_mapping(snakemake.params.model_spec),
        TrainingParams.from_mapping(snakemake.params.training),
        snakemake.params.embedding,
        config_hashes=snakemake.params.params_hashes,
        checkpoint_dir=snakemake.params.checkpoint_dir,
        outputs=list(zip(snakemake.output.model, snakemake.output.predictions, snakemake.output.metrics)),
        device=resolve_design(snakemake.config["nlp4neuro"]).device,  # runtime setting: not a param
    )
