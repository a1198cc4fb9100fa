"""The NWB path (DANDI 000409 layout, written here with pynwb from the synthetic ONE cache)
bins identically to the ONE-cache path; bad NWB input fails naming the file."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import h5py
import numpy as np
import pytest
from iblatlas.regions import BrainRegions
from pynwb import NWBHDF5IO, NWBFile, TimeSeries
from pynwb.behavior import CompassDirection, SpatialSeries

from pipeline.ibl.binning import bin_session
from pipeline.ibl.config import BinningConfig
from pipeline.io.errors import InputDataError

from ibl_sessions import alf_dir

#: ALF trial attribute -> NWB trials column (IBL-to-NWB names).
TRIAL_COLUMNS = {
    "stimOn_times": "stim_on_time", "goCue_times": "go_cue_time", "firstMovement_times": "first_movement_time",
    "response_times": "response_time", "feedback_times": "feedback_time", "choice": "choice",
    "feedbackType": "feedback_type", "contrastLeft": "contrast_left", "contrastRight": "contrast_right",
    "probabilityLeft": "probability_left",
}


def write_dandi_nwb(session: dict, path: Path, *, wheel: bool = True) -> Path:
    """The session's ALF files, read with numpy, written as DANDI 000409 stores IBL sessions."""
    alf = alf_dir(session)
    probe = alf / "probe00" / "pykilosort"
    nwb = NWBFile(session_description="synthetic IBL session", identifier="ses",
                  session_start_time=datetime(2024, 1, 1, tzinfo=timezone.utc))
    times, clusters = np.load(probe / "spikes.times.npy"), np.load(probe / "spikes.clusters.npy")
    channel_ids = np.load(probe / "#2024-05-06#" / "channels.brainLocationIds_ccf_2017.npy")
    cluster_channels, depths = np.load(probe / "clusters.channels.npy"), np.load(probe / "clusters.depths.npy")
    acronyms = BrainRegions().id2acronym(channel_ids[cluster_channels])
    for column, text in [("probe_name", "probe"), ("allen_location", "Allen acronym"), ("cluster_id", "ALF id"),
                         ("mean_relative_depth", "um from tip")]:
        nwb.add_unit_column(name=column, description=text)
    for k in range(cluster_channels.size):
        nwb.add_unit(spike_times=times[clusters == k], probe_name="probe00", allen_location=acronyms[k],
                     cluster_id=k, mean_relative_depth=depths[k])
    trials = {attr: np.load(alf / f"_ibl_trials.{attr}.npy") for attr in TRIAL_COLUMNS}
    intervals = np.load(alf / "_ibl_trials.intervals.npy")
    for attr, column in TRIAL_COLUMNS.items():
        nwb.add_trial_column(name=column, description=attr)
    for i in range(intervals.shape[0]):
        nwb.add_trial(start_time=intervals[i, 0], stop_time=intervals[i, 1],
                      **{column: trials[attr][i] for attr, column in TRIAL_COLUMNS.items()})
    if wheel:
        position = SpatialSeries(name="WheelPositionSeries", description="wheel", unit="rad",
                                 data=np.load(alf / "_ibl_wheel.position.npy"),
                                 timestamps=np.load(alf / "_ibl_wheel.timestamps.npy"),
                                 reference_frame="counter-clockwise is positive")
        nwb.create_processing_module("wheel", "Processed wheel data.").add(CompassDirection(spatial_series=position))
    camera = nwb.create_processing_module("camera", "Processed camera data.")
    camera.add(TimeSeries(name="LeftCameraMotionEnergy", description="whisker ROI", unit="a.u.",
                          data=np.load(alf / "leftCamera.ROIMotionEnergy.npy"),
                          timestamps=np.load(alf / "_ibl_leftCamera.times.npy")))
    with NWBHDF5IO(str(path), "w") as io:
        io.write(nwb)
    return path


def test_nwb_bins_identically_to_the_one_cache(synthetic_session, tmp_path):
    nwb_row = {"session_id": "ses", "subject": "S1", "probes": "all",
               "nwb_file": str(write_dandi_nwb(synthetic_session, tmp_path / "ses.nwb"))}
    from_alf, from_nwb = tmp_path / "alf.h5", tmp_path / "nwb.h5"
    bin_session(synthetic_session, from_alf, BinningConfig(), split_seed=3, progress=False)
    bin_session(nwb_row, from_nwb, BinningConfig(), split_seed=3, progress=False)
    with h5py.File(from_alf) as a, h5py.File(from_nwb) as b:
        names = []
        a.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
        assert "spikes/counts" in names and "neurons/region" in names
        for name in names:
            if name == "neurons/probe":  # the ALF collection vs the NWB probe_name
                assert set(a[name].asstr()[()]) == {"alf/probe00/pykilosort"}
                assert set(b[name].asstr()[()]) == {"probe00"}
                continue
            np.testing.assert_array_equal(a[name][()], b[name][()], err_msg=name)


def test_bad_nwb_input_names_the_file(synthetic_session, tmp_path):
    path = write_dandi_nwb(synthetic_session, tmp_path / "nowheel.nwb", wheel=False)
    row = {"session_id": "ses", "subject": "S1", "probes": "all", "nwb_file": str(path)}
    with pytest.raises(InputDataError, match="processing/wheel: processing module not found"):
        bin_session(row, tmp_path / "x.h5", BinningConfig(), split_seed=3, progress=False)
    with pytest.raises(InputDataError, match="no units of probe 'probe01'"):
        bin_session({**row, "probes": "probe01"}, tmp_path / "x.h5", BinningConfig(), split_seed=3, progress=False)
    assert not (tmp_path / "x.h5").exists()


def test_sessions_schema_takes_a_one_cache_or_an_nwb_file_not_both():
    import pandas as pd
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    schema = str(Path(__file__).parents[2] / "config" / "schema" / "sessions.schema.yaml")
    one_row = {"session_id": "a", "subject": "s", "one_cache": "c", "session": "lab/Subjects/s/2024-01-01/001",
               "probes": "all"}
    nwb_row = {"session_id": "b", "subject": "s", "nwb_file": "b.nwb", "probes": "probe00"}
    validate(pd.DataFrame([one_row, nwb_row]), schema=schema)
    for bad in [{**one_row, "nwb_file": "a.nwb"}, {"session_id": "c", "subject": "s", "probes": "all"},
                {**one_row, "probes": "probe00;probe01"}]:
        with pytest.raises(WorkflowError):
            validate(pd.DataFrame([bad]), schema=schema)
