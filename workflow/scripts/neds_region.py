"""Snakemake entry point of rule neds_region (logic: pipeline.neds.stages.run_region_classification)."""

from pipeline.logs import rule_log
from pipeline.neds.config import RegionParams
from pipeline.neds.stages import run_region_classification

with rule_log(snakemake.log[0]):
    models = {name: list(zip(snakemake.input[f"{name}_models"], snakemake.input[f"{name}_binned"]))
              for name in snakemake.params.model_names}
    run_region_classification(models, RegionParams.from_mapping(snakemake.params.region), snakemake.params.seed,
                              snakemake.output[0])
