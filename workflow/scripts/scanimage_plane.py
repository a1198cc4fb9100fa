"""Snakemake entry point of rule scanimage_plane (logic: pipeline.io.scanimage)."""

from pipeline.io.scanimage import read_acquisition, write_plane_stack
from pipeline.logs import rule_log

with rule_log(snakemake.log[0]):
    acquisition = snakemake.params.acquisition
    layout, _, _ = read_acquisition(acquisition["files"], acquisition["channel"], acquisition["n_planes"])
    write_plane_stack(layout, int(snakemake.wildcards.plane), snakemake.output[0])
