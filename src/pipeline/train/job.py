"""One NLP4Neuro training job: {experiment} x {fish} x {model} x {weights} x {embedding} x
{seq_len} x {run} -> checkpoint, test predictions, metrics (the ``train_decoder`` rule), or
several runs of it one after another (``nlp4neuro.runs_per_job`` > 1, the
``train_decoder_runs<a>to<b>`` rules; :func:`run_decoding_runs`), each run with the same outputs.

Output contract (documented in docs/architecture.md):

- ``model.pt``: the best-validation weights (trainable tensors + buffers), the model spec,
  the per-neuron normaliser and the split; loadable with ``torch.load(weights_only=True)``.
- ``predictions.h5``: ``test/window_predictions`` (windows, seq_len, 6) rad,
  ``test/frame_predictions`` and ``test/frame_targets`` (frames, 6) rad (overlapping windows
  averaged), ``test/baseline_frame_predictions/{ridge,stimulus}`` (frames, 6) rad, ``test/frame_index`` (frames,) recording volume index, ``test/frame_times_s``.
- ``metrics.json``: the metrics of :mod:`pipeline.train.metrics`, the baselines' metrics on the
  same windows (:mod:`pipeline.train.baselines`: training mean, ridge, stimulus only), the training history, wall time, throughput, peak memory and
  parameter counts, and provenance (inputs' SHA-256, config hash, code version, seed, device).
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch

from pipeline.data.windows import (
    average_overlapping_windows,
    load_recording,
    make_splits,
)
from pipeline.io.atomic import atomic_paths, write_json
from pipeline.io.h5 import write_dataset
from pipeline.memory import peak_rss_mb
from pipeline.models.catalog import ModelSpec, build_decoder, parameter_counts
from pipeline.provenance import code_version, describe_file
from pipeline.train.baselines import baseline_metrics, stimulus_features
from pipeline.train.checkpoint import CHECKPOINT_EVERY_S, save_checkpoint
from pipeline.train.config import TrainingParams
from pipeline.train.loop import load_trainable_state, predict, select_device, train_decoder
from pipeline.train.metrics import decoding_metrics

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DecodingJob:
    """Everything that identifies one training job (all of it goes into metrics.json)."""

    experiment: str
    fish: str
    model: str
    weights: str  # pretrained | untrained | scratch_full (pipeline.models.language.WEIGHTS)
    embedding: str  # linear | sinusoidal | relative | laplacian | sparse_ae
    seq_len: int  # window length (imaging volumes)
    run: int  # repetition index; the seed derives from it
    seed: int
    split_fractions: tuple[float, float, float]
    signal: str = "dff"  # neural file dataset used as input
    cv_folds: int = 0  # 0: one chronological split; k >= 2: blocked k-fold cross-validation
    fold: int = 0  # this job's fold (0 .. cv_folds - 1) under blocked cross-validation


def peak_memory_mb(device: torch.device) -> dict[str, float]:
    """Peak resident memory of this process (MB) and, on CUDA, the peak allocated GPU memory (MB)."""
    peaks = {"peak_rss_mb": peak_rss_mb()}
    if device.type == "cuda":
        peaks["peak_gpu_allocated_mb"] = torch.cuda.max_memory_allocated(device) / 2**20
    return peaks


def run_decoding_job(
    neural_path: str | Path,
    behavior_path: str | Path,
    job: DecodingJob,
    spec: ModelSpec,
    training: TrainingParams,
    embedding_params: dict,
    checkpoint_dir: str | Path,
    model_path: str | Path,
    predictions_path: str | Path,
    metrics_path: str | Path,
    config_hash: str = "",
    device: str = "auto",
    checkpoint_every_s: float = CHECKPOINT_EVERY_S,
) -> dict:
    """Train, select, evaluate and write the three outputs atomically; returns the metrics.

    The checkpoint directory survives failures and interruptions (a rerun with the same
    ``config_hash`` resumes from it; one with another discards it) and is removed once the
    outputs are written. ``checkpoint_every_s``: wall-clock interval of mid-epoch checkpoints.
    """
    started = time.perf_counter()
    torch_device = select_device(device)
    recording = load_recording(neural_path, behavior_path, job.signal)
    stimulus = stimulus_features(behavior_path)
    splits = make_splits(recording, job.split_fractions, job.seq_len, job.cv_folds, job.fold)
    recording = recording.without_activity()  # the splits hold the normalised copy
    log.info(
        "%s: %d frames x %d neurons; windows train/val/test %d/%d/%d (seq_len %d); device %s",
        job.fish, recording.n_frames, recording.n_neurons, len(splits.train), len(splits.val),
        len(splits.test), job.seq_len, torch_device,
    )
    model = build_decoder(spec, recording.n_neurons, job.weights, job.embedding, embedding_params, job.seed,
                          torch_device)
    embedding = getattr(model, "embedding", None)
    if embedding is not None:
        embedding.fit(splits.train.inputs.numpy(), job.seed)
    result = train_decoder(model, spec.kind, splits, training, job.seed, checkpoint_dir, torch_device,
                           fingerprint=config_hash, checkpoint_every_s=checkpoint_every_s)

    to_rad = splits.tail_normaliser.inverse
    predicted = to_rad(predict(model, splits.test, training.eval_batch_size, torch_device))
    target = to_rad(splits.test.targets[splits.test.frame_index(torch.arange(len(splits.test)))].numpy())
    starts = splits.test.window_starts.numpy()  # windows over invalid volumes are not in the block's windows
    metrics = decoding_metrics(predicted, target, starts)
    baselines, baseline_predictions = baseline_metrics(splits, stimulus)
    mean_predictor = baselines["mean_predictor"]

    (frames,) = splits.frame_segments["test"]  # one contiguous block in both split schemes
    summary = {
        "job": {**job.__dict__, "split_fractions": list(job.split_fractions)},
        "model_spec": spec.to_dict(),
        "training": training.to_dict(),
        "embedding_params": dict(embedding_params),
        "test": metrics,
        "mean_predictor_test": {k: mean_predictor[k] for k in ("rmse", "frame_rmse", "per_segment_rmse")},
        "baselines_test": baselines,
        "history": result.history,
        "best_epoch": result.best_epoch,
        "best_val_mse": result.best_val_loss,
        "resumed_from_epoch": result.resumed_from_epoch,
        "n_neurons": recording.n_neurons,
        "n_windows": {"train": len(splits.train), "val": len(splits.val), "test": len(splits.test)},
        "frame_ranges": {name: [[r.start, r.stop] for r in segments] for name, segments in splits.frame_segments.items()},
        "performance": {
            "wall_time_s": time.perf_counter() - started,
            "train_windows_per_s": result.train_windows_per_s,
            **peak_memory_mb(torch_device),
            **parameter_counts(model),
        },
        "device": str(torch_device),
        # language models: backbone dtype and optimiser (the scratch_full arm's depend on the device)
        **({"precision": model.precision} if hasattr(model, "precision") else {}),
        "provenance": {
            "neural_file": describe_file(neural_path),
            "behavior_file": describe_file(behavior_path),
            "config_hash": config_hash,
            "code_version": code_version(),
        },
    }
    best_state = torch.load(Path(checkpoint_dir) / "best.pt", map_location="cpu", weights_only=True)["model"]
    with atomic_paths(model_path, predictions_path, metrics_path) as (tmp_model, tmp_predictions, tmp_metrics):
        save_checkpoint(
            tmp_model, model=best_state, model_spec=spec.to_dict(), job=summary["job"],
            embedding_params=dict(embedding_params),
            activity_mean=torch.from_numpy(splits.activity_normaliser.mean),
            activity_std=torch.from_numpy(splits.activity_normaliser.std),
            tail_mean_rad=torch.from_numpy(splits.tail_normaliser.mean),
            tail_std_rad=torch.from_numpy(splits.tail_normaliser.std),
            n_neurons=recording.n_neurons,
        )
        with h5py.File(tmp_predictions, "w") as f:
            f.attrs.update(fish=job.fish, model=job.model, seq_len=job.seq_len, config_hash=config_hash)
            write_dataset(f, "test/window_predictions", predicted, "rad",
                          "predicted tail angles per test window (windows, seq_len, 6); window i starts at "
                          "volume window_first_frame[i]")
            write_dataset(f, "test/window_first_frame", frames.start + starts, "index",
                          "recording volume where each test window starts (windows over invalid volumes left out)")
            write_dataset(f, "test/frame_predictions", average_overlapping_windows(predicted, starts, len(frames)), "rad",
                          "predictions averaged over the overlapping windows of each frame (frames, 6); NaN: in no window")
            write_dataset(f, "test/frame_targets", average_overlapping_windows(target, starts, len(frames)), "rad",
                          "true tail angles per test frame (frames, 6); NaN: in no window (invalid volume or next to one)")
            for name in sorted(set(baseline_predictions) - {"mean_predictor"}):  # ridge, stimulus (if any)
                write_dataset(f, f"test/baseline_frame_predictions/{name}",
                              average_overlapping_windows(baseline_predictions[name], starts, len(frames)), "rad",
                              f"{name} baseline (pipeline.train.baselines) averaged like frame_predictions (frames, 6)")
            write_dataset(f, "test/frame_index", np.arange(frames.start, frames.stop), "index",
                          "imaging-volume index of each test frame in the recording")
            write_dataset(f, "test/frame_times_s", recording.frame_times_s[frames.start : frames.stop], "s",
                          "time of each test frame (first plane)")
        write_json(summary, tmp_metrics)
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    log.info("test RMSE %.4f (mean predictor %.4f, ridge %.4f, stimulus only %.4f), tail-sum r %.3f (ridge %.3f)",
             metrics["rmse"], mean_predictor["rmse"], baselines["ridge"]["rmse"], baselines["stimulus"]["rmse"],
             metrics["tail_sum_pearson_r"], baselines["ridge"]["tail_sum_pearson_r"])
    return summary


#: The outputs of one run, in the order of :func:`run_decoding_job`'s paths.
RUN_OUTPUTS = ("model.pt", "predictions.h5", "metrics.json")


def _finished_run(staged: list[Path], config_hash: str) -> dict | None:
    """The metrics of a run an earlier attempt finished (its three staged outputs exist and
    were written with ``config_hash``), else None. Staged outputs of other params are deleted
    with a warning (the config changed since that attempt)."""
    if not all(path.exists() for path in staged):
        return None
    summary = json.loads(staged[-1].read_text())
    saved = summary["provenance"]["config_hash"]
    if saved == config_hash:
        return summary
    log.warning("discarding %s: written by a job with params hash %r, this job's is %r; the run trains afresh",
                staged[-1].parent, saved, config_hash)
    for path in staged:
        path.unlink()
    return None


def run_decoding_runs(
    neural_path: str | Path,
    behavior_path: str | Path,
    jobs: list[DecodingJob],
    spec: ModelSpec,
    training: TrainingParams,
    embedding_params: dict,
    config_hashes: list[str],
    checkpoint_dir: str | Path,
    outputs: list[tuple[str | Path, str | Path, str | Path]],
    device: str = "auto",
    checkpoint_every_s: float = CHECKPOINT_EVERY_S,
) -> list[dict]:
    """Several runs (``jobs``: the same experiment, fish, model, weights, embedding, seq_len
    and fold; their seeds differ) one after another, each exactly as :func:`run_decoding_job`
    with its own ``config_hashes`` entry, so each run's outputs equal its single-run job's.
    ``outputs``: (model.pt, predictions.h5, metrics.json) of each run. Returns the metrics.

    Run r trains in ``checkpoint_dir/run<r>/training`` and writes its outputs to
    ``checkpoint_dir/run<r>/finished`` (not outputs of the job, so they survive a failed
    attempt: Snakemake deletes a failed job's outputs); once every run is finished they are
    moved to ``outputs`` and ``checkpoint_dir`` is removed. A rerun after an interruption
    reads back the runs an earlier attempt finished with the same params hash, resumes the
    interrupted run from its checkpoint and trains the rest.
    """
    if not len(jobs) == len(config_hashes) == len(outputs):
        raise ValueError(f"{len(jobs)} jobs, {len(config_hashes)} params hashes, {len(outputs)} output triples")
    checkpoint_dir = Path(checkpoint_dir)
    summaries, staged_runs = [], []
    for job, config_hash in zip(jobs, config_hashes):
        directory = checkpoint_dir / f"run{job.run}"
        staged = [directory / "finished" / name for name in RUN_OUTPUTS]
        summary = _finished_run(staged, config_hash)
        if summary is None:
            summary = run_decoding_job(neural_path, behavior_path, job, spec, training, embedding_params,
                                       directory / "training", *staged, config_hash=config_hash, device=device,
                                       checkpoint_every_s=checkpoint_every_s)
        else:
            log.info("run %d: finished by an earlier attempt (%s)", job.run, staged[-1].parent)
        summaries.append(summary)
        staged_runs.append(staged)
    for staged, finals in zip(staged_runs, outputs):
        for path, final in zip(staged, finals):
            Path(final).parent.mkdir(parents=True, exist_ok=True)
            shutil.move(path, final)
    shutil.rmtree(checkpoint_dir, ignore_errors=True)
    return summaries


def load_trained_decoder(model_path: str | Path, device: torch.device | str = "cpu") -> tuple[torch.nn.Module, dict]:
    """Rebuild the decoder a training job saved in ``model.pt`` (same spec, weights option,
    embedding and seed, so frozen parts such as a pretrained base are restored too) and load
    its best weights. Returns ``(model in eval mode, checkpoint dict)``."""
    checkpoint = torch.load(model_path, map_location="cpu", weights_only=True)
    job = checkpoint["job"]
    spec = ModelSpec.from_mapping(checkpoint["model_spec"])
    model = build_decoder(spec, int(checkpoint["n_neurons"]), job["weights"], job["embedding"],
                          checkpoint["embedding_params"], int(job["seed"]), device)
    load_trainable_state(model, checkpoint["model"])
    return model.to(device).eval(), checkpoint
