"""Fixed-boundary chunks of a growing count of work items, one DAG job per chunk (NEDS
search draws, NLP4Neuro training runs).

Chunk c of ``per_job`` K holds items [c K, (c + 1) K) ∩ [0, total): the boundaries do not
depend on ``total``, so raising it changes only the last, partial chunk and adds new ones.
"""

from __future__ import annotations


def n_chunks(total: int, per_job: int) -> int:
    """Number of chunks that hold ``total`` items, ``per_job`` each (the last possibly fewer)."""
    return -(-total // per_job)


def chunk_items(total: int, per_job: int, chunk: int) -> range:
    """The items of chunk ``chunk``: [chunk K, (chunk + 1) K) ∩ [0, total), K = ``per_job``."""
    if not 0 <= chunk < n_chunks(total, per_job):
        raise ValueError(f"chunk {chunk} outside the {n_chunks(total, per_job)} chunks of {total} items")
    return range(chunk * per_job, min((chunk + 1) * per_job, total))
