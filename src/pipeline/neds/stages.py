"""The NEDS stages the Snakemake rules run (rules/neds.smk; one function per rule).

Every stage reads binned session files (:func:`pipeline.neds.data.load_session`), writes
its outputs atomically, and records the seed, the hash of the parameters it was given (its
own slice of the ``neds`` section: what changes its result) and the code version. Training stages keep resumable checkpoints in a per-job directory while
they run and delete it once their outputs are written; a checkpoint from a different
configuration (fingerprint mismatch) is ignored.

The baselines' and region classification's modules (scikit-learn) and the report's (pandas,
scipy) are imported by the stage that uses them: each rule's job imports this module, and
those imports cost the jobs that do not use them ~3 CPU-seconds of start-up each
(``python -X importtime``; bench/README.md, "Demo run").
"""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Mapping

import numpy as np

from pipeline.io.atomic import atomic_paths, write_json
from pipeline.neds.config import (
    BaselineParams,
    MaskingParams,
    ModelParams,
    NedsConfig,
    Ndt2Params,
    PoyoParams,
    TRANSFORMER_BASELINES,
    RegionParams,
    TrainingParams,
)
from pipeline.neds.data import SessionData, load_session, read_neuron_regions
from pipeline.neds.evaluate import chance_metrics, evaluate_model
from pipeline.neds import ndt2, poyo
from pipeline.neds.rrr import evaluate_multi_session_rrr
from pipeline.neds.search import best_draw
from pipeline.neds.train import (
    build_model,
    evaluated_tasks,
    load_model,
    model_for_finetuning,
    save_model,
    train_model,
)
from pipeline.provenance import code_version, config_hash
from pipeline.train.loop import select_device

log = logging.getLogger(__name__)


def configured_device(config: Mapping) -> str:
    """``neds.device`` of the whole workflow ``config`` (not a rule param: it does not change a
    job's result)."""
    return NedsConfig.from_mapping(config.get("neds")).device


def _provenance(params: dict, seed: int, **extra) -> dict:
    """``params``: name -> Params the stage was given."""
    return {"seed": seed, "config_hash": config_hash({k: v.to_dict() for k, v in params.items()}),
            "code_version": code_version(), **extra}


def _train(model, sessions: dict[str, SessionData], masking: MaskingParams, training: TrainingParams, seed: int,
           device: str, checkpoint_dir: str | Path, progress: bool) -> dict:
    """Train with ``masking.schemes``; the checkpoint fingerprint covers everything that
    changes the result (model, masking, training, seed, session files)."""
    fingerprint = config_hash({"architecture": model.architecture(), "masking": masking.to_dict(),
                               "training": training.to_dict(), "seed": seed,
                               "sessions": {s: d.path for s, d in sessions.items()}})
    return train_model(model, sessions, masking.schemes, masking, training, seed=seed, checkpoint_dir=checkpoint_dir,
                       device=select_device(device), fingerprint=fingerprint, progress=progress)


def run_single_session(binned_path: str | Path, variant: str, model_params: ModelParams, masking: MaskingParams,
                       training: TrainingParams, seed: int, *, device: str, model_path: str | Path,
                       metrics_path: str | Path, checkpoint_dir: str | Path, progress: bool = True) -> dict:
    """Train one single-session variant (Sec. 5.1; ``masking.schemes``: the variant's
    schemes, :meth:`pipeline.neds.config.NedsConfig.variant_schemes`) and evaluate it on the
    test trials. ``device``: auto, cpu or cuda."""
    data = load_session(binned_path)
    model = build_model(model_params, {data.session_id: data}, seed)
    summary = _train(model, {data.session_id: data}, masking, training, seed, device, checkpoint_dir, progress)
    metrics = evaluate_model(model, data.session_id, data, evaluated_tasks(masking.schemes))
    record = {"session": data.session_id, "model": f"neds_{variant}", "metrics": metrics, "training": summary,
              **_provenance({"model": model_params, "masking": masking, "training": training}, seed,
                            source=str(binned_path))}
    save_model(model_path, model, record=record)
    write_json(record, metrics_path)
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return record


