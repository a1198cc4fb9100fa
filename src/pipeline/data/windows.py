"""Decoding datasets for NLP4Neuro (paper seed 000, Sec. 3.4): frames x neurons activity and
frames x 6 tail angles, split chronologically, normalised per neuron on training frames, and
cut into sliding windows lazily.

Fixes relative to the original scripts:

- splits are contiguous blocks of frames in time order (train, then validation, then test),
  and every window lies inside one block: no window crosses a split boundary, so no test
  frame is ever seen during training;
- blocked cross-validation (:func:`blocked_fold_split`, the ``cv_folds`` option of an
  experiment): k contiguous test blocks rotated over the recording, a contiguous validation
  block next to the test block, training on the rest, and ``seq_len`` volumes left out
  between any two blocks, so no window holds frames of two blocks and the frames nearest the
  test block (the most correlated with it) are not trained on;
- each neuron is z-scored with the mean and standard deviation of the *training* frames
  only (the original normalised every frame across neurons over the whole recording, which
  mixes test statistics into the inputs); the six tail angles are z-scored the same way, so
  losses weigh the small rostral angles like the large caudal ones and learning rates carry
  over between fish; predictions are mapped back to rad before any metric;
- windows are never materialised: a batch is gathered from the (frames, neurons) array by
  index arithmetic, so memory is one copy of the recording whatever ``seq_len`` is;
- volumes the behaviour file marks invalid (``tail/valid`` False: tail tracking lost for
  longer than ``tail_alignment.max_gap_s``) never reach training or metrics: a window
  containing one is dropped from its block, the tail normaliser is fitted on valid training
  volumes, and the z-scored targets of invalid volumes are NaN (any leak would show).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import h5py
import numpy as np
import torch

from pipeline.io.errors import InputDataError

SPLITS = ("train", "val", "test")
N_TAIL_SEGMENTS = 6


@dataclass(frozen=True)
class DecodingRecording:
    """One fish's decoder inputs and targets on the common imaging-volume clock.

    Attributes:
        neural_activity: (frames, neurons) float32, the neural file's ``neurons/{signal}``
            transposed (dF/F by default, unitless).
        tail_angles: (frames, 6) float32, mean tail-segment angles per volume (rad),
            rostral to caudal, from the behaviour file's ``tail/theta``.
        neuron_position_um: (neurons, 3) float32 (x, y, z) in µm.
        neuron_region: (neurons,) str, anatomical region labels.
        frame_times_s: (frames,) float64, volume times (s; first plane's frames).
        signal: which neural dataset was read (``dff`` or ``spks``).
        tail_valid: (frames,) bool, the behaviour file's ``tail/valid`` (False = volume
            excluded); None = every volume valid.
    """

    neural_activity: np.ndarray
    tail_angles: np.ndarray
    neuron_position_um: np.ndarray
    neuron_region: np.ndarray
    frame_times_s: np.ndarray
    signal: str
    tail_valid: np.ndarray | None = None

    @property
    def n_frames(self) -> int:
        return self.tail_angles.shape[0]

    @property
    def valid_frames(self) -> np.ndarray:
        """(frames,) bool: volumes that may enter a window."""
        return np.ones(self.n_frames, bool) if self.tail_valid is None else np.asarray(self.tail_valid, bool)

    @property
    def n_neurons(self) -> int:
        return self.neural_activity.shape[1]

    def without_activity(self) -> "DecodingRecording":
        """The same recording without its (frames, neurons) activity (shape (0, neurons)):
        once :func:`make_splits` holds the normalised copy, the raw one need not stay in memory."""
        return replace(self, neural_activity=np.empty((0, self.n_neurons), dtype=np.float32))


def load_recording(neural_path: str | Path, behavior_path: str | Path, signal: str = "dff") -> DecodingRecording:
    """Read a fish's neural file (``results/neural/{fish}.h5``) and behaviour file
    (``results/behavior/{fish}.h5``); both are on the same volume clock by construction.

    Raises :class:`InputDataError` naming the file when a dataset is missing, the frame
    counts disagree, or the activity holds non-finite values.
    """
    if signal not in ("dff", "spks"):
        raise ValueError(f"signal must be 'dff' or 'spks', got {signal!r}")
    neural_path, behavior_path = Path(neural_path), Path(behavior_path)
    try:
        with h5py.File(neural_path, "r") as f:
            activity = np.ascontiguousarray(f[f"neurons/{signal}"][()].T, dtype=np.float32)
            position = f["neurons/position_um"][()].astype(np.float32)
            region = f["neurons/region"].asstr()[()]
            frame_times = f["time/frame_times_s"][()][0].astype(np.float64)
    except KeyError as err:
        raise InputDataError(neural_path, f"missing dataset ({err})") from None
    try:
        with h5py.File(behavior_path, "r") as f:
            tail = f["tail/theta"][()].astype(np.float32)
            valid = f["tail/valid"][()].astype(bool) if "tail/valid" in f else None
    except KeyError as err:
        raise InputDataError(behavior_path, f"missing dataset ({err})") from None
    if tail.ndim != 2 or tail.shape[1] != N_TAIL_SEGMENTS:
        raise InputDataError(behavior_path, f"tail/theta has shape {tail.shape}, expected (frames, {N_TAIL_SEGMENTS})")
    if tail.shape[0] != activity.shape[0]:
        raise InputDataError(
            neural_path, f"{activity.shape[0]} volumes of neural activity but {tail.shape[0]} in {behavior_path}"
        )
    if activity.shape[1] == 0:
        raise InputDataError(neural_path, "no neurons")
    if not np.isfinite(activity).all():
        raise InputDataError(neural_path, f"neurons/{signal} holds non-finite values")
    if valid is not None and valid.shape != (tail.shape[0],):
        raise InputDataError(behavior_path, f"tail/valid has shape {valid.shape}, expected ({tail.shape[0]},)")
    checked = tail if valid is None else tail[valid]
    if not np.isfinite(checked).all():
        raise InputDataError(behavior_path, "tail/theta holds non-finite values" + ("" if valid is None else " in valid volumes"))
    return DecodingRecording(activity, tail, position, region, frame_times, signal, valid)


def chronological_split(n_frames: int, fractions: tuple[float, float, float], seq_len: int) -> dict[str, range]:
    """Contiguous frame ranges ``{"train", "val", "test"}`` in time order with the given
    fractions (rounded to whole frames; the test block takes the remainder).

    Raises ValueError when a block would be shorter than ``seq_len`` (no window fits).
    """
    if len(fractions) != 3 or any(f <= 0 for f in fractions) or not np.isclose(sum(fractions), 1.0):
        raise ValueError(f"split fractions must be three positive numbers summing to 1, got {fractions}")
    n_train = int(round(fractions[0] * n_frames))
    n_val = int(round(fractions[1] * n_frames))
    bounds = {"train": range(0, n_train), "val": range(n_train, n_train + n_val),
              "test": range(n_train + n_val, n_frames)}
    for name, frames in bounds.items():
        if len(frames) < seq_len:
            raise ValueError(
                f"the {name} block has {len(frames)} frames, fewer than seq_len={seq_len} "
                f"({n_frames} frames split {fractions})"
            )
    return bounds


def blocked_fold_split(n_frames: int, n_folds: int, fold: int, val_fraction: float,
                       seq_len: int) -> dict[str, tuple[range, ...]]:
    """Fold ``fold`` of blocked ``n_folds``-fold cross-validation over a recording of
    ``n_frames`` volumes: ``{"train", "val", "test"}`` -> contiguous frame segments in time
    order (train may have two: before and after the held-out blocks).

    Layout (volumes): the test blocks are the ``n_folds`` contiguous blocks of (nearly) equal
    length that tile the recording (block f = frames ``round(f n / k)`` to ``round((f + 1) n / k)``),
    so over the folds every volume is tested exactly once. Validation is the contiguous block
    of ``round(val_fraction n)`` volumes just *before* the test block (as in the single split,
    where validation precedes test); for fold 0, which has nothing before it, just *after* it.
    ``seq_len`` volumes are left out between validation and test and between either of them and
    the training frames, so windows (which overlap by ``seq_len - 1`` frames) never hold frames
    of two blocks and no training window touches a held-out frame's neighbourhood. Training is
    every remaining volume; a training segment shorter than ``seq_len`` (no window fits) is
    dropped.

    Raises ValueError when the test or validation block is shorter than ``seq_len``, or the
    blocks do not fit in the recording.
    """
    if n_folds < 2 or not 0 <= fold < n_folds:
        raise ValueError(f"blocked cross-validation needs n_folds >= 2 and 0 <= fold < n_folds, got fold {fold} "
                         f"of {n_folds}")
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be in (0, 1), got {val_fraction}")
    edges = np.round(np.linspace(0, n_frames, n_folds + 1)).astype(int)
    test = range(int(edges[fold]), int(edges[fold + 1]))
    n_val, gap = int(round(val_fraction * n_frames)), seq_len
    val = (range(test.start - gap - n_val, test.start - gap) if fold > 0
           else range(test.stop + gap, test.stop + gap + n_val))
    where = f"fold {fold} of {n_folds} over {n_frames} frames (val_fraction {val_fraction}, seq_len {seq_len})"
    for name, block in (("test", test), ("val", val)):
        if len(block) < seq_len:
            raise ValueError(f"{where}: the {name} block has {len(block)} frames, fewer than seq_len={seq_len}")
    held_out = range(min(val.start, test.start) - gap, max(val.stop, test.stop) + gap)
    if val.start < 0 or val.stop > n_frames:
        raise ValueError(f"{where}: the validation block {val.start}..{val.stop} does not fit in the recording")
    train = tuple(r for r in (range(0, max(held_out.start, 0)), range(min(held_out.stop, n_frames), n_frames))
                  if len(r) >= seq_len)
    if not train:
        raise ValueError(f"{where}: no training segment of at least seq_len frames is left")
    return {"train": train, "val": (val,), "test": (test,)}


@dataclass(frozen=True)
class Normaliser:
    """Per-channel (neuron or tail segment) z-scoring with statistics of the training
    frames only.

    ``mean`` and ``std`` are (channels,) float32 in the data's units; a channel constant on
    the training frames gets std 1 (it is centred, not divided by zero).
    """

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, train_activity: np.ndarray) -> "Normaliser":
        mean = train_activity.mean(axis=0, dtype=np.float64)
        std = train_activity.std(axis=0, dtype=np.float64)
        std[std < 1e-8] = 1.0
        return cls(mean.astype(np.float32), std.astype(np.float32))

    def transform(self, values: np.ndarray) -> np.ndarray:
        """(..., channels) in data units -> z-scores (one float32 allocation, no temporaries)."""
        z_scores = np.array(values, dtype=np.float32, copy=True)
        z_scores -= self.mean
        z_scores /= self.std
        return z_scores

    def inverse(self, z_scores: np.ndarray) -> np.ndarray:
        """(..., channels) z-scores -> data units."""
        return (z_scores * self.std + self.mean).astype(np.float32)


class WindowSet:
    """All sliding windows (stride 1) of length ``seq_len`` inside one block of frames.

    Holds the block once, as tensors ``inputs`` (frames, neurons) and ``targets``
    (frames, 6); window ``i`` covers frames ``i .. i + seq_len - 1`` of the block
    (``first_frame + i`` in the recording when the block is one contiguous segment).
    A block made of several segments of the recording (the training block of a blocked
    cross-validation fold) lists the block frames where a new segment begins in
    ``segment_starts``: no window crosses one, and ``recording_frames`` maps block frames to
    recording volumes. :meth:`batch` gathers windows by index.
    """

    def __init__(self, inputs: np.ndarray, targets: np.ndarray, seq_len: int, first_frame: int = 0,
                 valid: np.ndarray | None = None, segment_starts: tuple[int, ...] = (),
                 recording_frames: np.ndarray | None = None) -> None:
        if inputs.shape[0] != targets.shape[0]:
            raise ValueError(f"inputs have {inputs.shape[0]} frames, targets {targets.shape[0]}")
        if seq_len < 1 or inputs.shape[0] < seq_len:
            raise ValueError(f"seq_len={seq_len} does not fit in a block of {inputs.shape[0]} frames")
        self.inputs = torch.as_tensor(np.ascontiguousarray(inputs, dtype=np.float32))
        self.targets = torch.as_tensor(np.ascontiguousarray(targets, dtype=np.float32))
        self.seq_len = seq_len
        self.first_frame = first_frame
        self._offsets = torch.arange(seq_len)
        invalid = np.zeros(inputs.shape[0], bool) if valid is None else ~np.asarray(valid, bool)
        self.valid = ~invalid  #: (frames,) bool, False = volume no window may contain
        self.segment_starts = tuple(int(b) for b in segment_starts)
        #: (frames,) int64 recording volume of each block frame
        self.recording_frames = (np.arange(first_frame, first_frame + inputs.shape[0]) if recording_frames is None
                                 else np.asarray(recording_frames, dtype=np.int64))
        if self.recording_frames.shape != (inputs.shape[0],):
            raise ValueError(f"recording_frames has shape {self.recording_frames.shape}, expected ({inputs.shape[0]},)")
        invalid_before = np.concatenate([[0], np.cumsum(invalid)])
        segment = np.zeros(inputs.shape[0], np.int64)
        segment[list(self.segment_starts)] = 1
        segment = np.cumsum(segment)  # segment number of each block frame
        all_valid = invalid_before[seq_len:] == invalid_before[:-seq_len]
        one_segment = segment[seq_len - 1 :] == segment[: inputs.shape[0] - seq_len + 1]
        whole = all_valid & one_segment
        #: block frame where each window starts: the windows whose frames are all valid and in one segment, in order
        self.window_starts = torch.as_tensor(np.flatnonzero(whole))
        if len(self.window_starts) == 0:
            raise ValueError(f"no window of seq_len={seq_len} valid volumes in a block of {inputs.shape[0]} frames "
                             f"({int(invalid.sum())} invalid)")

    def __len__(self) -> int:
        return len(self.window_starts)

    def with_inputs(self, inputs: np.ndarray) -> "WindowSet":
        """The same windows (targets, seq_len, first frame, valid volumes) over other
        ``inputs`` (frames, neurons), e.g. activity with some neurons replaced."""
        return WindowSet(inputs, self.targets.numpy(), self.seq_len, self.first_frame, self.valid,
                         self.segment_starts, self.recording_frames)

    @property
    def n_frames(self) -> int:
        return self.inputs.shape[0]

    def frame_index(self, window_index: torch.Tensor | np.ndarray) -> torch.Tensor:
        """(batch, seq_len) block-frame indices of the given windows."""
        return self.window_starts[torch.as_tensor(window_index, dtype=torch.long)][:, None] + self._offsets[None, :]

    def batch(self, window_index: torch.Tensor | np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        """Windows ``window_index`` as (inputs (batch, seq_len, neurons), targets (batch, seq_len, 6))."""
        frames = self.frame_index(window_index)
        return self.inputs[frames], self.targets[frames]


@dataclass(frozen=True)
class DecodingSplits:
    """The three :class:`WindowSet` blocks of one recording (inputs and targets z-scored),
    plus the normalisers fitted on the training block."""

    train: WindowSet
    val: WindowSet
    test: WindowSet
    activity_normaliser: Normaliser  # (neurons,)
    tail_normaliser: Normaliser  # (6,) rad
    frame_segments: dict[str, tuple[range, ...]]  # recording frames of each block, contiguous segments in order
    n_recording_frames: int  # volumes of the whole recording

    def __getitem__(self, split: str) -> WindowSet:
        return getattr(self, split)

    def frames(self, split: str) -> np.ndarray:
        """(block frames,) recording volume index of each frame of ``split``'s block."""
        return self[split].recording_frames


