"""Snakemake entry point of rule salience_summary (logic: pipeline.salience.summary)."""

from pipeline.logs import rule_log
from pipeline.salience.config import SalienceParams
from pipeline.salience.summary import salience_summary_stage

with rule_log(snakemake.log[0]):
    out = snakemake.output
    settings = SalienceParams.from_mapping(snakemake.params.salience)
    salience_summary_stage(
        snakemake.params.files,
        snakemake.wildcards.model,
        k=settings.top_k,
        frame=settings.example_frame,
        table_paths={"csv": out.table_csv, "tex": out.table_tex, "md": out.table_md},
        figure_paths={
            "map": (out.map_pdf, out.map_png),
            "asymmetry": (out.asymmetry_pdf, out.asymmetry_png),
            "moment": (out.moment_pdf, out.moment_png),
            "pca": (out.pca_pdf, out.pca_png),
        },
        config_hash=snakemake.params.params_hash,
    )
