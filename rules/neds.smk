# NEDS (paper seed 002) on the binned IBL sessions (pipeline.neds): single-session models per
# session and variant, baselines, multi-session pretraining + fine-tuning on held-out
# sessions, region classification, tables and the confusion-matrix figure.

wildcard_constraints:
    variant="|".join(NEDS_VARIANTS),
    baseline="|".join(NEDS_MULTI_SESSION_BASELINES),
    draw=r"\d+",


rule neds_baselines:
    """Linear (ridge, CV over the paper's grid) encoder and decoders, plus the chance
    predictor, on one session's test trials."""
    input:
        binned=f"{RESULTS}/ibl/binned/{{session}}.h5",
    output:
        f"{RESULTS}/neds/baselines/{{session}}.json",
    params:
        baselines=neds_linear_params(),
        seed=lambda wildcards: unit_seed("neds_baselines", wildcards.session),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    log:
        f"{LOGS}/neds_baselines/{{session}}.log",
    benchmark:
        f"{BENCHMARKS}/neds_baselines/{{session}}.tsv"
    conda:
        CONDA_ENV
    script:
        "../workflow/scripts/neds_baselines.py"


rule neds_rrr:
    """Multi-session reduced-rank regression (Zhang et al. 2024: shared temporal basis,
    per-session neuron weights) encoder and decoders fitted on the training trials of every
    session; test metrics per session."""
    input:
        binned=[neds_binned(session) for session in SESSIONS.index],
    output:
        f"{RESULTS}/neds/rrr.json",
    params:
        baselines=neds_rrr_params(),
        seed=unit_seed("neds_rrr"),
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    log:
        f"{LOGS}/neds_rrr/rrr.log",
    benchmark:
        f"{BENCHMARKS}/neds_rrr/rrr.tsv"
    conda:
        CONDA_ENV
    script:
        "../workflow/scripts/neds_rrr.py"


rule neds_ndt2:
    """NDT2 baseline (pipeline.neds.ndt2) on one session: self-supervised masked-patch
    pretraining, then a decoder of wheel, whisker, choice and block on the frozen encoder;
    test decoding metrics in the model-record format of the comparison table."""
    input:
        binned=f"{RESULTS}/ibl/binned/{{session}}.h5",
    output:
        f"{RESULTS}/neds/ndt2/{{session}}/metrics.json",
    params:
        ndt2=NEDS["ndt2"],
        seed=lambda wildcards: unit_seed("neds_ndt2", wildcards.session),
    threads: NEDS["threads"]
    resources:
        **NEDS_TRAINING_RESOURCES,
    log:
        f"{LOGS}/neds_ndt2/{{session}}.log",
    benchmark:
        f"{BENCHMARKS}/neds_ndt2/{{session}}.tsv"
    conda:
        CONDA_ENV
    script:
        "../workflow/scripts/neds_ndt2.py"


rule neds_poyo:
    """POYO+ baseline (pipeline.neds.poyo) on one session: spike tokens, latent
    cross-attention, multi-task readout of wheel, whisker, choice and block, trained from
    scratch on the session's training trials; test decoding metrics."""
    input:
        binned=f"{RESULTS}/ibl/binned/{{session}}.h5",
    output:
        f"{RESULTS}/neds/poyo/{{session}}/metrics.json",
    params:
        poyo=NEDS["poyo"],
        seed=lambda wildcards: unit_seed("neds_poyo", wildcards.session),
    threads: NEDS["threads"]
    resources:
        **NEDS_TRAINING_RESOURCES,
    log:
        f"{LOGS}/neds_poyo/{{session}}.log",
    benchmark:
        f"{BENCHMARKS}/neds_poyo/{{session}}.tsv"
    conda:
        CONDA_ENV
    script:
        "../workflow/scripts/neds_poyo.py"


