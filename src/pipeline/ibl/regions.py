"""Brain regions of IBL clusters with iblatlas (Allen CCF 2017; mappings ship in the wheel).

IBL stores a cluster's location through its channel: ``clusters.channels[k]`` is the
channel of cluster ``k`` and ``channels.brainLocationIds_ccf_2017[c]`` the Allen structure
id of channel ``c`` (what ``brainbox.io.one.SpikeSortingLoader`` does). The id is mapped to
an acronym at a level of the IBL hierarchies (:data:`REGION_LEVELS`):

- ``Beryl``: the ~300 regions of the IBL Brain-Wide Map and of NEDS (seed 002, Sec. 4:
  regions are Beryl acronyms), e.g. ``VISam4`` -> ``VISam``, ``DG-sg`` -> ``DG``;
- ``Cosmos``: 10 coarse divisions (Isocortex, HPF, TH, ...);
- ``Allen``: the finest annotation as stored.

Lookups are exact on ids, never on acronym prefixes (``VISam`` is not ``VISa``, ``POL``
not ``PO``). An id unknown to iblatlas is an error naming the file it came from.
"""

from __future__ import annotations

import functools
import os

import numpy as np

from pipeline.io.errors import InputDataError

#: Region levels accepted by ``ibl_binning.region_level`` (iblatlas mapping names).
REGION_LEVELS = ("Beryl", "Cosmos", "Allen")


@functools.lru_cache(maxsize=1)
def brain_regions():
    """The iblatlas ``BrainRegions`` table (loaded once; no download)."""
    from iblatlas.regions import BrainRegions

    return BrainRegions()


def allen_ids_from_acronyms(acronyms: np.ndarray, source: str | os.PathLike) -> np.ndarray:
    """Allen ids (int64) of exact Allen acronyms (older caches store
    ``clusters.brainLocationAcronyms_ccf_2017``); an unknown acronym raises InputDataError
    naming ``source``."""
    regions = brain_regions()
    right = regions.id >= 0  # the table lists each structure twice: +id (right), -id (left hemisphere)
    known = dict(zip(regions.acronym[right], regions.id[right]))
    unknown = sorted({str(a) for a in acronyms} - set(known))
    if unknown:
        raise InputDataError(source, f"acronym(s) unknown to the Allen CCF 2017 (iblatlas): {unknown[:10]}")
    return np.array([known[str(a)] for a in acronyms], dtype=np.int64)


def region_acronyms(allen_ids: np.ndarray, level: str, source: str | os.PathLike) -> np.ndarray:
    """Acronym (str) at ``level`` of each Allen id (n,); ids unknown to iblatlas raise
    InputDataError naming ``source`` (the file the ids came from)."""
    if level not in REGION_LEVELS:
        raise ValueError(f"region level must be one of {REGION_LEVELS}, got {level!r}")
    regions = brain_regions()
    allen_ids = np.asarray(allen_ids, dtype=np.int64)
    unknown = np.unique(allen_ids[~np.isin(allen_ids, regions.id)])
    if unknown.size:
        raise InputDataError(source, f"Allen id(s) unknown to iblatlas: {unknown[:10].tolist()}")
    return regions.id2acronym(allen_ids, mapping=level).astype(str)