def make_splits(recording: DecodingRecording, fractions: tuple[float, float, float], seq_len: int,
                cv_folds: int = 0, fold: int = 0) -> DecodingSplits:
    """Split (``cv_folds`` 0: :func:`chronological_split` with ``fractions``; k >= 2: fold
    ``fold`` of :func:`blocked_fold_split`, validation ``fractions[1]`` of the recording),
    fit the activity and tail normalisers on the training frames, and wrap each block in a
    :class:`WindowSet` (windows never cross blocks or segments). Single-segment blocks are
    views of one normalised copy of the recording; a two-segment training block is a copy."""
    if cv_folds:
        segments = blocked_fold_split(recording.n_frames, cv_folds, fold, fractions[1], seq_len)
    else:
        segments = {name: (r,) for name, r in chronological_split(recording.n_frames, fractions, seq_len).items()}
    valid = recording.valid_frames
    train_frames = np.concatenate([np.arange(r.start, r.stop) for r in segments["train"]])
    train_valid = train_frames[valid[train_frames]]
    activity_normaliser = Normaliser.fit(recording.neural_activity[train_valid])
    tail_normaliser = Normaliser.fit(recording.tail_angles[train_valid])
    activity = activity_normaliser.transform(recording.neural_activity)
    tail = tail_normaliser.transform(recording.tail_angles)
    tail[~valid] = np.nan  # never gathered (no window holds an invalid volume); NaN if it were
    sets = {}
    for name, parts in segments.items():
        if len(parts) == 1:
            (r,) = parts
            sets[name] = WindowSet(activity[r.start : r.stop], tail[r.start : r.stop], seq_len, first_frame=r.start,
                                   valid=valid[r.start : r.stop])
            continue
        frames = np.concatenate([np.arange(r.start, r.stop) for r in parts])
        starts = tuple(np.cumsum([len(r) for r in parts])[:-1])
        sets[name] = WindowSet(activity[frames], tail[frames], seq_len, first_frame=parts[0].start,
                               valid=valid[frames], segment_starts=starts, recording_frames=frames)
    return DecodingSplits(**sets, activity_normaliser=activity_normaliser, tail_normaliser=tail_normaliser,
                          frame_segments=segments, n_recording_frames=recording.n_frames)


