"""Binned IBL session file (``results/ibl/binned/{session}.h5``) -> arrays and tensors per split.

NEDS preprocessing (paper seed 002, App. C): spike counts stay raw counts; continuous
behaviours (wheel speed, whisker motion energy) are standardised with the mean and standard
deviation of the TRAINING trials (attributes ``train_mean`` / ``train_std`` written by
:mod:`pipeline.ibl.binning`), so no statistic of validation or test trials leaks in. (The
paper scales to [-1, 1] with the extremes; a z-score makes the MSE of a mean predictor ~1,
comparable to the other losses, and does not depend on one outlying bin.)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
import torch

from pipeline.io.errors import InputDataError

#: Continuous behaviours (one value per bin) and discrete ones (one class per trial, n classes).
CONTINUOUS: tuple[str, ...] = ("wheel_speed", "whisker_motion_energy")
DISCRETE: dict[str, int] = {"choice": 2, "block": 3}
BEHAVIORS: tuple[str, ...] = CONTINUOUS + tuple(DISCRETE)
SPLITS: tuple[str, ...] = ("train", "val", "test")


@dataclass(frozen=True)
class SessionData:
    """One binned session in memory.

    ``spikes`` (trials, bins, neurons) float32 spike counts per bin; ``wheel_speed`` and
    ``whisker_motion_energy`` (trials, bins) float32 standardised on training trials
    (``behavior_scale`` holds each one's (train_mean, train_std) in its original units:
    rad/s and a.u.); ``choice`` (trials,) int64 in {0, 1}; ``block`` (trials,) int64 in
    {0, 1, 2}; ``regions`` (neurons,) brain-region acronyms; ``splits`` name -> trial positions.
    """

    session_id: str
    path: str
    spikes: np.ndarray
    wheel_speed: np.ndarray
    whisker_motion_energy: np.ndarray
    choice: np.ndarray
    block: np.ndarray
    regions: np.ndarray
    splits: dict[str, np.ndarray]
    behavior_scale: dict[str, tuple[float, float]]
    bin_size_s: float

    @property
    def n_neurons(self) -> int:
        return self.spikes.shape[2]

    @property
    def n_bins(self) -> int:
        return self.spikes.shape[1]

    def arrays(self, split: str) -> dict[str, np.ndarray]:
        """The split's trials: ``spikes`` and every behaviour, keyed by name."""
        rows = self.splits[split]
        return {"spikes": self.spikes[rows], **{name: getattr(self, name)[rows] for name in BEHAVIORS}}

    def tensors(self, split: str, device: str | torch.device = "cpu") -> dict[str, torch.Tensor]:
        """:meth:`arrays` as torch tensors on ``device`` (float32 / int64)."""
        return {name: torch.as_tensor(values, device=device) for name, values in self.arrays(split).items()}


def _read(f: h5py.File, path: Path, name: str) -> np.ndarray:
    if name not in f:
        raise InputDataError(path, f"missing dataset {name!r} (not a binned IBL session file?)")
    return f[name][()]


def _regions(f: h5py.File, path: Path, n_neurons: int) -> np.ndarray:
    regions = np.asarray(f["neurons/region"].asstr()[()]) if "neurons/region" in f else None
    if regions is None or regions.shape != (n_neurons,):
        raise InputDataError(path, f"neurons/region must hold one acronym per neuron ({n_neurons})")
    return regions


def _open(path: Path) -> h5py.File:
    if not path.is_file():
        raise InputDataError(path, "binned session file not found")
    try:
        return h5py.File(path, "r")
    except OSError as err:
        raise InputDataError(path, f"not a readable HDF5 file ({err})") from None


def read_neuron_regions(path: str | Path) -> np.ndarray:
    """The brain-region label of every neuron (``neurons/region``) without reading the counts."""
    path = Path(path)
    with _open(path) as f:
        if "spikes/counts" not in f or f["spikes/counts"].ndim != 3:
            raise InputDataError(path, "spikes/counts must be a (trials, bins, neurons) dataset")
        return _regions(f, path, f["spikes/counts"].shape[2])


def load_session(path: str | Path) -> SessionData:
    """Read and check a binned session file; bad content raises InputDataError naming it."""
    path = Path(path)
    with _open(path) as f:
        counts = _read(f, path, "spikes/counts")
        if counts.ndim != 3 or min(counts.shape) == 0:
            raise InputDataError(path, f"spikes/counts must be (trials, bins, neurons) and non-empty, got {counts.shape}")
        n_trials, n_bins, n_neurons = counts.shape
        continuous, scales = {}, {}
        for name in CONTINUOUS:
            values = _read(f, path, f"behavior/{name}").astype(np.float64)
            if values.shape != (n_trials, n_bins):
                raise InputDataError(path, f"behavior/{name} has shape {values.shape}, expected {(n_trials, n_bins)}")
            if not np.isfinite(values).all():
                raise InputDataError(path, f"behavior/{name} has non-finite values")
            attrs = f[f"behavior/{name}"].attrs
            if "train_mean" not in attrs or "train_std" not in attrs:
                raise InputDataError(path, f"behavior/{name} lacks train_mean/train_std attributes")
            mean, std = float(attrs["train_mean"]), float(attrs["train_std"])
            continuous[name] = ((values - mean) / (std if std > 0 else 1.0)).astype(np.float32)
            scales[name] = (mean, std)
        discrete = {}
        for name, n_classes in DISCRETE.items():
            labels = _read(f, path, f"behavior/{name}").astype(np.int64)
            if labels.shape != (n_trials,) or labels.min() < 0 or labels.max() >= n_classes:
                raise InputDataError(path, f"behavior/{name} must be ({n_trials},) classes in 0..{n_classes - 1}")
            discrete[name] = labels
        regions = _regions(f, path, n_neurons)
        splits = {name: _read(f, path, f"splits/{name}").astype(np.int64) for name in SPLITS}
        for name, rows in splits.items():
            if rows.size and (rows.min() < 0 or rows.max() >= n_trials):
                raise InputDataError(path, f"splits/{name} indexes trials outside 0..{n_trials - 1}")
        if splits["train"].size == 0 or splits["test"].size == 0:
            raise InputDataError(path, "the train and test splits must not be empty")
        session_id = str(f.attrs.get("session_id", path.stem))
        bin_size_s = float(f.attrs.get("bin_size_s", np.nan))
    return SessionData(
        session_id=session_id, path=str(path), spikes=counts.astype(np.float32), **continuous, **discrete,
        regions=regions, splits=splits, behavior_scale=scales, bin_size_s=bin_size_s,
    )