def run_search_draw(binned_path: str | Path, variant: str, draw: int, model_params: ModelParams,
                    masking: MaskingParams, training: TrainingParams, seed: int, *, device: str,
                    model_path: str | Path, validation_path: str | Path, checkpoint_dir: str | Path,
                    progress: bool = True) -> dict:
    """One draw of the hyperparameter search (:mod:`pipeline.neds.search`): train like
    :func:`run_single_session` with the drawn sub-sections; validation scores only."""
    data = load_session(binned_path)
    model = build_model(model_params, {data.session_id: data}, seed)
    summary = _train(model, {data.session_id: data}, masking, training, seed, device, checkpoint_dir, progress)
    hyperparameters = {"model": model_params.to_dict(), "masking": masking.to_dict(), "training": training.to_dict()}
    record = {"session": data.session_id, "model": f"neds_{variant}", "draw": draw,
              "hyperparameters": hyperparameters, "training": summary,
              **_provenance({"model": model_params, "masking": masking, "training": training}, seed,
                            source=str(binned_path))}
    save_model(model_path, model, record=record)
    write_json(record, validation_path)
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return record


def _finished_draw(directory: Path, expected: dict) -> dict | None:
    """The record of a draw a previous attempt of its chunk finished in ``directory``, when
    it was trained with the ``expected`` provenance (parameters hash, seed, source, code
    version); else None."""
    validation, model = directory / "validation.json", directory / "model.pt"
    if not (validation.exists() and model.exists()):
        return None
    record = json.loads(validation.read_text())
    return record if all(record.get(key) == value for key, value in expected.items()) else None


def run_search_chunk(binned_path: str | Path, variant: str,
                     draws: list[tuple[int, ModelParams, MaskingParams, TrainingParams]], seed: int, *,
                     device: str, model_path: str | Path, validation_path: str | Path,
                     checkpoint_dir: str | Path, progress: bool = True) -> list[dict]:
    """Several draws of the search (``draws``: (draw, model, masking, training)) one after
    another, each exactly as :func:`run_search_draw`. Writes the list of their validation
    records and the best-validation draw's model file (byte-identical to that draw's own
    job's). A draw finished by an earlier, interrupted attempt is read back, not retrained."""
    checkpoint_dir = Path(checkpoint_dir)
    records = []
    for draw, model_params, masking, training in draws:
        directory = checkpoint_dir / f"draw{draw}"
        expected = _provenance({"model": model_params, "masking": masking, "training": training}, seed,
                               source=str(binned_path))
        record = _finished_draw(directory, {**expected, "draw": draw})
        if record is None:
            record = run_search_draw(binned_path, variant, draw, model_params, masking, training, seed,
                                     device=device, model_path=directory / "model.pt",
                                     validation_path=directory / "validation.json",
                                     checkpoint_dir=directory / "training", progress=progress)
        else:
            log.info("draw %d: finished by an earlier attempt (%s)", draw, directory)
        records.append(record)
    best = records[best_draw(records)]["draw"]
    with atomic_paths(model_path) as (tmp_model,):
        shutil.copyfile(checkpoint_dir / f"draw{best}" / "model.pt", tmp_model)
    write_json(records, validation_path)
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return records


def run_search_selection(binned_path: str | Path, draws: list[tuple[str | Path, str | Path]], *,
                         model_path: str | Path, metrics_path: str | Path) -> dict:
    """Pick the draw with the best validation score among ``draws`` ((model file, validation
    file) pairs) and evaluate only that model on the test trials. A validation file holds one
    draw's record (:func:`run_search_draw`) or a list of them (:func:`run_search_chunk`; the
    model file is then its best draw's)."""
    groups = []
    for _, validation in draws:
        loaded = json.loads(Path(validation).read_text())
        groups.append(loaded if isinstance(loaded, list) else [loaded])
    records = [record for group in groups for record in group]
    owners = [index for index, group in enumerate(groups) for _ in group]
    chosen = best_draw(records)
    # the overall best is also the best of its own file (first on ties in both), i.e. its model
    assert groups[owners[chosen]][best_draw(groups[owners[chosen]])] is records[chosen]
    data = load_session(binned_path)
    model, _ = load_model(draws[owners[chosen]][0])
    record = records[chosen]
    metrics = evaluate_model(model, data.session_id, data, evaluated_tasks(tuple(record["hyperparameters"]["masking"]
                                                                               ["schemes"])))
    log.info("selected draw %d of %d (validation score %.4f): %s", record["draw"], len(records),
             record["training"]["best_val_score"], record["hyperparameters"])
    result = {**record, "metrics": metrics,
              "search": {"selected_draw": record["draw"],
                         "validation_scores": {r["draw"]: r["training"]["best_val_score"] for r in records}}}
    save_model(model_path, model, record=result)
    write_json(result, metrics_path)
    return result


