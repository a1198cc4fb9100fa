"""Snakemake entry point of rule synth_ibl_session (logic: pipeline.synth.ibl)."""

from pipeline.logs import rule_log
from pipeline.synth.config import IblSynthParams
from pipeline.synth.ibl import generate_session

with rule_log(snakemake.log[0]):
    generate_session(
        snakemake.output.session_dir,
        snakemake.output.truth,
        IblSynthParams.from_mapping(snakemake.params.synth),
        shared_seed=snakemake.params.shared_seed,
        session_seed=snakemake.params.session_seed,
    )
