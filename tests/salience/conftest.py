from __future__ import annotations

import pytest
from decoding_fish import make_decoding_fish


@pytest.fixture(scope="session")
def salience_fish(tmp_path_factory):
    """(neural.h5, behavior.h5, truth.h5) of the synthetic decoding fish (800 volumes x 80 neurons)."""
    return make_decoding_fish(tmp_path_factory.mktemp("salience_fish"))
