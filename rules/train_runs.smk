# NLP4Neuro decoders with several runs per training job (runs_per_job R > 1 for some model,
# nlp4neuro.runs_per_job or the catalog entry's; included instead of rules/train.smk): one job
# per experiment x fish x model x weights x embedding x seq_len x R runs. Job parameters:
# rules/common.smk.
# One rule per run range [a, b] and set of experiments x models chunked that way
# (DESIGN.run_chunks(): chunk c of an (experiment, model) holds runs [c R, (c + 1) R), R the
# model's), limited to them, so that every run's output is made by exactly one rule.
# Snakemake cannot derive run numbers from a wildcard.
for _name, _runs, _experiments, _models in decoder_chunk_rules():

    rule:
        """Train runs a..b of one (experiment, fish, model, weights, embedding, seq_len[,
        fold]) one after another, each exactly as its train_decoder job would (same seed,
        params, outputs: pipeline.train.job.run_decoding_runs). Finished runs and the
        interrupted run's checkpoint are kept in the checkpoint directory (not an output),
        so a retry trains only what is left; time limit R x the model's runtime_min."""
        name:
            _name
        input:
            neural=f"{RESULTS}/neural/{{fish}}.h5",
            behavior=f"{RESULTS}/behavior/{{fish}}.h5",
        output:
            model=decoder_chunk_outputs(_runs, "model.pt"),
            predictions=decoder_chunk_outputs(_runs, "predictions.h5"),
            metrics=decoder_chunk_outputs(_runs, "metrics.json"),
        wildcard_constraints:
            experiment="|".join(re.escape(experiment) for experiment in _experiments),
            model="|".join(re.escape(model) for model in _models),
        params:
            **decoder_chunk_params(_runs),
        threads: 2
        group: decoder_chunk_group(_models)
        resources:
            gpu=decoder_chunk_gpus(_models),
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
