"""Snakemake entry point of rule align_behavior (logic: pipeline.behavior.tail)."""

import json

from pipeline.behavior.config import TailAlignmentConfig
from pipeline.behavior.tail import align_behavior
from pipeline.io.inventory import checksums
from pipeline.logs import rule_log

with rule_log(snakemake.log[0]):
    align_behavior(
        snakemake.params.row,
        snakemake.output[0],
        TailAlignmentConfig(**snakemake.params.alignment),
        source_checksums=checksums(json.loads(open(snakemake.input.inventory).read())),
    )
