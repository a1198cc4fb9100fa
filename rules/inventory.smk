# First stage for every recording, real or synthetic: check its files against the table
# row and record checksums (pipeline.io.inventory). Later stages copy this provenance.


rule inventory_fish:
    """Check one fish's raw inputs (stacks or Suite2P folders, frame times, tail and
    stimulus logs) against its fish-table row; write the inventory JSON."""
    input:
        unpack(fish_raw_inputs),
    output:
        f"{RESULTS}/inventory/fish/{{fish}}.json",
    params:
        row=lambda wildcards: fish_row(wildcards.fish),
    group: INPUTS_GROUP
    resources:
        mem_mb=2000,
        runtime=20,
    log:
        f"{LOGS}/inventory_fish/{{fish}}.log",
    benchmark:
        f"{BENCHMARKS}/inventory_fish/{{fish}}.tsv"
    conda:
        CONDA_ENV
    script:
        "../workflow/scripts/inventory_fish.py"


rule inventory_session:
    """Check one IBL session of a ONE cache, read with ONE-api (required datasets present, spike arrays
    consistent); write the inventory JSON."""
    input:
        source=session_source,
    output:
        f"{RESULTS}/inventory/sessions/{{session}}.json",
    params:
        row=lambda wildcards: session_row(wildcards.session),
    group: INPUTS_GROUP
    resources:
        mem_mb=2000,
        runtime=20,
    log:
        f"{LOGS}/inventory_session/{{session}}.log",
    benchmark:
        f"{BENCHMARKS}/inventory_session/{{session}}.tsv"
    conda:
        CONDA_ENV
    script:
        "../workflow/scripts/inventory_session.py"