def run_pretraining(binned_paths: list[str | Path], model_params: ModelParams, masking: MaskingParams,
                    training: TrainingParams, seed: int, *, device: str, model_path: str | Path,
                    summary_path: str | Path, checkpoint_dir: str | Path, progress: bool = True) -> dict:
    """Pretrain the multimodal model on every training session (Sec. 5.2)."""
    sessions = {data.session_id: data for data in map(load_session, binned_paths)}
    model = build_model(model_params, sessions, seed)
    summary = _train(model, sessions, masking, training, seed, device, checkpoint_dir, progress)
    record = {"sessions": sorted(sessions), "training": summary,
              **_provenance({"model": model_params, "masking": masking, "training": training}, seed,
                            sources=[str(p) for p in binned_paths])}
    save_model(model_path, model, record=record)
    write_json(record, summary_path)
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return record


def run_finetuning(pretrained_path: str | Path, binned_path: str | Path, masking: MaskingParams,
                   training: TrainingParams, seed: int, *, device: str, model_path: str | Path,
                   metrics_path: str | Path, checkpoint_dir: str | Path, progress: bool = True) -> dict:
    """Fine-tune the pretrained model (its architecture) on a held-out session (new adapter)
    and evaluate it."""
    data = load_session(binned_path)
    model = model_for_finetuning(pretrained_path, data, seed)
    summary = _train(model, {data.session_id: data}, masking, training, seed, device, checkpoint_dir, progress)
    metrics = evaluate_model(model, data.session_id, data, evaluated_tasks(masking.schemes))
    record = {"session": data.session_id, "model": "neds_multi_session", "metrics": metrics, "training": summary,
              **_provenance({"masking": masking, "training": training}, seed, source=str(binned_path),
                            pretrained=str(pretrained_path))}
    save_model(model_path, model, record=record)
    write_json(record, metrics_path)
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return record


def run_baselines(binned_path: str | Path, params: BaselineParams, seed: int, out_path: str | Path) -> dict:
    """Linear baseline plus the chance predictor on the test trials of one session."""
    from pipeline.neds.baselines import evaluate_linear  # scikit-learn: see the module docstring

    data = load_session(binned_path)
    record = {"session": data.session_id, "linear": evaluate_linear(data, params, seed),
              "chance": chance_metrics(data), **_provenance({"baselines": params}, seed, source=str(binned_path))}
    write_json(record, out_path)
    return record


def run_rrr(binned_paths: list[str | Path], params: BaselineParams, seed: int, out_path: str | Path) -> dict:
    """Multi-session RRR (:mod:`pipeline.neds.rrr`) fitted on the training trials of every
    session; test metrics per session."""
    sessions = {data.session_id: data for data in map(load_session, binned_paths)}
    metrics = evaluate_multi_session_rrr(sessions, params, seed)
    for sid, scores in metrics.items():
        log.info("rrr %s: %s", sid, {k: round(v, 3) for k, v in scores.items() if isinstance(v, float)})
    record = {"sessions": metrics, **_provenance({"baselines": params}, seed, sources=[str(p) for p in binned_paths])}
    write_json(record, out_path)
    return record


def _baseline_record(data: SessionData, name: str, metrics: dict, summary: dict, params, seed: int, **sources) -> dict:
    """The model record of a transformer baseline: ``{"session", "model": name, "metrics",
    "baseline_training"}`` (no ``training`` key: it is not a NEDS training record)."""
    log.info("%s %s: %s", name, data.session_id, {k: round(v, 3) for k, v in metrics.items()})
    return {"session": data.session_id, "model": name, "metrics": metrics, "baseline_training": summary,
            **_provenance({name: params}, seed, **sources)}


def run_ndt2(binned_path: str | Path, params: Ndt2Params, seed: int, *, device: str, metrics_path: str | Path) -> dict:
    """Train the single-session NDT2 baseline (:mod:`pipeline.neds.ndt2`) on one session and
    write its test decoding metrics (:func:`_baseline_record`, model ``ndt2``)."""
    data = load_session(binned_path)
    model, summary = ndt2.train_ndt2(data, params, seed, select_device(device))
    record = _baseline_record(data, "ndt2", ndt2.evaluate_ndt2(model, data), summary, params, seed,
                              source=str(binned_path))
    write_json(record, metrics_path)
    return record


