"""The salience stage: one trained decoder (a training job's ``model.pt``) -> salience maps
on a split of its fish, top-k neurons with positions and regions, and, for a synthetic fish,
precision@k of the planted driver neurons (rule ``salience``).

Output ``salience.h5`` (units: rad per z-scored activity unit):
``salience/global`` (neurons,), ``salience/global_by_segment`` (6, neurons),
``salience/signed_tail_sum`` (neurons,), ``salience/moment`` (frames, neurons);
``frames/index`` (frames,) volume index, ``frames/tail_sum_rad`` (frames,) true tail sum,
``frames/predicted_tail_sum_rad`` (frames,) window-averaged prediction;
``neurons/position_um`` (neurons, 3), ``neurons/region`` (neurons,),
``neurons/driver_side`` (neurons,; "left"/"right"/"" where the truth is known);
``top_k/index`` (k,) most salient first; attrs: split, top_k, model, fish, seq_len,
precision_at_k and chance_at_k (NaN without truth), config_hash, and the ablation of paper
App. A.13 (:func:`replacement_ablation`): ``ablation_rmse_intact``, ``ablation_rmse_top_k``,
``ablation_rmse_random_k`` (mean over ``ablation_draws`` draws), ``ablation_rise_ratio``;
``pca/{intact, top_k_replaced, random_k_replaced}`` (test windows, 2) and
``pca/explained_variance_ratio`` (2,) (:func:`activation_pca`).
"""

from __future__ import annotations

import logging
from pathlib import Path

import h5py
import numpy as np
import torch

from pipeline.data.windows import (
    WindowSet,
    average_overlapping_windows,
    load_recording,
    make_splits,
)
from pipeline.io.atomic import atomic_paths
from pipeline.io.h5 import write_dataset
from pipeline.salience.gradients import combine_blocks, input_gradient_salience
from pipeline.salience.ranking import precision_at_k, top_k
from pipeline.salience.validation import planted_driver_sides
from pipeline.seeding import derive_seed
from pipeline.train.job import load_trained_decoder
from pipeline.train.loop import predict, select_device
from pipeline.train.metrics import decoding_metrics

log = logging.getLogger(__name__)

ABLATION_DRAWS = 10  # random draws of donors / of the k random neurons in the ablation


