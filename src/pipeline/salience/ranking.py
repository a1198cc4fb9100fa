"""Ranking of neurons by global salience (NLP4Neuro paper Sec. 3.5): the k most salient
neurons and their precision against planted drivers. NumPy only, so the salience summary
(which ranks stored maps) does not import torch."""

from __future__ import annotations

import numpy as np


def top_k(global_salience: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` most salient neurons, most salient first (ties by index)."""
    order = np.lexsort((np.arange(global_salience.size), -global_salience))
    return order[: min(k, global_salience.size)]


def precision_at_k(ranked: np.ndarray, is_driver: np.ndarray, k: int) -> tuple[float, float]:
    """(precision@k, chance): the fraction of the top-k neurons that are planted drivers, and
    the fraction expected by picking k neurons at random (drivers / neurons)."""
    if is_driver.size == 0:
        raise ValueError("no neurons")
    k = min(k, ranked.size)
    return float(is_driver[ranked[:k]].mean()), float(is_driver.mean())
