"""Fixed-boundary chunks (pipeline.chunks): NEDS search draws and NLP4Neuro runs per job."""

import pytest

from pipeline.chunks import chunk_items, n_chunks


def test_chunks_have_fixed_boundaries():
    assert n_chunks(0, 2) == 0 and n_chunks(3, 2) == 2 and n_chunks(4, 2) == 2 and n_chunks(5, 1) == 5
    assert [list(chunk_items(3, 2, c)) for c in range(2)] == [[0, 1], [2]]
    assert [list(chunk_items(5, 2, c)) for c in range(3)] == [[0, 1], [2, 3], [4]]
    assert [list(chunk_items(50, 10, c)) for c in (0, 4)] == [list(range(10)), list(range(40, 50))]
    with pytest.raises(ValueError):
        chunk_items(3, 2, 2)
