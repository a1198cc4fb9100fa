"""The NLP4Neuro paper's published recordings, read as they are (input type
``nlp4neuro_dataverse``; Harvard Dataverse doi:10.7910/DVN/I8LULX, layout listed in the
original repository's ``data/dataset_metadata.json``).

One fish is a folder ``raw_data_fK/`` with ``plane_0/ … plane_{P-1}/`` (0-based), each holding

- ``F.npy`` (rois, frames): Suite2P ROI fluorescence of that plane;
- ``stat.npy``: Suite2P ROI statistics (pickled dicts; ``med`` = ROI centre (y, x) px);
- ``tail_df.h5``: pandas HDF5, key ``tail``: ``theta_00..theta_05`` (rad), ``t`` (s) and
  ``frame`` = that plane's imaging frame index of each tail sample;
- ``stimulus_df.tab``: not read (its columns are not documented); give the fish table's
  ``stimulus_log`` for stimulus state.

There is no ``iscell`` (every ROI is kept; classifier probability NaN), no ``Fneu`` (no
neuropil correction: Fneu = 0, so dF/F uses F alone), no ``spks`` (NaN: ``signal: spks``
cannot be used) and no ``ops``.

Alignment is the paper's (``make_groundtruth.py``): the tail of frame f is the mean of the
samples whose ``frame`` column equals f, ``groupby("frame").mean()`` (NaN skipped per
segment); plane 0's log gives the volumes, plane p's log the per-plane frames. A plane
whose ``F.npy`` and ``tail_df.h5`` disagree on the number of frames is an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipeline.io.errors import InputDataError

TAIL_KEY = "tail"
THETA_COLUMNS = [f"theta_{k:02d}" for k in range(6)]
TAIL_DF_COLUMNS = THETA_COLUMNS + ["t", "frame"]


def plane_folder(root: str | Path, plane: int) -> Path:
    return Path(root) / f"plane_{plane}"


def read_tail_df(path: str | Path) -> pd.DataFrame:
    """A plane's ``tail_df.h5`` (pandas HDF5, key ``tail``) with columns checked; rows
    sorted by time as logged (``t`` must increase, ``frame`` be integers >= 0)."""
    path = Path(path)
    if not path.is_file():
        raise InputDataError(path, "tail_df.h5 not found")
    try:
        table = pd.read_hdf(path, key=TAIL_KEY)
    except (KeyError, ValueError, OSError, TypeError) as err:
        raise InputDataError(path, f"not a pandas HDF5 file with key {TAIL_KEY!r} ({err})") from None
    missing = [c for c in TAIL_DF_COLUMNS if c not in table.columns]
    if missing:
        raise InputDataError(path, f"missing column(s) {missing}; found {list(table.columns)}")
    t, frame = table["t"].to_numpy(float), table["frame"].to_numpy(float)
    if not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
        raise InputDataError(path, "column 't' must be finite and strictly increasing")
    if not np.all(np.isfinite(frame)) or np.any(frame < 0) or np.any(frame != np.round(frame)):
        raise InputDataError(path, "column 'frame' must hold imaging frame indices (integers >= 0)")
    return table[TAIL_DF_COLUMNS].reset_index(drop=True)


def n_tail_frames(tail: pd.DataFrame) -> int:
    """Imaging frames a tail log spans: its largest frame index + 1."""
    return int(tail["frame"].max()) + 1


def frame_means(tail: pd.DataFrame, n_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The paper's ``groupby("frame").mean()`` reindexed to frames 0..n_frames-1: (mean
    angles (frames, 6) rad, tracked samples per segment (frames, 6), mean sample time
    (frames,) s); NaN / 0 for a frame without samples."""
    groups = tail.groupby("frame")
    index = pd.RangeIndex(n_frames)
    means = groups[THETA_COLUMNS].mean().reindex(index).to_numpy(float)
    counts = groups[THETA_COLUMNS].count().reindex(index, fill_value=0).to_numpy(np.int64)
    times = groups["t"].mean().reindex(index).to_numpy(float)
    return means, counts, times


def checked_frame_count(root: str | Path, plane: int) -> int:
    """Frames of one plane, after checking that ``F.npy`` and ``tail_df.h5`` agree."""
    folder = plane_folder(root, plane)
    F = _load(folder / "F.npy")
    tail = read_tail_df(folder / "tail_df.h5")
    if n_tail_frames(tail) != F.shape[1]:
        raise InputDataError(folder / "tail_df.h5", f"frame column spans {n_tail_frames(tail)} imaging frames but "
                                                    f"{folder / 'F.npy'} has {F.shape[1]}: the frame counts disagree")
    return int(F.shape[1])


def _load(path: Path, *, pickle: bool = False) -> np.ndarray:
    if not path.is_file():
        raise InputDataError(path, "file not found")
    try:
        array = np.load(path, mmap_mode=None if pickle else "r", allow_pickle=pickle)
    except (ValueError, OSError) as err:
        raise InputDataError(path, f"not a readable .npy file ({err})") from None
    if not pickle and array.ndim != 2:
        raise InputDataError(path, f"expected (rois, frames), found shape {array.shape}")
    return array


@dataclass(frozen=True)
class DataversePlane:
    """One published plane in the fields :func:`pipeline.imaging.neural.write_neural_file` reads."""

    F: np.ndarray  # (rois, frames) float32
    Fneu: np.ndarray  # (rois, frames) zeros: no neuropil published
    spks: np.ndarray  # (rois, frames) NaN: no deconvolution published
    iscell: np.ndarray  # (rois, 2): [1, NaN]: every ROI kept, no classifier probability
    centroid_px: np.ndarray  # (rois, 2) (y, x) from stat "med"

    @property
    def n_rois(self) -> int:
        return int(self.F.shape[0])

    @property
    def n_frames(self) -> int:
        return int(self.F.shape[1])

    @property
    def is_cell(self) -> np.ndarray:
        return np.ones(self.n_rois, bool)


def read_dataverse_plane(folder: str | Path) -> DataversePlane:
    """``F.npy`` and ``stat.npy`` of one published plane folder (``plane_N``)."""
    folder = Path(folder)
    F = np.asarray(_load(folder / "F.npy"), dtype=np.float32)
    stat = _load(folder / "stat.npy", pickle=True)
    if len(stat) != F.shape[0]:
        raise InputDataError(folder / "stat.npy", f"{len(stat)} ROIs but {folder / 'F.npy'} has {F.shape[0]}")
    try:
        centroid = np.array([[float(s["med"][0]), float(s["med"][1])] for s in stat], dtype=np.float32).reshape(-1, 2)
    except (KeyError, TypeError, IndexError) as err:
        raise InputDataError(folder / "stat.npy", f"ROI statistics without 'med' (y, x) ({err})") from None
    iscell = np.column_stack([np.ones(F.shape[0]), np.full(F.shape[0], np.nan)])
    return DataversePlane(F, np.zeros_like(F), np.full_like(F, np.nan), iscell, centroid)