rule neds_baseline_pretrain:
    """Pretrain a multi-session transformer baseline ({baseline}: ndt2_multi_session,
    self-supervised masked patches; poyo_multi_session, supervised multi-task decoding) on
    the training trials of every session not held out. Params: the baseline's section
    without its fine-tuning epochs."""
    input:
        binned=[neds_binned(session) for session in NEDS_PRETRAIN],
    output:
        model=f"{RESULTS}/neds/{{baseline}}/pretrained.pt",
    params:
        baseline=lambda wildcards: neds_baseline_pretraining_params(wildcards.baseline),
        seed=lambda wildcards: unit_seed("neds_baseline_pretrain", wildcards.baseline),
    threads: NEDS["threads"]
    resources:
        **NEDS_TRAINING_RESOURCES,
    log:
        f"{LOGS}/neds_baseline_pretrain/{{baseline}}.log",
    benchmark:
        f"{BENCHMARKS}/neds_baseline_pretrain/{{baseline}}.tsv"
    conda:
        CONDA_ENV
    script:
        "../workflow/scripts/neds_baseline_pretrain.py"


rule neds_baseline_finetune:
    """Adapt a pretrained multi-session baseline to a held-out session (NDT2: new context,
    patch embedding and decoder input, SSL fine-tuning, then a decoder on the frozen encoder;
    POYO+: new unit and session embeddings trained alone (unit identification), then every
    weight) and score it on the session's test trials."""
    input:
        pretrained=f"{RESULTS}/neds/{{baseline}}/pretrained.pt",
        binned=f"{RESULTS}/ibl/binned/{{session}}.h5",
    output:
        f"{RESULTS}/neds/{{baseline}}/{{session}}/metrics.json",
    params:
        baseline=lambda wildcards: NEDS[wildcards.baseline],
        seed=lambda wildcards: unit_seed("neds_baseline_finetune", wildcards.baseline, wildcards.session),
    threads: NEDS["threads"]
    resources:
        **NEDS_TRAINING_RESOURCES,
    log:
        f"{LOGS}/neds_baseline_finetune/{{baseline}}/{{session}}.log",
    benchmark:
        f"{BENCHMARKS}/neds_baseline_finetune/{{baseline}}/{{session}}.tsv"
    conda:
        CONDA_ENV
    script:
        "../workflow/scripts/neds_baseline_finetune.py"


if not NEDS_SEARCH_DRAWS:

    rule neds_train_single:
        """Train one single-session NEDS variant (multimodal, encoding-only, decoding-only, or a
        masking ablation no_<scheme>) on a session and evaluate it on its test trials. An
        interrupted job resumes from its checkpoint directory (not an output)."""
        input:
            binned=f"{RESULTS}/ibl/binned/{{session}}.h5",
        output:
            model=f"{RESULTS}/neds/single/{{variant}}/{{session}}/model.pt",
            metrics=f"{RESULTS}/neds/single/{{variant}}/{{session}}/metrics.json",
        params:
            model=NEDS["model"],
            masking=lambda wildcards: neds_variant_masking(wildcards.variant),
            training=NEDS["training"],
            seed=lambda wildcards: unit_seed("neds_single", wildcards.variant, wildcards.session),
            checkpoint_dir=lambda wildcards: f"{RESULTS}/neds/checkpoints/single/{wildcards.variant}/{wildcards.session}",
        threads: NEDS["threads"]
        resources:
            **NEDS_TRAINING_RESOURCES,
        log:
            f"{LOGS}/neds_train_single/{{variant}}/{{session}}.log",
        benchmark:
            f"{BENCHMARKS}/neds_train_single/{{variant}}/{{session}}.tsv"
        conda:
            CONDA_ENV
        script:
            "../workflow/scripts/neds_train_single.py"

