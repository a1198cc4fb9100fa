"""Snakemake entry point of rule plot_test_traces (logic: pipeline.report.evaluation)."""

from pipeline.logs import rule_log
from pipeline.report.evaluation import traces_stage

with rule_log(snakemake.log[0]):
    traces_stage(
        {model: list(paths) for model, paths in snakemake.params.predictions_by_model.items()},
        fish=snakemake.params.fish,
        seq_len=snakemake.params.seq_len,
        n_frames=snakemake.params.n_frames,
        figure_pdf=snakemake.output.pdf,
        figure_png=snakemake.output.png,
    )
