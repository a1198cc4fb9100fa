"""Reading binned session files: shapes, training-only standardisation, clear errors."""

import shutil

import h5py
import numpy as np
import pytest

from pipeline.io.errors import InputDataError
from pipeline.neds.data import load_session


def test_load_session_standardises_with_training_statistics(binned_sessions):
    data = load_session(binned_sessions["sesA"])
    n_trials, n_bins, n_neurons = data.spikes.shape
    assert n_bins == 100 and data.regions.shape == (n_neurons,)
    train = data.arrays("train")
    assert abs(train["wheel_speed"].mean()) < 1e-4 and abs(train["wheel_speed"].std() - 1) < 1e-3
    assert set(np.unique(data.choice)) <= {0, 1} and set(np.unique(data.block)) <= {0, 1, 2}
    assert data.tensors("test")["spikes"].dtype.is_floating_point


def test_missing_dataset_names_the_file(binned_sessions, tmp_path):
    broken = tmp_path / "broken.h5"
    shutil.copy(binned_sessions["sesA"], broken)
    with h5py.File(broken, "a") as f:
        del f["behavior/block"]
    with pytest.raises(InputDataError, match=r"broken\.h5: missing dataset 'behavior/block'"):
        load_session(broken)


def test_not_an_hdf5_file(tmp_path):
    path = tmp_path / "session.h5"
    path.write_text("not hdf5")
    with pytest.raises(InputDataError, match="session.h5: not a readable HDF5 file"):
        load_session(path)
    with pytest.raises(InputDataError, match="not found"):
        load_session(tmp_path / "absent.h5")