def run_poyo(binned_path: str | Path, params: PoyoParams, seed: int, *, device: str, metrics_path: str | Path) -> dict:
    """Train the single-session POYO+ baseline (:mod:`pipeline.neds.poyo`) on one session and
    write its test decoding metrics (:func:`_baseline_record`, model ``poyo``)."""
    data = load_session(binned_path)
    model, summary = poyo.train_poyo(data, params, seed, select_device(device))
    record = _baseline_record(data, "poyo", poyo.evaluate_poyo(model, data, seed), summary, params, seed,
                              source=str(binned_path))
    write_json(record, metrics_path)
    return record


#: Multi-session transformer baselines: name -> (pretrain, finetune, evaluate, save, load).
MULTI_SESSION_BASELINES = {
    "ndt2_multi_session": (ndt2.pretrain_ndt2, ndt2.finetune_ndt2, lambda model, data, seed: ndt2.evaluate_ndt2(model, data),
                           ndt2.save_ndt2, ndt2.load_ndt2),
    "poyo_multi_session": (poyo.pretrain_poyo, poyo.finetune_poyo, poyo.evaluate_poyo, poyo.save_poyo,
                           poyo.load_poyo),
}


def multi_session_params(baseline: str, mapping: Mapping | None):
    """The parameters of a multi-session baseline (``neds.<baseline>``) from its config mapping."""
    if baseline not in MULTI_SESSION_BASELINES:
        raise ValueError(f"unknown multi-session baseline {baseline!r} (known: {sorted(MULTI_SESSION_BASELINES)})")
    return TRANSFORMER_BASELINES[baseline].from_mapping(mapping)


def run_baseline_pretraining(baseline: str, binned_paths: list[str | Path], params, seed: int, *, device: str,
                             model_path: str | Path) -> dict:
    """Pretrain a multi-session baseline (``ndt2_multi_session``: self-supervised;
    ``poyo_multi_session``: supervised multi-task) on the training trials of every
    pretraining session; the model file holds the pretraining record."""
    pretrain, _, _, save, _ = MULTI_SESSION_BASELINES[baseline]
    sessions = {data.session_id: data for data in map(load_session, binned_paths)}
    model, summary = pretrain(sessions, params, seed, select_device(device))
    record = {"sessions": sorted(sessions), "model": baseline, "baseline_training": summary,
              **_provenance({baseline: params}, seed, sources=[str(p) for p in binned_paths])}
    save(model_path, model, record)
    return record


def run_baseline_finetuning(baseline: str, pretrained_path: str | Path, binned_path: str | Path, params, seed: int, *,
                            device: str, metrics_path: str | Path) -> dict:
    """Adapt a pretrained multi-session baseline to a held-out session (``params``: the
    pretrained architecture plus the fine-tuning epochs) and write its test decoding metrics."""
    _, finetune, evaluate, _, load = MULTI_SESSION_BASELINES[baseline]
    data, torch_device = load_session(binned_path), select_device(device)
    model = load(pretrained_path, params, torch_device)
    summary = finetune(model, data, seed, torch_device)
    record = _baseline_record(data, baseline, evaluate(model, data, seed), summary, params, seed,
                              source=str(binned_path), pretrained=str(pretrained_path))
    write_json(record, metrics_path)
    return record


