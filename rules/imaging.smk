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


rule motion_correct:
    """Register one plane's raw stack (NoRMCorre by default, or suite2p / CaImAn: config
    motion_correction.method); writes the registered movie, shifts, template and
    quality metrics."""
    input:
        stack=raw_stack,
    output:
        f"{RESULTS}/imaging/{{fish}}/plane{{plane}}/registered.h5",
    params:
        method=PARAMS["motion_correction"]["method"],
        settings=PARAMS[METHOD_SECTIONS[PARAMS["motion_correction"]["method"]]],
    resources:
        mem_mb=lambda wildcards, attempt: 4000 * attempt,  # more per retry (--retries)
        runtime=120,
    log:
        f"{LOGS}/motion_correct/{{fish}}/plane{{plane}}.log",
    benchmark:
        f"{BENCHMARKS}/motion_correct/{{fish}}/plane{{plane}}.tsv"
    conda:
        CAIMAN_ENV if PARAMS["motion_correction"]["method"] == "caiman" else CONDA_ENV
    script:
        "../workflow/scripts/motion_correct.py"


rule extract_plane:
    """Suite2P detection, extraction, deconvolution and classification on one registered
    plane (Suite2P's own registration off); writes a Suite2P plane folder."""
    input:
        movie=f"{RESULTS}/imaging/{{fish}}/plane{{plane}}/registered.h5",
    output:
        directory(f"{RESULTS}/imaging/{{fish}}/plane{{plane}}/suite2p"),
    params:
        extraction=PARAMS["extraction"],
        recording=fish_recording_metadata,
    resources:
        mem_mb=lambda wildcards, attempt: 8000 * attempt,  # more per retry (--retries)
        runtime=120,
    log:
        f"{LOGS}/extract_plane/{{fish}}/plane{{plane}}.log",
    benchmark:
        f"{BENCHMARKS}/extract_plane/{{fish}}/plane{{plane}}.tsv"
    conda:
        CONDA_ENV
    script:
        "../workflow/scripts/extract_plane.py"


rule neural_file:
    """Merge the fish's plane folders (ours, or the lab's Suite2P output) into one neural
    file: traces, dF/F, positions in um, regions, per-plane frame times."""
    input:
        unpack(neural_file_inputs),
    output:
        f"{RESULTS}/neural/{{fish}}.h5",
    params:
        row=lambda wildcards: fish_row(wildcards.fish),
        neural=PARAMS["neural_file"],
    resources:
        mem_mb=lambda wildcards, attempt: 4000 * attempt,  # more per retry (--retries)
        runtime=30,
    log:
        f"{LOGS}/neural_file/{{fish}}.log",
    benchmark:
        f"{BENCHMARKS}/neural_file/{{fish}}.tsv"
    conda:
        CONDA_ENV
    script:
        "../workflow/scripts/neural_file.py"


rule imaging_quality:
    """Per-fish quality page (mean image, shifts and bad frames, bidirectional phase, z-drift
    diagnostic, ROI map by region, dF/F examples) and per-plane z-drift table."""
    input:
        registered=registered_planes,
        neural=f"{RESULTS}/neural/{{fish}}.h5",
        frame_times=lambda wildcards: fish_row(wildcards.fish)["frame_times"],
    output:
        page=report(f"{RESULTS}/qc/{{fish}}/imaging_quality.png", caption="../report/imaging_quality.rst",
                    category="Imaging quality"),
        drift=report(f"{RESULTS}/qc/{{fish}}/z_drift.tsv", caption="../report/imaging_quality.rst",
                     category="Imaging quality"),
    resources:
        mem_mb=2000,
        runtime=20,
    log:
        f"{LOGS}/imaging_quality/{{fish}}.log",
    benchmark:
        f"{BENCHMARKS}/imaging_quality/{{fish}}.tsv"
    conda:
        CONDA_ENV
    script:
        "../workflow/scripts/imaging_quality.py"
