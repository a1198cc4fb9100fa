"""Snakemake entry point of rule extract_plane (logic: pipeline.imaging.extraction)."""

from pipeline.config import job_settings
from pipeline.imaging.config import ExtractionParams
from pipeline.imaging.extraction import extract_plane
from pipeline.logs import rule_log

with rule_log(snakemake.log[0]):
    extract_plane(
        snakemake.input.movie,
        snakemake.output[0],
        ExtractionParams.from_mapping(job_settings(snakemake.config, "extraction", snakemake.params.extraction)),
        frame_rate_hz=snakemake.params.recording["volume_rate_hz"],
        pixel_size_um=snakemake.params.recording["pixel_size_um"],
    )
