"""Snakemake entry point of rule inventory_session (logic: pipeline.io.inventory)."""

from pipeline.io.atomic import write_json
from pipeline.io.inventory import inventory_session
from pipeline.logs import rule_log

with rule_log(snakemake.log[0]):
    write_json(inventory_session(snakemake.params.row), snakemake.output[0])
