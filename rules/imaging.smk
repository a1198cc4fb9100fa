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
        row=lambda wildcards: row_params(fish_row(wildcards.fish), FISH_COLUMNS_READ["align_behavior"]),
        alignment=section_params("tail_alignment"),
    group: INPUTS_GROUP
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


rule scanimage_plane:
    """De-interleave one plane of the functional channel from a ScanImage acquisition
    (input_type scanimage) into a one-page-per-volume stack, streamed page by page; an
    incomplete last volume is dropped (logged; recorded in the inventory)."""
    input:
        unpack(scanimage_plane_inputs),
    output:
        temp(f"{RESULTS}/imaging/{{fish}}/plane{{plane}}/raw.tif"),
    params:
        acquisition=scanimage_plane_params,
    resources:
        mem_mb=1000,
        runtime=60,
    log:
        f"{LOGS}/scanimage_plane/{{fish}}/plane{{plane}}.log",
    benchmark:
        f"{BENCHMARKS}/scanimage_plane/{{fish}}/plane{{plane}}.tsv"
    conda:
        CONDA_ENV
    script:
        "../workflow/scripts/scanimage_plane.py"


rule nwb_plane:
    """Stream one plane's raw TwoPhotonSeries (acquisition/plane{p}) of an NWB fish
    (input_type nwb, nwb_data raw) into a one-page-per-frame stack for motion correction."""
    input:
        unpack(nwb_plane_inputs),
    output:
        temp(f"{RESULTS}/imaging/{{fish}}/plane{{plane}}/raw_nwb.tif"),
    resources:
        mem_mb=1000,
        runtime=60,
    log:
        f"{LOGS}/nwb_plane/{{fish}}/plane{{plane}}.log",
    benchmark:
        f"{BENCHMARKS}/nwb_plane/{{fish}}/plane{{plane}}.tsv"
    conda:
        CONDA_ENV
    script:
        "../workflow/scripts/nwb_plane.py"


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
        settings=section_params(METHOD_SECTIONS[PARAMS["motion_correction"]["method"]]),
    resources:
        mem_mb=lambda wildcards, attempt: 4000 * attempt,  # more per retry (--retries)
        runtime=lambda wildcards, attempt: 120 * attempt,  # longer per retry (a time-limit kill)
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
        extraction=section_params("extraction"),
        recording=lambda wildcards: row_params(fish_row(wildcards.fish), ["volume_rate_hz", "pixel_size_um"]),
    resources:
        mem_mb=lambda wildcards, attempt: 8000 * attempt,  # more per retry (--retries)
        runtime=lambda wildcards, attempt: 120 * attempt,  # longer per retry (a time-limit kill)
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
        row=lambda wildcards: row_params(fish_row(wildcards.fish), FISH_COLUMNS_READ["neural_file"]),
        neural=section_params("neural_file"),
    resources:
        mem_mb=lambda wildcards, attempt: 4000 * attempt,  # more per retry (--retries)
        runtime=lambda wildcards, attempt: 30 * attempt,
    log:
        f"{LOGS}/neural_file/{{fish}}.log",
    benchmark:
        f"{BENCHMARKS}/neural_file/{{fish}}.tsv"
    conda:
        CONDA_ENV
    script:
        "../workflow/scripts/neural_file.py"


rule nwb_export:
    """Export one fish's neural and behaviour files as NWB (pynwb) for deposit (DANDI).
    Not part of `all`: ask for results/nwb/{fish}.nwb."""
    input:
        neural=f"{RESULTS}/neural/{{fish}}.h5",
        behavior=f"{RESULTS}/behavior/{{fish}}.h5",
    output:
        f"{RESULTS}/nwb/{{fish}}.nwb",
    resources:
        mem_mb=lambda wildcards, attempt: 4000 * attempt,  # more per retry (--retries)
        runtime=30,
    log:
        f"{LOGS}/nwb_export/{{fish}}.log",
    benchmark:
        f"{BENCHMARKS}/nwb_export/{{fish}}.tsv"
    conda:
        CONDA_ENV
    script:
        "../workflow/scripts/nwb_export.py"
rule imaging_quality:
    """Per-fish quality page (mean image, shifts and bad frames, bidirectional phase, z-drift
    diagnostic, ROI map by region, dF/F examples), per-plane z-drift table and, with a
    reference z-stack in the fish table, the z position per chunk of frames."""
    input:
        registered=registered_planes,
        neural=f"{RESULTS}/neural/{{fish}}.h5",  # also holds the per-plane frame times
        zstack=zstack_planes,
    output:
        page=report(f"{RESULTS}/qc/{{fish}}/imaging_quality.png", caption="../report/imaging_quality.rst",
                    category="Imaging quality"),
        drift=report(f"{RESULTS}/qc/{{fish}}/z_drift.tsv", caption="../report/imaging_quality.rst",
                     category="Imaging quality"),
        z_position=report(f"{RESULTS}/qc/{{fish}}/z_position.tsv", caption="../report/imaging_quality.rst",
                          category="Imaging quality"),
    params:
        zstack_step_um=lambda wildcards: fish_row(wildcards.fish).get("zstack_step_um"),
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
