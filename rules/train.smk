# NLP4Neuro decoders: one training job per experiment x fish x model x weights x embedding
# x seq_len x run (pipeline.train; nlp4neuro.runs_per_job = 1, else rules/train_runs.smk).
# Job list and parameters: DESIGN in rules/common.smk.


rule train_decoder:
    """Train one decoder on a fish's windows (chronological split, training-only
    normalisation), keep the best-validation weights, predict the test windows, and write
    the metrics. An interrupted job (SIGTERM from SLURM) resumes from its checkpoint
    directory, which is not an output and so survives a failed attempt."""
    input:
        neural=f"{RESULTS}/neural/{{fish}}.h5",
        behavior=f"{RESULTS}/behavior/{{fish}}.h5",
    output:
        model=f"{RESULTS}/nlp4neuro/{DECODER_RUN}/model.pt",
        predictions=f"{RESULTS}/nlp4neuro/{DECODER_RUN}/predictions.h5",
        metrics=f"{RESULTS}/nlp4neuro/{DECODER_RUN}/metrics.json",
    params:
        job=decoder_job,
        model_spec=decoder_model_spec,
        training=decoder_training,
        embedding=decoder_embedding_params,
        params_hash=decoder_params_hash,
        checkpoint_dir=lambda wildcards: f"{RESULTS}/nlp4neuro/checkpoints/{DECODER_RUN.format(**wildcards)}",
    threads: 2
    group: cpu_training_group
    resources:
        gpu=lambda wildcards: DESIGN.models[wildcards.model].gpus,
        mem_mb=lambda wildcards, attempt: DESIGN.models[wildcards.model].mem_mb * attempt,
        runtime=lambda wildcards, attempt: DESIGN.models[wildcards.model].runtime_min * attempt,
    log:
        f"{LOGS}/train_decoder/{DECODER_RUN}.log",
    benchmark:
        f"{BENCHMARKS}/train_decoder/{DECODER_RUN}.tsv"
    conda:
        CONDA_ENV
    script:
        "../workflow/scripts/train_decoder.py"
