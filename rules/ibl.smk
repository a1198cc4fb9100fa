# IBL sessions (NEDS): ALF folder -> trial-aligned spike counts + behaviour (pipeline.ibl).


rule bin_ibl_session:
    """Bin one session: spike counts (trials x bins x neurons), wheel speed, whisker
    motion energy, choice and block per trial, and a seeded train/val/test split."""
    input:
        alf_dir=lambda wildcards: session_row(wildcards.session)["alf_dir"],
        inventory=f"{RESULTS}/inventory/sessions/{{session}}.json",
    output:
        f"{RESULTS}/ibl/binned/{{session}}.h5",
    params:
        row=lambda wildcards: row_params(session_row(wildcards.session), SESSION_COLUMNS_READ),
        binning=section_params("ibl_binning"),
        split_seed=lambda wildcards: unit_seed("ibl_split", wildcards.session),
    resources:
        mem_mb=lambda wildcards, attempt: 4000 * attempt,  # more per retry (--retries)
        runtime=lambda wildcards, attempt: 30 * attempt,
    log:
        f"{LOGS}/bin_ibl_session/{{session}}.log",
    benchmark:
        f"{BENCHMARKS}/bin_ibl_session/{{session}}.tsv"
    conda:
        CONDA_ENV
    script:
        "../workflow/scripts/bin_ibl_session.py"
