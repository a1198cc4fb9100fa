"""Deterministic seeds.

Every random choice in the pipeline takes its seed from the config's top-level ``seed``.
Per-unit seeds (one fish, one session) are derived from it by hashing the unit's name,
so adding a unit to a table never changes the data or results of the others.
"""

from __future__ import annotations

import hashlib

import numpy as np


def derive_seed(base_seed: int, *keys: str | int) -> int:
    """Return a 63-bit seed derived from ``base_seed`` and ``keys``, stable across runs,
    platforms and Python versions (SHA-256, not Python's salted ``hash``)."""
    text = "\x1f".join([str(int(base_seed)), *map(str, keys)])
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def rng_for(base_seed: int, *keys: str | int) -> np.random.Generator:
    """A NumPy ``Generator`` seeded with ``derive_seed(base_seed, *keys)``."""
    return np.random.default_rng(derive_seed(base_seed, *keys))