def average_overlapping_windows(window_values: np.ndarray, window_starts: np.ndarray | None = None,
                                n_frames: int | None = None) -> np.ndarray:
    """Average per-window sequence predictions onto frames (paper Sec. 3.4: "for overlapping
    window time steps we averaged the predictions").

    window_values: (n_windows, seq_len, channels) of one block; window_starts: (n_windows,)
    block frame where each starts (default: consecutive stride-1 windows from frame 0,
    :attr:`WindowSet.window_starts` otherwise). Returns (n_frames, channels), default
    n_frames = last start + seq_len: frame f is the mean over the windows containing it,
    NaN where none does (a frame next to an invalid volume).
    """
    n_windows, seq_len, channels = window_values.shape
    starts = np.arange(n_windows) if window_starts is None else np.asarray(window_starts, dtype=np.int64)
    n_frames = int(starts[-1]) + seq_len if n_frames is None else n_frames
    total = np.zeros((n_frames, channels), dtype=np.float64)
    count = np.zeros(n_frames, dtype=np.int64)
    for offset in range(seq_len):
        np.add.at(total, starts + offset, window_values[:, offset])
        np.add.at(count, starts + offset, 1)
    with np.errstate(invalid="ignore"):
        return (total / count[:, None]).astype(np.float32)