elif NEDS_SEARCH_PER_JOB == 1:

    rule neds_search_draw:
        """One random hyperparameter draw (neds.search) of a single-session variant: train
        with the drawn learning rate, weight decay, mask ratio and width / depth; validation
        scores only. The draw's values are its params (a function of the seed and the draw
        number alone), so adding draws leaves the existing draw jobs untouched."""
        input:
            binned=f"{RESULTS}/ibl/binned/{{session}}.h5",
        output:
            model=f"{RESULTS}/neds/search/{{variant}}/{{session}}/draw{{draw}}/model.pt",
            validation=f"{RESULTS}/neds/search/{{variant}}/{{session}}/draw{{draw}}/validation.json",
        params:
            model=lambda wildcards: neds_search_draw_params(wildcards)["model"],
            masking=lambda wildcards: neds_search_draw_params(wildcards)["masking"],
            training=lambda wildcards: neds_search_draw_params(wildcards)["training"],
            seed=lambda wildcards: neds_search_seed(wildcards.variant, wildcards.session),
            checkpoint_dir=lambda wildcards: f"{RESULTS}/neds/checkpoints/search/{wildcards.variant}/{wildcards.session}/draw{wildcards.draw}",
        threads: NEDS["threads"]
        resources:
            **NEDS_TRAINING_RESOURCES,
        log:
            f"{LOGS}/neds_search_draw/{{variant}}/{{session}}/draw{{draw}}.log",
        benchmark:
            f"{BENCHMARKS}/neds_search_draw/{{variant}}/{{session}}/draw{{draw}}.tsv"
        conda:
            CONDA_ENV
        script:
            "../workflow/scripts/neds_search_draw.py"

else:

    rule neds_search_chunk:
        """Draws [chunk K, (chunk + 1) K) of the search (K = neds.search.draws_per_job;
        pipeline.chunks.chunk_items), trained one after another exactly like the
        neds_search_draw jobs (same values and seeds). Outputs: every draw's validation
        record (a list) and the chunk's best-validation model, the only one the selection
        can pick from it. Finished draws are kept in the checkpoint directory (not an
        output) until the chunk ends, so a resumed chunk does not retrain them."""
        input:
            binned=f"{RESULTS}/ibl/binned/{{session}}.h5",
        output:
            model=f"{RESULTS}/neds/search/{{variant}}/{{session}}/chunk{{chunk}}/model.pt",
            validation=f"{RESULTS}/neds/search/{{variant}}/{{session}}/chunk{{chunk}}/validation.json",
        wildcard_constraints:
            chunk=r"\d+",
        params:
            draws=neds_search_chunk_params,
            seed=per_job(lambda wildcards: neds_search_seed(wildcards.variant, wildcards.session)),
            checkpoint_dir=f"{RESULTS}/neds/checkpoints/search/{{variant}}/{{session}}/chunk{{chunk}}",  # filled by Snakemake
        threads: NEDS["threads"]
        resources:
            **neds_search_chunk_resources(),
        log:
            f"{LOGS}/neds_search_chunk/{{variant}}/{{session}}/chunk{{chunk}}.log",
        benchmark:
            f"{BENCHMARKS}/neds_search_chunk/{{variant}}/{{session}}/chunk{{chunk}}.tsv"
        conda:
            CONDA_ENV
        script:
            "../workflow/scripts/neds_search_chunk.py"


if NEDS_SEARCH_DRAWS:

    rule neds_search_select:
        """The search's model of a (variant, session): the draw with the best validation
        score (over the draw jobs, or the chunk jobs' records), the only one evaluated on
        the test trials."""
        input:
            binned=f"{RESULTS}/ibl/binned/{{session}}.h5",
            models=lambda wildcards: neds_search_draws(wildcards, "model.pt"),
            validation=lambda wildcards: neds_search_draws(wildcards, "validation.json"),
        output:
            model=f"{RESULTS}/neds/single/{{variant}}/{{session}}/model.pt",
            metrics=f"{RESULTS}/neds/single/{{variant}}/{{session}}/metrics.json",
        threads: 1
        resources:
            mem_mb=4000,
            runtime=30,
        log:
            f"{LOGS}/neds_search_select/{{variant}}/{{session}}.log",
        benchmark:
            f"{BENCHMARKS}/neds_search_select/{{variant}}/{{session}}.tsv"
        conda:
            CONDA_ENV
        script:
            "../workflow/scripts/neds_search_select.py"


