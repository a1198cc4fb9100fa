# Zebrafish recordings (NLP4Neuro): imaging frames and the behaviour aligned to them
# (pipeline.behavior, pipeline.imaging).


rule align_behavior:
    """Average the tail log over every imaging volume and plane frame by timestamps; add
    the tail sum and the stimulus state per volume."""
    input:
        unpack(fish_behavior_inputs),
    output:
        f"{RESULTS}/behavior/{{fish}}.h5",
    params:
        row=lambda wildcards: fish_row(wildcards.fish),
        alignment=PARAMS["tail_alignment"],
    resources:
        mem_mb=2000,
        runtime=20,
    log:
        f"{LOGS}/align_behavior/{{fish}}.log",
    benchmark:
        f"{BENCHMARKS}/align_behavior/{{fish}}.tsv"
    conda:
        CONDA_ENV
    script:
        "../workflow/scripts/align_behavior.py"
