# Salience maps of trained NLP4Neuro decoders (pipeline.salience): one job per explained
# training job (config `salience`), then one summary per model (table + Figs. 4-6).


rule salience:
    """Input-gradient salience (paper Eq. 1, 21) of one trained decoder on its fish's
    configured split; top-k neurons; precision@k of planted drivers for synthetic fish."""
    input:
        unpack(synthetic_truth),
        model=f"{RESULTS}/nlp4neuro/{DECODER_RUN}/model.pt",
        neural=f"{RESULTS}/neural/{{fish}}.h5",
        behavior=f"{RESULTS}/behavior/{{fish}}.h5",
    output:
        f"{RESULTS}/nlp4neuro/salience/{DECODER_RUN}.h5",
    params:
        salience=section_params("salience", SALIENCE_JOB_FIELDS),
    threads: 2
    group: cpu_training_group
    resources:
        gpu=lambda wildcards: DESIGN.models[wildcards.model].gpus,
        mem_mb=lambda wildcards, attempt: DESIGN.models[wildcards.model].mem_mb * attempt,
        runtime=lambda wildcards, attempt: DESIGN.models[wildcards.model].runtime_min * attempt,
    log:
        f"{LOGS}/salience/{DECODER_RUN}.log",
    benchmark:
        f"{BENCHMARKS}/salience/{DECODER_RUN}.tsv"
    conda:
        CONDA_ENV
    script:
        "../workflow/scripts/salience.py"


rule salience_summary:
    """Salience table (regions, Pt vs Hb, hemisphere asymmetry, precision@k, ablation), Figs.
    4-6 and the App. A.13 PCA figure of one model over every fish and run (runs on the
    submitting host: cheap)."""
    localrule: True
    input:
        lambda wildcards: [p for paths in salience_files(wildcards.model).values() for p in paths],
    output:
        table_csv=report(f"{RESULTS}/tables/salience_{{model}}.csv", caption="../report/salience_table.rst", category="Salience"),
        table_tex=f"{RESULTS}/tables/salience_{{model}}.tex",
        table_md=f"{RESULTS}/tables/salience_{{model}}.md",
        map_pdf=f"{RESULTS}/figures/fig4_salience_map_{{model}}.pdf",
        map_png=report(f"{RESULTS}/figures/fig4_salience_map_{{model}}.png", caption="../report/fig4_salience_map.rst", category="Salience"),
        asymmetry_pdf=f"{RESULTS}/figures/fig5_asymmetry_{{model}}.pdf",
        asymmetry_png=report(f"{RESULTS}/figures/fig5_asymmetry_{{model}}.png", caption="../report/fig5_asymmetry.rst", category="Salience"),
        moment_pdf=f"{RESULTS}/figures/fig6_moment_salience_{{model}}.pdf",
        moment_png=report(f"{RESULTS}/figures/fig6_moment_salience_{{model}}.png", caption="../report/fig6_moment_salience.rst", category="Salience"),
        pca_pdf=f"{RESULTS}/figures/figA13_activation_pca_{{model}}.pdf",
        pca_png=report(f"{RESULTS}/figures/figA13_activation_pca_{{model}}.png", caption="../report/figA13_activation_pca.rst", category="Salience"),
    params:
        files=lambda wildcards: salience_files(wildcards.model),
        salience=section_params("salience", SALIENCE_SUMMARY_FIELDS),
        params_hash=lambda wildcards: config_hash(
            [section_params("salience", SALIENCE_SUMMARY_FIELDS), salience_files(wildcards.model)]
        ),
    log:
        f"{LOGS}/salience_summary/{{model}}.log",
    benchmark:
        f"{BENCHMARKS}/salience_summary/{{model}}.tsv"
    conda:
        CONDA_ENV
    script:
        "../workflow/scripts/salience_summary.py"
