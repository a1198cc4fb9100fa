# IBL sessions (NEDS): a session of a local ONE cache -> trial-aligned spike counts + behaviour (pipeline.ibl).


rule bin_ibl_session:
    """Bin one session of a ONE cache (all its listed probes): spike counts (trials x bins x
    neurons) with Allen id and region per neuron, wheel speed, whisker
    motion energy, choice and block per trial, and a seeded train/val/test split."""
    input:
        source=session_source,
        inventory=f"{RESULTS}/inventory/sessions/{{session}}.json",
    output:
        f"{RESULTS}/ibl/binned/{{session}}.h5",
    params:
        row=lambda wildcards: row_params(session_row(wildcards.session), SESSION_COLUMNS_READ),
        binning=section_params("ibl_binning"),
        split_seed=lambda wildcards: unit_seed("ibl_split", wildcards.session),
    group: INPUTS_GROUP
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