def run_region_classification(models: Mapping[str, list[tuple[str, str]]], params: RegionParams, seed: int,
                              out_path: str | Path) -> dict:
    """``models``: name -> [(model file, binned session file), ...]; the neuron features of
    each name's sessions (:func:`pipeline.neds.region.region_features`: W_out rows and the
    W_in forward patterns over the session's training trials) are z-scored within their session and classified (Sec. 5.3;
    :mod:`pipeline.neds.region`). Single-session models (each session's own model: their
    embedding coordinates are unrelated across sessions) are classified within each session
    (one classifier per session, stratified folds inside it, predictions pooled). Fine-tuned
    multi-session models (their records name the pretrained model; one shared transformer, so
    the coordinates are comparable) are classified with one classifier for all sessions, folds
    grouped by session under ``name`` (issue 16's scheme) and stratified across the pooled
    neurons (the paper's scheme) under ``<name>_stratified``."""
    from pipeline.neds.region import classify_regions, region_features  # scikit-learn: see the module docstring

    results = {}
    for name, pairs in models.items():
        embeddings, acronyms, sessions, multi_session = [], [], [], []
        for model_path, binned_path in pairs:
            data = load_session(binned_path)
            model, saved = load_model(model_path)
            embeddings.append(region_features(model, data.session_id, tuple(saved["record"]["training"]["tasks"]),
                                              data.spikes[data.splits["train"]]))
            acronyms.append(data.regions)
            sessions.append(np.full(data.n_neurons, data.session_id))
            multi_session.append("pretrained" in saved["record"])
        if len(set(multi_session)) != 1:
            raise ValueError(f"{name}: mixes single-session and fine-tuned multi-session models")
        pooled, session_ids = (np.concatenate(embeddings), np.concatenate(acronyms)), np.concatenate(sessions)
        if multi_session[0]:
            results[name] = classify_regions(*pooled, params, seed, sessions=session_ids, scheme="grouped")
            results[f"{name}_stratified"] = classify_regions(*pooled, params, seed, sessions=session_ids)
        else:
            results[name] = classify_regions(*pooled, params, seed, sessions=session_ids, scheme="within_session")
    for name, result in results.items():
        log.info("%s: region classification %s", name, {k: v for k, v in result.items() if k != "confusion"})
    write_json({"models": results, **_provenance({"region": params}, seed)}, out_path)
    return results


def run_report(model_metrics: list[str | Path], baseline_metrics: list[str | Path], rrr_path: str | Path,
               training_records: list[str | Path], region_path: str | Path, binned_paths: Mapping[str, str | Path], tables: Mapping[str, tuple[str, str]],
               figures: Mapping[str, tuple[str, str]]) -> None:
    """Tables (``tables``: name -> (csv, md) for every name of
    :data:`pipeline.neds.report.REPORT_TABLES`) and
    figures (``figures``: ``region_confusion`` and ``validation_curves`` -> (pdf, png)) from
    the JSON records of the NEDS jobs. ``binned_paths``: evaluated session -> binned file
    (its region labels); only these sessions enter the comparison tables.
    ``training_records``: model records plus the pretraining summary."""
    from pipeline.neds.report import (  # pandas, scipy: see the module docstring
        comparison_table, paired_tests_table, per_region_table, per_variable_table, plot_confusion,
        plot_validation_curves, region_table, training_table, write_table,
    )


    def read(path):
        return json.loads(Path(path).read_text())

    rrr = read(rrr_path)["sessions"]
    models = [read(p) for p in model_metrics]
    baselines = [{**record, "rrr": rrr[record["session"]]} for record in map(read, baseline_metrics)]
    sessions = list(binned_paths)
    trained = []
    for path in training_records:
        record = read(path)
        trained.append(record if "model" in record else
                       {"session": "+".join(record["sessions"]), "model": "neds_pretraining", **record})
    region = read(region_path)["models"]
    comparison = comparison_table(models, baselines, sessions)
    where = f"test trials of the evaluated sessions {', '.join(sessions)}"
    write_table(comparison, *tables["comparison"],
                f"NEDS vs baselines ({where}): encoding bps, decoding accuracy, balanced accuracy, single-trial "
                "and PSTH R2; mean and s.e. over sessions")
    write_table(paired_tests_table(comparison), *tables["paired_tests"],
                "Paired per-session Wilcoxon tests against the reference NEDS model (Holm-adjusted per metric)")
    write_table(per_variable_table(models, baselines, sessions), *tables["encoding_per_variable"],
                f"Encoding bps from all behaviours and from each behaviour alone ({where})")
    regions = {session: read_neuron_regions(path) for session, path in binned_paths.items()}
    write_table(per_region_table(models, baselines, sessions, regions), *tables["encoding_per_region"],
                f"Encoding bps per brain region, mean and s.e. over the region's neurons ({where})")
    write_table(region_table(region), *tables["region"],
                "Brain-region classification from neuron embeddings (linear SVC; cross-validation scheme per row)")
    write_table(training_table(trained), *tables["training"],
                "NEDS training: epochs, selected and per-task best epochs, throughput, device")
    plot_confusion(region, *figures["region_confusion"])
    plot_validation_curves(trained, *figures["validation_curves"])
