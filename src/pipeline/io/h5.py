"""HDF5 datasets as stage outputs: every dataset carries ``units`` and ``description``."""

from __future__ import annotations

import h5py
import numpy as np


def write_dataset(group: h5py.Group, name: str, data, units: str, description: str, **create_kwargs) -> h5py.Dataset:
    """Create ``group[name]`` with ``units`` and ``description`` attributes.

    ``data`` given: string arrays are stored as variable-length UTF-8 (read with
    ``ds.asstr()[()]``) and arrays of two or more dimensions are gzip-compressed unless
    ``create_kwargs`` say otherwise. ``data=None``: an empty dataset is allocated from
    ``create_kwargs`` (shape, dtype, chunks...) to be filled chunk by chunk.
    """
    if data is not None:
        data = np.asarray(data)
        if data.dtype.kind in "OUS":
            data = np.array([str(x) for x in data.ravel()], dtype=object).reshape(data.shape)
            create_kwargs.setdefault("dtype", h5py.string_dtype())
        elif data.ndim > 1:
            create_kwargs.setdefault("compression", "gzip")
    dataset = group.create_dataset(name, data=data, **create_kwargs)
    dataset.attrs["units"] = units
    dataset.attrs["description"] = description
    return dataset