rule neds_pretrain:
    """Pretrain the multimodal model on every session not held out (multi-session)."""
    input:
        binned=[neds_binned(session) for session in NEDS_PRETRAIN],
    output:
        model=f"{RESULTS}/neds/multi/pretrained.pt",
        summary=f"{RESULTS}/neds/multi/pretraining.json",
    params:
        model=NEDS["multi_session_model"],
        masking=NEDS["masking"],
        training=NEDS["pretraining"],
        seed=unit_seed("neds_pretrain"),
        checkpoint_dir=f"{RESULTS}/neds/checkpoints/pretrain",
    threads: NEDS["threads"]
    resources:
        **NEDS_TRAINING_RESOURCES,
    log:
        f"{LOGS}/neds_pretrain/pretrain.log",
    benchmark:
        f"{BENCHMARKS}/neds_pretrain/pretrain.tsv"
    conda:
        CONDA_ENV
    script:
        "../workflow/scripts/neds_pretrain.py"


rule neds_finetune:
    """Fine-tune the pretrained model on a held-out session (new stitchers, session
    embedding and neural decoder) and evaluate it on its test trials."""
    input:
        pretrained=f"{RESULTS}/neds/multi/pretrained.pt",
        binned=f"{RESULTS}/ibl/binned/{{session}}.h5",
    output:
        model=f"{RESULTS}/neds/multi/finetuned/{{session}}/model.pt",
        metrics=f"{RESULTS}/neds/multi/finetuned/{{session}}/metrics.json",
    params:
        masking=NEDS["masking"],
        training=NEDS["finetuning"],
        seed=lambda wildcards: unit_seed("neds_finetune", wildcards.session),
        checkpoint_dir=lambda wildcards: f"{RESULTS}/neds/checkpoints/finetune/{wildcards.session}",
    threads: NEDS["threads"]
    resources:
        **NEDS_TRAINING_RESOURCES,
    log:
        f"{LOGS}/neds_finetune/{{session}}.log",
    benchmark:
        f"{BENCHMARKS}/neds_finetune/{{session}}.tsv"
    conda:
        CONDA_ENV
    script:
        "../workflow/scripts/neds_finetune.py"


rule neds_region:
    """Classify the brain region of every neuron of the held-out sessions from its NEDS
    embedding (z-scored within its session; class-weighted linear SVC; repeated stratified
    k-fold: inside each session for single-session models, across the pooled sessions plus
    folds grouped by session for the multi-session model), per model kind."""
    input:
        unpack(neds_region_inputs),
    output:
        f"{RESULTS}/neds/region_classification.json",
    params:
        region=NEDS["region"],
        seed=unit_seed("neds_region"),
        model_names=list(neds_region_models()),
    threads: 1
    resources:
        mem_mb=2000,
        # ~1.1 CPU s per LinearSVC fit on 3,200 x 512 random features (measured); 5 folds x 10
        # repeats x (4 C x 3 inner folds + 1) fits ~ 12 min per model at paper scale, 5 models
        runtime=90,
    log:
        f"{LOGS}/neds_region/region.log",
    benchmark:
        f"{BENCHMARKS}/neds_region/region.tsv"
    conda:
        CONDA_ENV
    script:
        "../workflow/scripts/neds_region.py"


rule neds_report:
    """NEDS tables (NEDS vs baselines on the evaluated sessions with paired tests,
    per-variable and per-region encoding, region classification, training) and figures
    (region confusion matrices, per-task validation curves)."""
    input:
        models=neds_model_metrics(),
        decoders=neds_transformer_baseline_metrics(),
        baselines=expand(f"{RESULTS}/neds/baselines/{{session}}.json", session=SESSIONS.index),
        rrr=f"{RESULTS}/neds/rrr.json",
        pretraining=[f"{RESULTS}/neds/multi/pretraining.json"] if NEDS_HELDOUT else [],
        region=f"{RESULTS}/neds/region_classification.json",
        binned=[neds_binned(session) for session in NEDS_EVALUATED],
    output:
        **{
            f"{table}_{ext}": neds_report_file("tables", table, ext)
            for table in NEDS_TABLES
            for ext in ["csv", "md"]
        },
        **{
            f"{figure}_{ext}": neds_report_file("figures", figure, ext)
            for figure in NEDS_FIGURES
            for ext in ["pdf", "png"]
        },
    params:
        sessions=NEDS_EVALUATED,
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    log:
        f"{LOGS}/neds_report/report.log",
    benchmark:
        f"{BENCHMARKS}/neds_report/report.tsv"
    conda:
        CONDA_ENV
    script:
        "../workflow/scripts/neds_report.py"
