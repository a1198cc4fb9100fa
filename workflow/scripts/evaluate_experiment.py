"""Snakemake entry point of rules evaluate_model_comparison, evaluate_pretrained_vs_untrained
and evaluate_embeddings (logic: pipeline.report.evaluation)."""

from pipeline.logs import rule_log
from pipeline.models.config import STRATEGIES
from pipeline.report.evaluation import embeddings_stage, model_comparison_stage, pretrained_vs_untrained_stage

with rule_log(snakemake.log[0]):
    settings = snakemake.params.settings
    common = dict(
        metrics=list(snakemake.input.metrics),
        experiment=settings["experiment"],
        model_order=settings["models"],
        alpha=settings["alpha"],
        resamples=settings["resamples"],
        seed=settings["seed"],
        tables={ext: snakemake.output[ext] for ext in ("csv", "tex", "md")},
        figure_pdf=snakemake.output.pdf,
        figure_png=snakemake.output.png,
    )
    role = snakemake.params.role
    if role == "model_comparison":
        model_comparison_stage(**common, table_metrics=list(snakemake.input.table_metrics),
                               table_experiment=settings["table_experiment"],
                               table_model_order=settings["table_models"])
    elif role == "pretrained_vs_untrained":
        pretrained_vs_untrained_stage(**common)
    elif role == "embeddings":
        embeddings_stage(**common, embedding_order=list(STRATEGIES))
    else:
        raise ValueError(f"unknown evaluation role {role!r}")
