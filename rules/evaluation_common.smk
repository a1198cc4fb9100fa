# Shared by rules/evaluate.smk: the resolved `evaluation` section and the input and
# output functions of the NLP4Neuro aggregation rules. No rule lives here.
from pipeline.stats.config import resolve_evaluation

try:
    EVALUATION = resolve_evaluation(config.get("evaluation"), DESIGN, list(FISH.index))
except ValueError as err:
    raise WorkflowError(str(err)) from None

TABLES = f"{RESULTS}/tables"
FIGURES = f"{RESULTS}/figures"
EVALUATION_REPORT = "NLP4Neuro decoders"
#: role -> (table file stem, figure file stem)
EVALUATION_OUTPUTS = {
    "model_comparison": ("table1_model_comparison", "fig2a_rmse_vs_seq_len"),
    "pretrained_vs_untrained": ("table2_pretrained_vs_untrained", "fig2b_pretrained_vs_untrained"),
    "embeddings": ("table3_embeddings", "fig3_embeddings"),
}
TRACE_FIGURE = "fig2c_test_traces"


def evaluation_jobs(role):
    """The training jobs of the experiment that plays ``role``; for Table 1 (``model_table``)
    only the arm it shows: pretrained jobs of models with pretrained weights."""
    experiment = EVALUATION.experiments.get(role)
    jobs = [job for job in DECODER_JOBS if job["experiment"] == experiment]
    if role == "model_table":
        jobs = [job for job in jobs
                if job["weights"] == "pretrained" or not DESIGN.models[job["model"]].has_pretrained_weights]
    return jobs


def evaluation_metrics(role):
    """metrics.json of every job of the role's experiment (the aggregate's inputs)."""
    return [f"{RESULTS}/nlp4neuro/{DECODER_RUN.format(**job)}/metrics.json" for job in evaluation_jobs(role)]


def evaluation_settings(role):
    """The rule's params: experiment name, model order (as in the config), alpha, bootstrap
    resamples and seed (the root seed); Table 1's experiment and model order with Fig. 2a."""
    name = EVALUATION.experiments[role]
    settings = {"experiment": name, "models": list(DESIGN.experiments[name].models), "alpha": EVALUATION.alpha,
                "resamples": EVALUATION.bootstrap_resamples, "seed": config["seed"]}
    if role == "model_comparison":
        table = EVALUATION.experiments["model_table"]
        settings.update(table_experiment=table, table_models=list(DESIGN.experiments[table].models))
    return settings


def trace_predictions():
    """Fig. 2c inputs: model -> predictions.h5 of its runs on the trace fish at the trace
    window length (model_comparison experiment); under blocked cross-validation the last
    fold's (its test block ends the recording, like the single split's)."""
    by_model = {}
    jobs = evaluation_jobs("model_comparison")
    last_fold = max((job["fold"] for job in jobs), key=lambda f: parse_fold_wildcard(f) or 0, default="")
    for job in jobs:
        if (job["fish"] == EVALUATION.trace_fish and job["seq_len"] == EVALUATION.trace_seq_len
                and job["fold"] == last_fold):
            by_model.setdefault(job["model"], []).append(
                f"{RESULTS}/nlp4neuro/{DECODER_RUN.format(**job)}/predictions.h5"
            )
    return by_model


def table_file(role, ext, caption=None):
    """results/tables/<stem>.<ext>; the CSV (with ``caption``) goes into the HTML report."""
    path = f"{TABLES}/{EVALUATION_OUTPUTS[role][0]}.{ext}"
    if caption is None:
        return path
    return report(path, caption=caption, category=EVALUATION_REPORT, subcategory="Tables")


def figure_file(stem, ext, caption=None):
    """results/figures/<stem>.<ext>; the PNG (with ``caption``) goes into the HTML report."""
    path = f"{FIGURES}/{stem}.{ext}"
    if caption is None:
        return path
    return report(path, caption=caption, category=EVALUATION_REPORT, subcategory="Figures")


def evaluation_targets():
    """The tables and figures of every role with an experiment (rule all)."""
    targets = []
    for role, (table, figure) in EVALUATION_OUTPUTS.items():
        if role in EVALUATION.experiments:
            targets += expand(f"{TABLES}/{table}.{{ext}}", ext=["csv", "tex", "md"])
            targets += expand(f"{FIGURES}/{figure}.{{ext}}", ext=["pdf", "png"])
    if "model_comparison" in EVALUATION.experiments and trace_predictions():
        targets += expand(f"{FIGURES}/{TRACE_FIGURE}.{{ext}}", ext=["pdf", "png"])
    return targets
