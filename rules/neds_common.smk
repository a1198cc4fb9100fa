# NEDS constants and input functions (rules in rules/neds.smk): the configured variants,
# held-out and pretraining sessions, region-classification inputs and the final targets.

from pipeline.neds.config import TRANSFORMER_BASELINES, MaskingParams, NedsConfig
from pipeline.chunks import chunk_items, n_chunks
from pipeline.neds.search import draw_sections
from pipeline.neds.report import REPORT_FIGURES, REPORT_TABLES

NEDS = PARAMS["neds"]
NEDS_CONFIG = NedsConfig.from_mapping(NEDS)
NEDS_VARIANTS = list(NEDS_CONFIG.all_variants)
NEDS_HELDOUT = list(NEDS["heldout_sessions"])
NEDS_PRETRAIN = [session for session in SESSIONS.index if session not in NEDS_HELDOUT]
# sessions every method is scored on in the comparison tables: the held-out ones (paper), or
# all sessions when there is no multi-session model
NEDS_EVALUATED = NEDS_HELDOUT or list(SESSIONS.index)
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


NEDS_SEARCH_DRAWS = NEDS_CONFIG.search.draws
# draws per job: 1 = rule neds_search_draw (a job per draw), K > 1 = rule neds_search_chunk
NEDS_SEARCH_PER_JOB = NEDS_CONFIG.search.draws_per_job
# transformer baselines (NDT2, POYO+); the multi-session ones only exist with held-out sessions
NEDS_TRANSFORMER_BASELINES = [name for name in NEDS_CONFIG.transformer_baselines
                              if NEDS_HELDOUT or not name.endswith("_multi_session")]
NEDS_MULTI_SESSION_BASELINES = [name for name in TRANSFORMER_BASELINES if name.endswith("_multi_session")]


def neds_baseline_pretraining_params(baseline):
    """A multi-session baseline's section without the fields only its fine-tuning uses."""
    finetuning_only = TRANSFORMER_BASELINES[baseline].FINETUNING_FIELDS
    return {key: value for key, value in NEDS[baseline].items() if key not in finetuning_only}


def neds_transformer_baseline_metrics():
    """metrics.json of every configured transformer baseline on the evaluated sessions
    (single-session ones) or the held-out ones (multi-session ones: the same sessions)."""
    return [f"{RESULTS}/neds/{name}/{session}/metrics.json" for name in NEDS_TRANSFORMER_BASELINES
            for session in NEDS_EVALUATED]


@functools.cache  # called by each chunk job's seed param and each of its draws' params
def neds_search_seed(variant, session):
    return unit_seed("neds_search", variant, session)


def neds_search_draw_params(wildcards):
    """Draw ``wildcards.draw``'s model / masking (the variant's schemes) / training sub-sections."""
    return _neds_search_draw(wildcards.variant, wildcards.session, int(wildcards.draw))


@functools.cache
def _neds_variant_masking_params(variant):
    return MaskingParams.from_mapping(neds_variant_masking(variant))


@functools.cache  # three params of each of the (thousands of, at paper scale) draw jobs read it
def _neds_search_draw(variant, session, draw):
    return draw_sections(NEDS_CONFIG.search, NEDS_CONFIG.model, _neds_variant_masking_params(variant),
                         NEDS_CONFIG.training, neds_search_seed(variant, session), draw)


@per_job
def neds_search_chunk_params(wildcards):
    """The draws of chunk ``wildcards.chunk`` (:func:`pipeline.chunks.chunk_items`), each
    with its model / masking / training sub-sections: the same values as its single-draw job."""
    return [{"draw": draw, **_neds_search_draw(wildcards.variant, wildcards.session, draw)}
            for draw in chunk_items(NEDS_SEARCH_DRAWS, NEDS_SEARCH_PER_JOB, int(wildcards.chunk))]


def neds_search_chunk_resources():
    """The training resources with the time limit of one draw times the draws of a chunk."""
    per_draw = NEDS_TRAINING_RESOURCES["runtime"]
    return {**NEDS_TRAINING_RESOURCES,
            "runtime": lambda wildcards, attempt: per_draw(wildcards, attempt) * len(
                chunk_items(NEDS_SEARCH_DRAWS, NEDS_SEARCH_PER_JOB, int(wildcards.chunk)))}


def neds_search_draws(wildcards, name):
    """``name`` (model.pt / validation.json) of every draw job (``draws_per_job`` 1) or chunk
    job of a (variant, session); a chunk's model.pt is its best draw's model."""
    job = "draw" if NEDS_SEARCH_PER_JOB == 1 else "chunk"
    return [f"{RESULTS}/neds/search/{wildcards.variant}/{wildcards.session}/{job}{index}/{name}"
            for index in range(n_chunks(NEDS_SEARCH_DRAWS, NEDS_SEARCH_PER_JOB))]


def neds_linear_params():
    """The baselines keys of the per-session linear baseline."""
    return {key: NEDS["baselines"][key] for key in ("ridge_alphas", "cv_folds", "rate_floor")}


def neds_rrr_params():
    """The baselines keys of the multi-session RRR."""
    return {key: NEDS["baselines"][key] for key in ("encoder_rank", "decoder_rank", "rrr_l2", "rrr_iterations", "rate_floor")}


def neds_variant_masking(variant):
    """The masking sub-section with the variant's schemes (a param of its training jobs)."""
    return {**NEDS["masking"], "schemes": list(NEDS_CONFIG.variant_schemes(variant))}


def neds_binned(session):
    return f"{RESULTS}/ibl/binned/{session}.h5"


def neds_region_models():
    """Model name -> (model files, binned files) whose neuron embeddings are classified: the
    held-out sessions (all sessions without multi-session training), fine-tuned and single-session."""
    sessions = NEDS_EVALUATED
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


NEDS_TABLES = list(REPORT_TABLES)
NEDS_FIGURES = list(REPORT_FIGURES)
NEDS_REPORT = "NEDS"


def neds_report_file(kind, name, ext):
    """results/{tables,figures}/neds_<name>.<ext>; the CSVs and PNGs go into the HTML report
    with their caption report/neds_<name>.rst."""
    path = f"{RESULTS}/{kind}/neds_{name}.{ext}"
    if ext not in ("csv", "png"):
        return path
    return report(path, caption=f"../report/neds_{name}.rst", category=NEDS_REPORT,
                  subcategory="Tables" if kind == "tables" else "Figures")


def neds_targets():
    """The NEDS tables and figures (everything else is upstream of them)."""
    return expand(f"{RESULTS}/tables/neds_{{table}}.{{ext}}", table=NEDS_TABLES, ext=["csv", "md"]) + expand(
        f"{RESULTS}/figures/neds_{{figure}}.{{ext}}", figure=NEDS_FIGURES, ext=["pdf", "png"]
    )
