"""Resumable training state: atomic checkpoints, safe loading, and SIGTERM handling.

A training job writes ``last.pt`` after every epoch, every ``checkpoint_every_s`` seconds
within an epoch, and mid-epoch when it receives SIGTERM (how SLURM preempts or times out a
job) or SIGURG (:data:`WARNING_SIGNAL`, the early warning the SLURM profile asks for,
``--signal=URG@300``), and ``best.pt`` whenever the validation loss improves. A rerun of the same job finds ``last.pt``
and continues from the exact batch where it stopped: model, optimiser, scheduler and every
RNG state are restored, and the batch order of an epoch is a pure function of (seed,
epoch), so an interrupted-and-resumed run ends with the same weights as an uninterrupted
one (CPU). Every ``last.pt`` carries the fingerprint of the job's params; a rerun whose
params differ (the config changed between the attempts) discards it, and ``best.pt``, with
a log line (:func:`resumable_state`, shared by NLP4Neuro and NEDS).

Checkpoints hold only tensors and plain Python containers, so they load with
``torch.load(..., weights_only=True)`` (no pickled code is ever executed).
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import signal
from pathlib import Path
from typing import Any

import numpy as np
import torch

from pipeline.io.atomic import atomic_paths

log = logging.getLogger(__name__)


#: The early warning before a SLURM time limit (profiles/slurm: ``--signal=URG@300``). SLURM
#: sends it to every process of the job's ``srun`` step: the job's own Snakemake (started by
#: snakemake-executor-plugin-slurm-jobstep), its shell and the training script. It must be a
#: signal whose default action is to be ignored, so that only the training script, which
#: handles it, reacts: SIGUSR1/SIGUSR2 would terminate the job's Snakemake at once, and the
#: step would end, killing the trainer mid-checkpoint where SLURM tracks processes by cgroup.
WARNING_SIGNAL = signal.SIGURG
#: Signals that make a training job checkpoint at the next batch boundary and exit: SLURM's
#: time limit / preemption (SIGTERM), its early warning (SIGURG), Ctrl-C (SIGINT).
STOP_SIGNALS = (signal.SIGTERM, WARNING_SIGNAL, signal.SIGINT)
#: Default wall-clock interval between two mid-epoch checkpoints (s).
CHECKPOINT_EVERY_S = 600.0


class TrainingInterrupted(RuntimeError):
    """Raised after a stop signal was received and the state was checkpointed."""


def rng_state() -> dict[str, Any]:
    """The states of Python's, NumPy's and torch's global RNGs (CPU and, if present, CUDA)."""
    np_state = np.random.get_state()
    state = {
        "python": list(random.getstate()[1]),
        "python_pos": random.getstate()[2],
        "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64)),
        "numpy_pos": int(np_state[2]),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` captured."""
    random.setstate((3, tuple(int(v) for v in state["python"]), state["python_pos"]))
    np.random.set_state(("MT19937", state["numpy_keys"].numpy().astype(np.uint32), state["numpy_pos"], 0, 0.0))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(path: str | os.PathLike, **state: Any) -> None:
    """Write ``state`` (state dicts, tensors, numbers, strings, lists, dicts) to ``path``
    atomically: a crash while writing never leaves a truncated checkpoint behind."""
    with atomic_paths(path) as (tmp,):
        torch.save(state, tmp)


def load_checkpoint(path: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint written by :func:`save_checkpoint` with ``weights_only=True``."""
    return torch.load(path, map_location=map_location, weights_only=True)


def resumable_state(last_path: str | os.PathLike, fingerprint: str,
                    map_location: str | torch.device = "cpu") -> dict[str, Any] | None:
    """The state in ``last_path`` if it exists and was saved with ``fingerprint`` (the
    hash of the job's params), else None. A ``last.pt`` of other params (the config changed
    since the interrupted attempt) is deleted with ``best.pt`` next to it, and a warning
    naming both fingerprints is logged, so the job starts afresh instead of resuming it."""
    last_path = Path(last_path)
    if not last_path.exists():
        return None
    state = load_checkpoint(last_path, map_location=map_location)
    saved = state.get("fingerprint", "")
    if saved == fingerprint:
        return state
    log.warning("discarding %s: saved by a job with params fingerprint %r, this job's is %r; "
                "training starts afresh", last_path, saved or "(none)", fingerprint)
    last_path.unlink()
    (last_path.parent / "best.pt").unlink(missing_ok=True)
    return None


class StopSignal:
    """Remembers whether a stop signal (:data:`STOP_SIGNALS`) arrived; the training loop polls
    :attr:`requested` between batches, checkpoints, and raises :class:`TrainingInterrupted`.

    Use as a context manager; the previous handlers are restored on exit. Outside the main
    thread (where Python cannot install handlers) it does nothing.
    """

    def __init__(self, signals: tuple[int, ...] = STOP_SIGNALS) -> None:
        self.signals = signals
        self.requested = False
        self._previous: dict[int, Any] = {}

    def _handle(self, signum: int, frame: Any) -> None:
        log.warning("received %s: checkpointing at the next batch boundary", signal.Signals(signum).name)
        self.requested = True

    def __enter__(self) -> "StopSignal":
        with contextlib.suppress(ValueError):  # not the main thread
            for sig in self.signals:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


def epoch_batch_order(n_samples: int, batch_size: int, seed: int, epoch: int) -> list[np.ndarray]:
    """The training batches of one epoch: a permutation of ``range(n_samples)`` drawn from
    (seed, epoch) alone, cut into batches of ``batch_size`` (the last may be smaller).
    Being independent of any global RNG is what makes mid-epoch resumption exact."""
    from pipeline.seeding import rng_for

    order = rng_for(seed, "epoch", epoch).permutation(n_samples)
    return [order[i : i + batch_size] for i in range(0, n_samples, batch_size)]


def checkpoint_paths(directory: str | os.PathLike) -> tuple[Path, Path]:
    """``(last.pt, best.pt)`` inside a job's checkpoint directory."""
    directory = Path(directory)
    return directory / "last.pt", directory / "best.pt"
