"""Snakemake entry point of rule synth_scanimage (logic: pipeline.synth.scanimage)."""

from pipeline.logs import rule_log
from pipeline.synth.scanimage import write_scanimage_recording

with rule_log(snakemake.log[0]):
    write_scanimage_recording(
        list(snakemake.input.stacks),
        snakemake.input.frame_times,
        list(snakemake.output.acquisition),
        snakemake.output.frame_trigger,
        volume_rate_hz=float(snakemake.params.volume_rate_hz),
        seed=snakemake.params.seed,
    )
