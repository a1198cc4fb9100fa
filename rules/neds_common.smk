# NEDS constants and input functions (rules in rules/neds.smk): the configured variants,
# held-out and pretraining sessions, region-classification inputs and the final targets.

NEDS = PARAMS["neds"]
NEDS_VARIANTS = [*NEDS["variants"], *(f"no_{scheme}" for scheme in NEDS["masking_ablation"])]
NEDS_HELDOUT = list(NEDS["heldout_sessions"])
NEDS_PRETRAIN = [session for session in SESSIONS.index if session not in NEDS_HELDOUT]
NEDS_TRAINING_RESOURCES = dict(
    gpu=NEDS["gpus_per_training_job"],
    mem_mb=lambda wildcards, attempt: 4000 * attempt,
    runtime=lambda wildcards, attempt: (240 if NEDS["gpus_per_training_job"] else 60) * attempt,
)

_unknown_heldout = sorted(set(NEDS_HELDOUT) - set(SESSIONS.index))
if _unknown_heldout:
    raise WorkflowError(f"config neds.heldout_sessions: {_unknown_heldout} not in {config['session_table']}")
if NEDS_HELDOUT and not NEDS_PRETRAIN:
    raise WorkflowError("config neds.heldout_sessions: every session is held out; none is left to pretrain on")


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
