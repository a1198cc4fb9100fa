"""Snakemake entry point of rule bin_ibl_session (logic: pipeline.ibl.binning)."""

import json

from pipeline.ibl.binning import BinningConfig, bin_session
from pipeline.logs import rule_log

with rule_log(snakemake.log[0]):
    inventory = json.loads(open(snakemake.input.inventory).read())
    bin_session(
        snakemake.params.row,
        snakemake.output[0],
        BinningConfig.from_mapping(snakemake.params.binning),
        split_seed=snakemake.params.split_seed,
        source_checksums={entry["path"]: entry["sha256"] for entry in inventory["files"]},
    )
