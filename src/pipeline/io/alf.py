"""Locate datasets in ALF folders as the IBL's ONE cache stores them.

ALF file names are ``[_namespace_]object.attribute[.extra].ext``, e.g.
``_ibl_trials.stimOn_times.npy``, ``spikes.times.npy`` or
``clusters.brainLocationAcronyms_ccf_2017.npy``. Spike-sorting output lives in a probe
collection (``alf/probe00/`` or ``alf/probe00/pykilosort/``).
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pipeline.io.errors import InputDataError


def find_dataset(folder: str | os.PathLike, obj: str, attribute: str, ext: str = "npy") -> Path | None:
    """Return the one file in ``folder`` holding ``obj.attribute`` (any namespace, any
    extra part), or None if there is none. Raises InputDataError if several match."""
    folder = Path(folder)
    pattern = re.compile(
        rf"^(?:_[A-Za-z0-9]+_)?{re.escape(obj)}\.{re.escape(attribute)}(?:\.[A-Za-z0-9-]+)?\.{re.escape(ext)}$"
    )
    if not folder.is_dir():
        return None
    matches = sorted(p for p in folder.iterdir() if pattern.match(p.name))
    if len(matches) > 1:
        raise InputDataError(folder, f"several files hold {obj}.{attribute}: {[p.name for p in matches]}")
    return matches[0] if matches else None


def require_dataset(folder: str | os.PathLike, obj: str, attribute: str, ext: str = "npy") -> Path:
    """Like :func:`find_dataset` but a missing dataset is an InputDataError naming it."""
    found = find_dataset(folder, obj, attribute, ext)
    if found is None:
        raise InputDataError(folder, f"missing ALF dataset {obj}.{attribute}.{ext}")
    return found
