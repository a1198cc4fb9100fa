# NLP4Neuro decoders: one training job per experiment x fish x model x weights x embedding
# x seq_len x run (pipeline.train), or per R runs of it (nlp4neuro.runs_per_job = R > 1).
# Job list and parameters: DESIGN in rules/common.smk.

if DESIGN.runs_per_job == 1:

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

else:
    # One rule per run range [a, b] (DESIGN.run_chunks(): chunk c of an experiment holds runs
    # [c R, (c + 1) R)), limited to the experiments that have that range, so that every run's
    # output is made by exactly one rule. Snakemake cannot derive run numbers from a wildcard.
    for _runs, _experiments in DESIGN.run_chunks().items():

        rule:
            """Train runs a..b of one (experiment, fish, model, weights, embedding, seq_len[,
            fold]) one after another, each exactly as its train_decoder job would (same seed,
            params, outputs: pipeline.train.job.run_decoding_runs). Finished runs and the
            interrupted run's checkpoint are kept in the checkpoint directory (not an output),
            so a retry trains only what is left; time limit R x the model's runtime_min."""
            name:
                decoder_chunk_rule(_runs)
            input:
                neural=f"{RESULTS}/neural/{{fish}}.h5",
                behavior=f"{RESULTS}/behavior/{{fish}}.h5",
            output:
                model=decoder_chunk_outputs(_runs, "model.pt"),
                predictions=decoder_chunk_outputs(_runs, "predictions.h5"),
                metrics=decoder_chunk_outputs(_runs, "metrics.json"),
            wildcard_constraints:
                experiment="|".join(re.escape(experiment) for experiment in _experiments),
            params:
                **decoder_chunk_params(_runs),
            threads: 2
            group: cpu_training_group
            resources:
                gpu=lambda wildcards: DESIGN.models[wildcards.model].gpus,
                mem_mb=lambda wildcards, attempt: DESIGN.models[wildcards.model].mem_mb * attempt,
                runtime=decoder_chunk_runtime(_runs),
            log:
                f"{LOGS}/train_decoder/{decoder_chunk_path(_runs)}.log",
            benchmark:
                f"{BENCHMARKS}/train_decoder/{decoder_chunk_path(_runs)}.tsv"
            conda:
                CONDA_ENV
            script:
                "../workflow/scripts/train_decoder_runs.py"
