"""Snakemake entry point of rule neds_search_select (logic: pipeline.neds.stages.run_search_selection)."""

from pipeline.logs import rule_log
from pipeline.neds.stages import run_search_selection

with rule_log(snakemake.log[0]):
    run_search_selection(
        snakemake.input.binned, list(zip(snakemake.input.models, snakemake.input.validation)),
        model_path=snakemake.output.model, metrics_path=snakemake.output.metrics,
    )
