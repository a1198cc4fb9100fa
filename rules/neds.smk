# NEDS (paper seed 002) on the binned IBL sessions (pipeline.neds): single-session models per
# session and variant, baselines, multi-session pretraining + fine-tuning on held-out
# sessions, region classification, tables and the confusion-matrix figure.

NEDS = PARAMS["neds"]
NEDS_VARIANTS = [*NEDS["variants"], *(f"no_{scheme}" for scheme in NEDS["masking_ablation"])]
NEDS_HELDOUT = list(NEDS["heldout_sessions"])
NEDS_PRETRAIN = [session for session in SESSIONS.index if session not in NEDS_HELDOUT]
NEDS_TRAINING_RESOURCES = dict(
    gpu=NEDS["gpus_per_training_job"],
    mem_mb=lambda wildcards, attempt: 4000 * attempt,
    runtime=240 if NEDS["gpus_per_training_job"] else 60,
)

_unknown_heldout = sorted(set(NEDS_HELDOUT) - set(SESSIONS.index))
if _unknown_heldout:
    raise WorkflowError(f"config neds.heldout_sessions: {_unknown_heldout} not in {config['session_table']}")
if NEDS_HELDOUT and not NEDS_PRETRAIN:
    raise WorkflowError("config neds.heldout_sessions: every session is held out; none is left to pretrain on")


wildcard_constraints:
    variant="|".join(NEDS_VARIANTS),


def neds_binned(session):
    return f"{RESULTS}/ibl/binned/{session}.h5"


def neds_region_models():
    """Model name -> (model files, binned files) whose neuron embeddings are classified: the
    held-out sessions (all sessions without multi-session training), fine-tuned and single-session."""
    sessions = NEDS_HELDOUT or list(SESSIONS.index)
    models = {
        f"neds_{variant}": [f"{RESULTS}/neds/single/{variant}/{session}/model.pt" for session in sessions]
        for variant in NEDS["variants"]
    }
    if NEDS_HELDOUT:
        models["neds_multi_session"] = [f"{RESULTS}/neds/multi/finetuned/{s}/model.pt" for s in NEDS_HELDOUT]
    return {name: (paths, [neds_binned(s) for s in sessions]) for name, paths in models.items()}


def neds_region_inputs(wildcards):
    inputs = {}
    for name, (models, binned) in neds_region_models().items():
        inputs[f"{name}_models"], inputs[f"{name}_binned"] = models, binned
    return inputs


def neds_model_metrics():
    """metrics.json of every single-session and fine-tuned model."""
    return expand(
        f"{RESULTS}/neds/single/{{variant}}/{{session}}/metrics.json", variant=NEDS_VARIANTS, session=SESSIONS.index
    ) + expand(f"{RESULTS}/neds/multi/finetuned/{{session}}/metrics.json", session=NEDS_HELDOUT)


NEDS_TABLES = ["comparison", "encoding_per_variable", "region", "training"]


def neds_targets():
    """The NEDS tables and figure (everything else is upstream of them)."""
    return expand(f"{RESULTS}/tables/neds_{{table}}.{{ext}}", table=NEDS_TABLES, ext=["csv", "md"]) + expand(
        f"{RESULTS}/figures/neds_region_confusion.{{ext}}", ext=["pdf", "png"]
    )


rule neds_baselines:
    """Linear (ridge, CV over the paper's grid) and reduced-rank regression encoder and
    decoder, plus the chance predictor, on one session's test trials."""
    input:
        binned=f"{RESULTS}/ibl/binned/{{session}}.h5",
    output:
        f"{RESULTS}/neds/baselines/{{session}}.json",
    params:
        neds=NEDS,
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
        neds=NEDS,
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


rule neds_pretrain:
    """Pretrain the multimodal model on every session not held out (multi-session)."""
    input:
        binned=[neds_binned(session) for session in NEDS_PRETRAIN],
    output:
        model=f"{RESULTS}/neds/multi/pretrained.pt",
        summary=f"{RESULTS}/neds/multi/pretraining.json",
    params:
        neds=NEDS,
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
        neds=NEDS,
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
    embedding (linear SVC, stratified k-fold), per model kind."""
    input:
        unpack(neds_region_inputs),
    output:
        f"{RESULTS}/neds/region_classification.json",
    params:
        neds=NEDS,
        seed=unit_seed("neds_region"),
        model_names=list(neds_region_models()),
    threads: 1
    resources:
        mem_mb=2000,
        runtime=20,
    log:
        f"{LOGS}/neds_region/region.log",
    benchmark:
        f"{BENCHMARKS}/neds_region/region.tsv"
    conda:
        CONDA_ENV
    script:
        "../workflow/scripts/neds_region.py"


rule neds_report:
    """NEDS tables (NEDS vs baselines, per-variable encoding, region classification,
    training throughput) and the region confusion-matrix figure."""
    input:
        models=neds_model_metrics(),
        baselines=expand(f"{RESULTS}/neds/baselines/{{session}}.json", session=SESSIONS.index),
        pretraining=[f"{RESULTS}/neds/multi/pretraining.json"] if NEDS_HELDOUT else [],
        region=f"{RESULTS}/neds/region_classification.json",
    output:
        **{
            f"{table}_{ext}": f"{RESULTS}/tables/neds_{table}.{ext}"
            for table in NEDS_TABLES
            for ext in ["csv", "md"]
        },
        figure_pdf=f"{RESULTS}/figures/neds_region_confusion.pdf",
        figure_png=f"{RESULTS}/figures/neds_region_confusion.png",
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
