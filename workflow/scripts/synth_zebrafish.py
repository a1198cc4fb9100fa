"""Snakemake entry point of rule synth_zebrafish (logic: pipeline.synth.zebrafish)."""

from pipeline.logs import rule_log
from pipeline.synth.config import ZebrafishSynthParams
from pipeline.synth.zebrafish import simulate_fish

with rule_log(snakemake.log[0]):
    simulate_fish(
        tail_log_path=snakemake.output.tail_log,
        stimulus_log_path=snakemake.output.stimulus_log,
        frame_times_path=snakemake.output.frame_times,
        region_mask_path=snakemake.output.region_mask,
        truth_path=snakemake.output.truth,
        params=ZebrafishSynthParams.from_mapping(snakemake.params.synth),
        seed=snakemake.params.seed,
        **snakemake.params.recording,
    )
