"""Snakemake entry point of rule neural_file (logic: pipeline.imaging.neural)."""

import json

from pipeline.imaging.config import NeuralFileConfig
from pipeline.imaging.neural import write_neural_file
from pipeline.io.inventory import checksums
from pipeline.logs import rule_log

with rule_log(snakemake.log[0]):
    write_neural_file(
        snakemake.params.row,
        snakemake.input.planes,
        snakemake.output[0],
        NeuralFileConfig(**snakemake.params.neural),
        source_checksums=checksums(json.loads(open(snakemake.input.inventory).read())),
    )
