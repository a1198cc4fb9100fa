"""Anatomical region masks of a fish: which brain region each pixel of each plane is in.

File format (the fish table's ``region_table`` column): a multipage TIFF, one uint8 page
per imaging plane (Ly x Lx, same geometry as the raw stacks), whose values are labels;
the first page's ImageDescription holds JSON ``{"labels": {"1": "Pt", "2": "nMLF", ...}}``.
Label 0 means unassigned. Labs produce it from an atlas registration (e.g. Z-Brain /
mapzebrain regions warped to each plane); the synthetic generator writes its own.
"""

from __future__ import annotations

import json
import os

import numpy as np
import tifffile

from pipeline.io.atomic import atomic_paths
from pipeline.io.errors import InputDataError

UNASSIGNED = "unassigned"


def write_region_mask(path: str | os.PathLike, labels: np.ndarray, names: dict[int, str]) -> None:
    """Write ``labels`` (planes, Ly, Lx) of small integers with their region ``names``."""
    if labels.ndim != 3 or labels.min() < 0 or labels.max() > 255:
        raise ValueError("labels must be (planes, Ly, Lx) integers in 0..255")
    with atomic_paths(path) as (tmp,):
        tifffile.imwrite(tmp, labels.astype(np.uint8), photometric="minisblack", metadata=None,
                         description=json.dumps({"labels": {str(k): v for k, v in names.items()}}))


def read_region_mask(path: str | os.PathLike) -> tuple[np.ndarray, dict[int, str]]:
    """(labels (planes, Ly, Lx) uint8, {label: region name}); 0 is unassigned."""
    try:
        with tifffile.TiffFile(path) as tif:
            labels = tif.asarray()
            description = tif.pages.first.description
    except (tifffile.TiffFileError, OSError, ValueError) as err:
        raise InputDataError(path, f"not a readable region mask TIFF ({err})") from None
    try:
        names = {int(k): str(v) for k, v in json.loads(description)["labels"].items()}
    except (ValueError, KeyError, TypeError):
        raise InputDataError(path, 'first page description must be JSON {"labels": {"1": "Pt", ...}}') from None
    labels = labels[None] if labels.ndim == 2 else labels
    unknown = sorted(set(np.unique(labels).tolist()) - set(names) - {0})
    if unknown:
        raise InputDataError(path, f"labels {unknown} have no region name")
    return labels, names


def region_at(labels: np.ndarray, names: dict[int, str], plane: np.ndarray, yx_px: np.ndarray) -> np.ndarray:
    """Region name at each (plane, y, x) position (positions rounded, clipped to the frame)."""
    y = np.clip(np.rint(yx_px[:, 0]).astype(int), 0, labels.shape[1] - 1)
    x = np.clip(np.rint(yx_px[:, 1]).astype(int), 0, labels.shape[2] - 1)
    values = labels[plane, y, x]
    return np.array([names.get(int(v), UNASSIGNED) for v in values], dtype=object)
