"""Snakemake entry point of rule inventory_fish (logic: pipeline.io.inventory)."""

from pipeline.io.atomic import write_json
from pipeline.io.inventory import inventory_fish
from pipeline.logs import rule_log

with rule_log(snakemake.log[0]):
    write_json(inventory_fish(snakemake.params.row), snakemake.output[0])
