"""HDF5 datasets as stage outputs: every dataset carries ``units`` and ``description``."""

from __future__ import annotations

import h5py
import numpy as np


def write_dataset(group: h5py.Group, name: str, data, units: str, description: str) -> h5py.Dataset:
    """Create ``group[name]`` from ``data`` with ``units`` and ``description`` attributes.

    String arrays are stored as variable-length UTF-8 (read with ``ds.asstr()[()]``);
    arrays of two or more dimensions are gzip-compressed in HDF5's default chunks.
    """
    data = np.asarray(data)
    if data.dtype.kind in "OUS":
        dataset = group.create_dataset(name, data=data.astype(str).astype(object), dtype=h5py.string_dtype())
    else:
        dataset = group.create_dataset(name, data=data, compression="gzip" if data.ndim > 1 else None)
    dataset.attrs["units"] = units
    dataset.attrs["description"] = description
    return dataset
