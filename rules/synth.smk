# Built-in synthetic ground truth (demo and tests). A recording is synthetic when its
# table paths point into {results_dir}/synth/; these rules produce those paths. Inputs
# the pipeline reads and the ground truth (only tests and validation read it) are
# written to separate folders.


rule synth_zebrafish:
    """Simulate one fish: neurons, calcium, motion, tail, stimulus and region mask (all planes)."""
    output:
        tail_log=f"{SYNTH}/zebrafish/{{fish}}/tail_log.csv",
        stimulus_log=f"{SYNTH}/zebrafish/{{fish}}/stimulus_log.csv",
        frame_times=f"{SYNTH}/zebrafish/{{fish}}/frame_times.csv",
        region_mask=f"{SYNTH}/zebrafish/{{fish}}/region_mask.tif",
        truth=f"{SYNTH}/ground_truth/zebrafish/{{fish}}.h5",
    params:
        synth=section_params("synthetic.zebrafish"),
        recording=fish_recording_metadata,
        seed=lambda wildcards: unit_seed("synth", "zebrafish", wildcards.fish),
    group: INPUTS_GROUP
    resources:
        mem_mb=4000,
        runtime=30,
    log:
        f"{LOGS}/synth_zebrafish/{{fish}}.log",
    benchmark:
        f"{BENCHMARKS}/synth_zebrafish/{{fish}}.tsv"
    conda:
        CONDA_ENV
    script:
        "../workflow/scripts/synth_zebrafish.py"


rule synth_zebrafish_plane:
    """Render one plane's raw two-photon stack (uint16 multipage TIFF) from the simulation."""
    input:
        truth=f"{SYNTH}/ground_truth/zebrafish/{{fish}}.h5",
    output:
        stack=f"{SYNTH}/zebrafish/{{fish}}/plane{{plane}}.tif",
    group: INPUTS_GROUP
    resources:
        mem_mb=2000,
        runtime=60,
    log:
        f"{LOGS}/synth_zebrafish_plane/{{fish}}/plane{{plane}}.log",
    benchmark:
        f"{BENCHMARKS}/synth_zebrafish_plane/{{fish}}/plane{{plane}}.tsv"
    conda:
        CONDA_ENV
    script:
        "../workflow/scripts/synth_zebrafish_plane.py"


rule synth_zebrafish_zstack:
    """Render one plane's reference z-stack (slices around its nominal depth) from the
    simulation; only for fish whose table names it (zstack column) and a preset that has one."""
    input:
        truth=f"{SYNTH}/ground_truth/zebrafish/{{fish}}.h5",
    output:
        stack=f"{SYNTH}/zebrafish/{{fish}}/zstack_plane{{plane}}.tif",
    resources:
        mem_mb=1000,
        runtime=10,
    log:
        f"{LOGS}/synth_zebrafish_zstack/{{fish}}/plane{{plane}}.log",
    benchmark:
        f"{BENCHMARKS}/synth_zebrafish_zstack/{{fish}}/plane{{plane}}.tsv"
    conda:
        CONDA_ENV
    script:
        "../workflow/scripts/synth_zebrafish_zstack.py"


rule synth_scanimage:
    """Hand one synthetic fish over as a ScanImage rig would: its rendered planes interleaved
    into two ScanImage files (two channels, last volume incomplete, imaging-clock frame
    timestamps) and the frame trigger logged on the tail clock (pipeline.synth.scanimage)."""
    input:
        stacks=synthetic_plane_stacks,
        frame_times=f"{SYNTH}/zebrafish/{{fish}}/frame_times.csv",
    output:
        acquisition=[f"{SYNTH}/zebrafish/{{fish}}/scanimage/{{fish}}_0000{k}.tif" for k in (1, 2)],
        frame_trigger=f"{SYNTH}/zebrafish/{{fish}}/frame_trigger.csv",
    params:
        volume_rate_hz=lambda wildcards: fish_row(wildcards.fish)["volume_rate_hz"],
        seed=lambda wildcards: unit_seed("synth", "scanimage", wildcards.fish),
    group: INPUTS_GROUP
    resources:
        mem_mb=1000,
        runtime=30,
    log:
        f"{LOGS}/synth_scanimage/{{fish}}.log",
    benchmark:
        f"{BENCHMARKS}/synth_scanimage/{{fish}}.tsv"
    conda:
        CONDA_ENV
    script:
        "../workflow/scripts/synth_scanimage.py"


rule synth_ibl_session:
    """Simulate one IBL-like Neuropixels session as a ONE cache (pipeline.synth.ibl)."""
    output:
        session_dir=directory(f"{SYNTH}/ibl/{{session}}"),
        truth=f"{SYNTH}/ground_truth/ibl/{{session}}.h5",
    params:
        synth=section_params("synthetic.ibl"),
        shared_seed=unit_seed("synth", "ibl", "shared"),
        session_seed=lambda wildcards: unit_seed("synth", "ibl", wildcards.session),
    group: INPUTS_GROUP
    resources:
        mem_mb=4000,
        runtime=30,
    log:
        f"{LOGS}/synth_ibl_session/{{session}}.log",
    benchmark:
        f"{BENCHMARKS}/synth_ibl_session/{{session}}.tsv"
    conda:
        CONDA_ENV
    script:
        "../workflow/scripts/synth_ibl_session.py"