def replace_neurons(activity: np.ndarray, chosen: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A copy of ``activity`` (frames, neurons) whose ``chosen`` columns hold the activity of
    as many other neurons drawn at random (App. A.13): without replacement, or with
    replacement when fewer other neurons than ``chosen`` exist (small recordings)."""
    pool = np.setdiff1d(np.arange(activity.shape[1]), chosen)
    if pool.size == 0:
        raise ValueError(f"no neuron outside the {len(chosen)} replaced ones to draw donors from")
    donors = rng.choice(pool, size=len(chosen), replace=pool.size < len(chosen))
    replaced = activity.copy()
    replaced[:, chosen] = activity[:, donors]
    return replaced


@torch.no_grad()
def decoder_representation(model, windows: WindowSet, device, batch_size: int = 64) -> np.ndarray:
    """(windows, features) the decoder's last representation before its linear readout at the
    last step of each window: the input of ``head`` (LSTM, language models) or the reservoir
    state (reservoir computer)."""
    captured = []
    hook = None
    if hasattr(model, "head"):
        hook = model.head.register_forward_hook(lambda module, args, output: captured.append(args[0][:, -1]))
    try:
        for start in range(0, len(windows), batch_size):
            inputs, _ = windows.batch(torch.arange(start, min(start + batch_size, len(windows))))
            inputs = inputs.to(device)
            if hook is None:
                captured.append(model.states(inputs)[:, -1])
            else:
                model(inputs)
    finally:
        if hook is not None:
            hook.remove()
    return torch.cat(captured).float().cpu().numpy()


def activation_pca(model, splits, neurons: np.ndarray, seed: int, device) -> dict[str, np.ndarray]:
    """App. A.13 PCA: the decoder's representation (:func:`decoder_representation`) of the
    test windows with intact activity, with the top-k salient neurons replaced, and with k
    random neurons replaced (one seeded draw each), projected on the first two principal
    components of the intact representation. Returns (windows, 2) per condition and the
    explained-variance ratio (2,) of the intact fit."""
    rng = np.random.default_rng(seed)
    test = splits.test
    inputs = test.inputs.numpy()
    conditions = {"intact": inputs, "top_k_replaced": replace_neurons(inputs, np.asarray(neurons), rng),
                  "random_k_replaced": replace_neurons(inputs, rng.choice(inputs.shape[1], len(neurons),
                                                                          replace=False), rng)}
    features = {name: decoder_representation(model, test.with_inputs(activity), device)
                for name, activity in conditions.items()}
    mean = features["intact"].mean(axis=0)
    _, singular, components = np.linalg.svd(features["intact"] - mean, full_matrices=False)
    explained = singular**2 / max(float((singular**2).sum()), 1e-30)
    projected = {name: ((values - mean) @ components[:2].T).astype(np.float32) for name, values in features.items()}
    return {**projected, "explained_variance_ratio": explained[:2].astype(np.float32)}


def replacement_ablation(model, splits, neurons: np.ndarray, seed: int, device,
                         draws: int = ABLATION_DRAWS) -> dict:
    """Paper App. A.13 ablation on the held-out test block: the activity of ``neurons`` (the
    top-k salient) is replaced by that of k other neurons drawn at random (donors), and the
    test RMSE (Eq. 15, rad) compared with replacing k random neurons the same way. Returns
    ``ablation_rmse_intact``, ``ablation_rmse_top_k``, ``ablation_rmse_random_k`` (each
    replaced condition averaged over ``draws`` seeded draws) and ``ablation_rise_ratio`` =
    (top_k - intact) / (random_k - intact)."""
    rng = np.random.default_rng(seed)
    test = splits.test
    inputs, n_neurons, k = test.inputs.numpy(), test.inputs.shape[1], len(neurons)
    target = splits.tail_normaliser.inverse(test.targets[test.frame_index(np.arange(len(test)))].numpy())

    def rmse(activity):
        predicted = predict(model, test.with_inputs(activity), 64, device)
        return decoding_metrics(splits.tail_normaliser.inverse(predicted), target, test.window_starts.numpy())["rmse"]

    intact = rmse(inputs)
    top = float(np.mean([rmse(replace_neurons(inputs, np.asarray(neurons), rng)) for _ in range(draws)]))
    random_k = float(np.mean([rmse(replace_neurons(inputs, rng.choice(n_neurons, size=k, replace=False), rng))
                              for _ in range(draws)]))
    rise_random = random_k - intact
    ratio = (top - intact) / rise_random if rise_random > 0 else float("nan")
    return {"ablation_rmse_intact": intact, "ablation_rmse_top_k": top, "ablation_rmse_random_k": random_k,
            "ablation_rise_ratio": ratio}


def run_salience_job(
    model_path: str | Path,
    neural_path: str | Path,
    behavior_path: str | Path,
    out_path: str | Path,
    split: str = "test",
    k: int = 20,
    truth_path: str | Path | None = None,
    match_distance_px: float = 3.0,
    config_hash: str = "",
    device: str = "auto",
) -> dict:
    """Compute and write the salience of one trained decoder; returns the summary attrs."""
    torch_device = select_device(device)
    model, checkpoint = load_trained_decoder(model_path, torch_device)
    job = checkpoint["job"]
    recording = load_recording(neural_path, behavior_path, job["signal"])
    splits = make_splits(recording, tuple(job["split_fractions"]), int(job["seq_len"]))
    blocks = ("train", "val", "test") if split == "all" else (split,)
    maps = combine_blocks([input_gradient_salience(model, splits[b], splits.tail_normaliser.std, device=torch_device)
                           for b in blocks])
    ranked = top_k(maps.global_salience, k)
    sides = planted_driver_sides(neural_path, truth_path, match_distance_px) if truth_path else np.full(recording.n_neurons, "")
    if truth_path:
        precision, chance = precision_at_k(ranked, sides != "", k)
    else:
        precision, chance = float("nan"), float("nan")
    predicted_tail_sum = np.concatenate([
        average_overlapping_windows(splits.tail_normaliser.inverse(predict(model, splits[b], 64, torch_device)),
                                    splits[b].window_starts.numpy(), splits[b].n_frames).sum(axis=1)
        for b in blocks])
    frames = range(splits.frame_segments[blocks[0]][0].start, splits.frame_segments[blocks[-1]][-1].stop)
    if len(ranked) >= recording.n_neurons:
        raise ValueError(f"{neural_path}: top_k = {len(ranked)} leaves no other neuron of {recording.n_neurons} for "
                         "the App. A.13 replacement ablation; lower salience.top_k")
    ablation = replacement_ablation(model, splits, ranked, derive_seed(int(job["seed"]), "salience-ablation"),
                                    torch_device)
    pca = activation_pca(model, splits, ranked, derive_seed(int(job["seed"]), "salience-pca"), torch_device)
    attrs = {"split": split, "top_k": len(ranked), "model": job["model"], "fish": job["fish"],
             "seq_len": int(job["seq_len"]), "run": int(job["run"]), "precision_at_k": precision,
             "chance_at_k": chance, "config_hash": config_hash, **ablation}
    with atomic_paths(out_path) as (tmp,), h5py.File(tmp, "w") as f:
        f.attrs.update(attrs)
        unit = "rad per z-unit"
        write_dataset(f, "salience/global", maps.global_salience, unit, "global salience G(n), paper Eq. 21")
        write_dataset(f, "salience/global_by_segment", maps.global_by_segment, unit, "G per tail segment (6, neurons)")
        write_dataset(f, "salience/signed_tail_sum", maps.signed_tail_sum, unit,
                      "frame-averaged signed gradient of the predicted tail sum (>0: pushes to positive angles)")
        write_dataset(f, "salience/moment", maps.moment, unit, "moment-to-moment salience M(n, t) (frames, neurons)")
        write_dataset(f, "frames/index", np.arange(frames.start, frames.stop), "index", "volume index of each frame")
        write_dataset(f, "frames/tail_sum_rad", np.where(recording.valid_frames[frames.start : frames.stop],
                                                          recording.tail_angles[frames.start : frames.stop].sum(axis=1),
                                                          np.nan), "rad",
                      "true tail sum")
        write_dataset(f, "frames/predicted_tail_sum_rad", predicted_tail_sum, "rad",
                      "predicted tail sum, overlapping windows averaged")
        write_dataset(f, "neurons/position_um", recording.neuron_position_um, "um", "(x, y, z)")
        write_dataset(f, "neurons/region", recording.neuron_region, "label", "anatomical region")
        write_dataset(f, "neurons/driver_side", sides, "label", "planted driver side from the synthetic truth ('' = not a driver / unknown)")
        write_dataset(f, "top_k/index", ranked, "index", "neurons by decreasing global salience")
        for name in ("intact", "top_k_replaced", "random_k_replaced"):
            write_dataset(f, f"pca/{name}", pca[name], "a.u.",
                          f"decoder representation of the test windows ({name}) on PC1, PC2 of the intact one")
        write_dataset(f, "pca/explained_variance_ratio", pca["explained_variance_ratio"], "1",
                      "variance of the intact representation explained by PC1, PC2")
    log.info("%s %s L%d run%d: top-%d precision %.2f (chance %.3f); test RMSE %.4f intact, %.4f top-k replaced, "
             "%.4f random-k replaced", job["fish"], job["model"], job["seq_len"], job["run"], len(ranked), precision,
             chance, ablation["ablation_rmse_intact"], ablation["ablation_rmse_top_k"],
             ablation["ablation_rmse_random_k"])
    return attrs
