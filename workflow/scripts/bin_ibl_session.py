"""Snakemake entry point of rule bin_ibl_session (logic: pipeline.ibl.binning)."""

import json

from pipeline.ibl.binning import bin_session
from pipeline.ibl.config import BinningConfig
from pipeline.io.inventory import checksums
from pipeline.logs import rule_log

with rule_log(snakemake.log[0]):
    bin_session(
        snakemake.params.row,
        snakemake.output[0],
        BinningConfig.from_mapping(snakemake.params.binning),
        split_seed=snakemake.params.split_seed,
        source_checksums=checksums(json.loads(open(snakemake.input.inventory).read())),
    )
