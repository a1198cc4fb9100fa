"""Input-gradient salience of a trained decoder (NLP4Neuro paper seed 000, Sec. 3.5, Eq. 1
and App. Eq. 21).

For a window w of length L starting at frame s, tail component k and neuron n at frame
t = s + p (p = 0..L-1 the position in the window), with x the z-scored activity and ŷ the
predicted tail angles in rad:

    S_k(n, t, w) = | ∂ (Σ_q ŷ[w, q, k]) / ∂ x[w, p, n] |          (Eq. 1; rad per z-unit)

i.e. the sensitivity of the window's prediction of component k to neuron n at that frame.
Moment-to-moment salience of neuron n at frame t averages over every window containing t and
sums over components:

    M(n, t) = (1 / |W_t|) Σ_{w ∈ W_t} Σ_k S_k(n, t, w)

and global salience averages over the T frames of the chosen split (Eq. 21; the paper: the
full recording, i.e. every block, :func:`combine_blocks`):

    G(n) = (1 / T) Σ_t M(n, t).

``global_by_segment`` keeps the components apart (6, neurons). ``signed_tail_sum`` is the
frame-averaged signed gradient of the predicted tail sum, ∂(Σ_q Σ_k ŷ[w, q, k]) / ∂x[w, p, n]
averaged like M: its sign says whether a neuron's activity pushes the tail to positive or
negative angles (left/right asymmetry, paper Fig. 5).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from tqdm import tqdm

from pipeline.data.windows import N_TAIL_SEGMENTS, WindowSet


@dataclass(frozen=True)
class SalienceMaps:
    """Salience of one model on one block of frames (units: rad per z-scored activity unit)."""

    moment: np.ndarray  # (frames, neurons) M(n, t)
    global_salience: np.ndarray  # (neurons,) G(n)
    global_by_segment: np.ndarray  # (6, neurons)
    signed_tail_sum: np.ndarray  # (neurons,)


def input_gradient_salience(
    model: nn.Module,
    windows: WindowSet,
    tail_std_rad: np.ndarray,
    batch_size: int = 64,
    device: torch.device | str = "cpu",
) -> SalienceMaps:
    """Salience maps of ``model`` over every window of ``windows`` (see module docstring).

    ``tail_std_rad`` (6,) converts the model's z-scored outputs to rad. The model is put in
    eval mode; gradients are taken w.r.t. the inputs only.
    """
    model.eval()
    device = torch.device(device)
    scale = torch.as_tensor(tail_std_rad, dtype=torch.float32, device=device)
    n_frames, n_neurons = windows.inputs.shape
    moment_by_segment = np.zeros((N_TAIL_SEGMENTS, n_frames, n_neurons), dtype=np.float64)
    signed = np.zeros((n_frames, n_neurons), dtype=np.float64)
    windows_per_frame = np.zeros(n_frames, dtype=np.int64)
    for start in tqdm(range(0, len(windows), batch_size), desc="salience", mininterval=5.0):
        index = torch.arange(start, min(start + batch_size, len(windows)))
        inputs, _ = windows.batch(index)
        inputs = inputs.to(device).requires_grad_(True)
        outputs = model(inputs).float() * scale  # (batch, L, 6) rad
        per_component = outputs.sum(dim=1)  # (batch, 6): the window's prediction of each component
        frames = windows.frame_index(index).numpy()  # (batch, L) block frames
        for k in range(N_TAIL_SEGMENTS):
            (gradient,) = torch.autograd.grad(per_component[:, k].sum(), inputs, retain_graph=True)
            np.add.at(moment_by_segment[k], frames, gradient.abs().cpu().double().numpy())
        (gradient,) = torch.autograd.grad(per_component.sum(), inputs)
        np.add.at(signed, frames, gradient.cpu().double().numpy())
        np.add.at(windows_per_frame, frames.ravel(), 1)
    covered = windows_per_frame > 0  # frames in no window (next to an invalid volume): NaN, left out of the means
    with np.errstate(invalid="ignore", divide="ignore"):
        moment_by_segment /= windows_per_frame[None, :, None]
        signed /= windows_per_frame[:, None]
    moment = moment_by_segment.sum(axis=0)
    return SalienceMaps(
        moment=moment.astype(np.float32),
        global_salience=moment[covered].mean(axis=0).astype(np.float32),
        global_by_segment=moment_by_segment[:, covered].mean(axis=1).astype(np.float32),
        signed_tail_sum=signed[covered].mean(axis=0).astype(np.float32),
    )


def combine_blocks(maps: list[SalienceMaps]) -> SalienceMaps:
    """Salience over consecutive blocks (e.g. train, val, test = the whole recording, Eq. 21
    over every frame): moment maps concatenated in frame order, the frame averages weighted
    by each block's frames. Windows never cross blocks, so each block is computed alone."""
    weights = np.array([m.moment.shape[0] for m in maps], dtype=np.float64)
    weights /= weights.sum()

    def weighted(name):
        return sum(w * getattr(m, name).astype(np.float64) for w, m in zip(weights, maps)).astype(np.float32)

    return SalienceMaps(moment=np.concatenate([m.moment for m in maps]), global_salience=weighted("global_salience"),
                        global_by_segment=weighted("global_by_segment"), signed_tail_sum=weighted("signed_tail_sum"))
