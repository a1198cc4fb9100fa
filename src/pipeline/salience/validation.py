"""Validation of salience against the synthetic ground truth: which of the decoded neurons
are the planted tail-driver neurons (left/right pretectum drivers of
:mod:`pipeline.synth.zebrafish`)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
from scipy.spatial import cKDTree

from pipeline.io.errors import InputDataError


def planted_driver_sides(neural_path: str | Path, truth_path: str | Path, max_distance_px: float = 3.0) -> np.ndarray:
    """For each neuron of the neural file: ``"left"`` / ``"right"`` when it is (the ROI of) a
    planted driver neuron, else ``""``. Neurons are matched to true neurons of the same plane
    by nearest centroid within ``max_distance_px`` (Suite2P ROIs of a synthetic fish are not
    in the simulator's order)."""
    with h5py.File(neural_path, "r") as f:
        try:
            plane, centroid = f["neurons/plane"][()], f["neurons/centroid_px"][()]
        except KeyError as err:
            raise InputDataError(neural_path, f"missing dataset ({err}) needed to match ROIs to the truth") from None
    with h5py.File(truth_path, "r") as t:
        true_plane, true_centroid = t["neurons/plane"][()], t["neurons/centroid_px"][()]
        driver_index = t["tail/driver_neuron_index"][()]
        driver_side = t["tail/driver_side"].asstr()[()]
    true_side = np.full(true_plane.size, "", dtype=object)
    true_side[driver_index] = driver_side
    sides = np.full(plane.size, "", dtype=object)
    for p in np.unique(plane):
        mine, theirs = np.flatnonzero(plane == p), np.flatnonzero(true_plane == p)
        if theirs.size == 0:
            continue
        distance, nearest = cKDTree(true_centroid[theirs]).query(centroid[mine])
        matched = distance <= max_distance_px
        sides[mine[matched]] = true_side[theirs[nearest[matched]]]
    return sides.astype(str)
