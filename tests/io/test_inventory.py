"""Input inventory: good recordings pass with checksums; each kind of bad input fails
with an error naming the file and the problem."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
from one.alf.cache import make_parquet_db
import pandas as pd
import pytest
import tifffile

from pipeline.io.errors import InputDataError
from pipeline.io.inventory import TAIL_COLUMNS, inventory_fish, inventory_session
from pipeline.provenance import sha256_file

from helpers import require_real_ibl_fixtures

N_PLANES, N_VOLUMES, RATE_HZ, TAIL_HZ = 2, 12, 1.1, 200.0


@pytest.fixture
def fish_row(tmp_path):
    """A small, valid raw recording written by hand (not by the synthetic generator)."""
    rng = np.random.default_rng(0)
    for plane in range(N_PLANES):
        tifffile.imwrite(tmp_path / f"plane{plane}.tif", rng.integers(0, 4000, (N_VOLUMES, 16, 20), dtype=np.uint16))
    frame_times = pd.DataFrame(
        [
            {"volume": v, "plane": p, "t": v / RATE_HZ + p / (RATE_HZ * N_PLANES)}
            for v in range(N_VOLUMES) for p in range(N_PLANES)
        ]
    )
    frame_times.to_csv(tmp_path / "frame_times.csv", index=False)
    t = np.arange(-1.0, N_VOLUMES / RATE_HZ + 1.0, 1 / TAIL_HZ)
    tail = pd.DataFrame({"t": t, "frame": np.arange(t.size)})
    for name in TAIL_COLUMNS[2:]:
        tail[name] = 0.1 * np.sin(t)
    tail.loc[5, "theta_03"] = np.nan  # an untracked sample, as real trackers produce
    tail.to_csv(tmp_path / "tail_log.csv", index=False)
    pd.DataFrame({"t_start": [0.0, 5.0], "t_end": [5.0, 8.0], "epoch": ["static", "moving"], "direction_deg": [0, 0]}).to_csv(
        tmp_path / "stimulus_log.csv", index=False
    )
    return {
        "fish_id": "f1", "input_type": "tiff", "tiff": str(tmp_path / "plane{plane}.tif"),
        "tail_log": str(tmp_path / "tail_log.csv"), "stimulus_log": str(tmp_path / "stimulus_log.csv"),
        "frame_times": str(tmp_path / "frame_times.csv"), "volume_rate_hz": RATE_HZ, "n_planes": N_PLANES,
        "pixel_size_um": 1.0, "plane_spacing_um": 7.0, "tail_rate_hz": TAIL_HZ,
    }


def test_inventory_of_a_good_recording(fish_row, tmp_path):
    inventory = inventory_fish(fish_row)
    assert [p["n_frames"] for p in inventory["planes"]] == [N_VOLUMES] * N_PLANES
    assert inventory["planes"][0]["frame_shape_px"] == [16, 20]
    assert inventory["planes"][1]["sha256"] == sha256_file(tmp_path / "plane1.tif")
    assert inventory["tail_log"]["measured_rate_hz"] == pytest.approx(TAIL_HZ, rel=1e-6)
    assert inventory["tail_log"]["covers_imaging"] is True
    assert inventory["tail_log"]["untracked_fraction"] == pytest.approx(1 / len(pd.read_csv(fish_row["tail_log"])))
    assert inventory["frame_times"]["frames_per_plane"] == {0: N_VOLUMES, 1: N_VOLUMES}


def test_inventory_hash_follows_metadata(fish_row):
    first = inventory_fish(fish_row)["metadata_hash"]
    assert inventory_fish({**fish_row, "pixel_size_um": 0.6})["metadata_hash"] != first


def _truncate_stack(row, tmp_path):
    tifffile.imwrite(tmp_path / "plane1.tif", np.zeros((N_VOLUMES - 1, 16, 20), np.uint16))


def _wrong_tail_rate(row, tmp_path):
    row["tail_rate_hz"] = 100.0


def _wrong_volume_rate(row, tmp_path):
    row["volume_rate_hz"] = 2.0


def _missing_tail_column(row, tmp_path):
    pd.read_csv(row["tail_log"]).drop(columns="theta_05").to_csv(row["tail_log"], index=False)


def _tail_on_other_clock(row, tmp_path):
    tail = pd.read_csv(row["tail_log"])
    tail["t"] += 1e5
    tail.to_csv(row["tail_log"], index=False)


def _corrupt_tiff(row, tmp_path):
    (tmp_path / "plane0.tif").write_bytes(b"not a tiff at all")


def _missing_plane_times(row, tmp_path):
    frame_times = pd.read_csv(row["frame_times"])
    frame_times[frame_times.plane == 0].to_csv(row["frame_times"], index=False)


def _unsorted_frame_times(row, tmp_path):
    frame_times = pd.read_csv(row["frame_times"])
    frame_times.loc[frame_times.plane == 0, "t"] = frame_times.loc[frame_times.plane == 0, "t"].to_numpy()[::-1]
    frame_times.to_csv(row["frame_times"], index=False)


def _bad_epoch(row, tmp_path):
    pd.DataFrame({"t_start": [3.0], "t_end": [1.0], "epoch": ["moving"], "direction_deg": [0]}).to_csv(
        row["stimulus_log"], index=False
    )


@pytest.mark.parametrize(
    "break_input, file_name, message",
    [
        (_truncate_stack, "plane1.tif", "11 frames"),
        (_wrong_tail_rate, "tail_log.csv", "declares 100 Hz"),
        (_wrong_volume_rate, "frame_times.csv", "declares 2 Hz"),
        (_missing_tail_column, "tail_log.csv", "theta_05"),
        (_tail_on_other_clock, "tail_log.csv", "no overlap"),
        (_corrupt_tiff, "plane0.tif", "not a readable TIFF"),
        (_missing_plane_times, "frame_times.csv", "n_planes=2"),
        (_unsorted_frame_times, "frame_times.csv", "not strictly increasing"),
        (_bad_epoch, "stimulus_log.csv", "t_end > t_start"),
    ],
)
def test_bad_fish_inputs_name_file_and_problem(fish_row, tmp_path, break_input, file_name, message):
    break_input(fish_row, tmp_path)
    with pytest.raises(InputDataError, match=message) as excinfo:
        inventory_fish(fish_row)
    assert excinfo.value.path.endswith(file_name)


def test_suite2p_input(fish_row, tmp_path):
    root = tmp_path / "suite2p"
    for plane in range(N_PLANES):
        folder = root / f"plane{plane}"
        folder.mkdir(parents=True)
        for name in ["F", "Fneu", "spks"]:
            np.save(folder / f"{name}.npy", np.zeros((7, N_VOLUMES), np.float32))
        for name in ["stat", "iscell", "ops"]:
            np.save(folder / f"{name}.npy", np.zeros(3))
    row = {**fish_row, "input_type": "suite2p", "suite2p_dir": str(root)}
    inventory = inventory_fish(row)
    assert [p["n_rois"] for p in inventory["planes"]] == [7, 7]
    (root / "plane1" / "iscell.npy").unlink()
    with pytest.raises(InputDataError, match=r"lacks \['iscell.npy'\]"):
        inventory_fish(row)


def test_imagej_single_ifd_hyperstack_is_refused_clearly(fish_row, tmp_path):
    stack = np.zeros((N_VOLUMES, 16, 20), np.uint16)
    # Fiji's layout for stacks > 4 GB: one IFD, the frames stored contiguously after it
    tifffile.imwrite(tmp_path / "plane0.tif", stack, imagej=True, truncate=True, metadata={"axes": "TYX"})
    with tifffile.TiffFile(tmp_path / "plane0.tif") as tif:
        assert len(tif.pages) == 1 and tif.series[0].shape[0] == N_VOLUMES
    with pytest.raises(InputDataError, match=f"ImageJ/Fiji hyperstack holding {N_VOLUMES} images in 1 IFD"):
        inventory_fish(fish_row)


def test_scanimage_input_with_header_frame_times(fish_row, tmp_path):
    """A ScanImage acquisition (2 channels, flyback, incomplete last volume) without a
    frame_times file: planes, layout and frame times come from the headers."""
    from scanimage_files import FLYBACK, FRAME_RATE_HZ, SLICES, truth_movie, write_acquisition

    files = write_acquisition(tmp_path, truth_movie(volumes=9), pages_per_file=25, drop_last_pages=2)
    row = {**fish_row, "input_type": "scanimage", "scanimage": str(tmp_path / "fish_*.tif"), "channel": 2,
           "n_planes": SLICES, "volume_rate_hz": FRAME_RATE_HZ / (SLICES + FLYBACK)}
    del row["frame_times"]
    inventory = inventory_fish(row)
    assert [p["n_frames"] for p in inventory["planes"]] == [8] * SLICES
    assert inventory["scanimage"]["incomplete_last_volume_dropped"] is True
    assert [f["path"] for f in inventory["scanimage"]["files"]] == files
    assert inventory["scanimage"]["layout"]["n_flyback"] == FLYBACK
    assert inventory["frame_times"]["clock"].startswith("imaging")
    assert inventory["tail_log"]["covers_imaging"].startswith("not decidable")
    with pytest.raises(InputDataError, match="channel 3 was not saved"):
        inventory_fish({**row, "channel": 3})


@pytest.fixture
def real_session(tmp_path):
    """A ONE cache (tables built with ONE's make_parquet_db) of one session assembled from
    the REAL IBL fixtures (spikes in alf/probe00, one trial table, the radians wheel) plus a
    made-up 60 Hz camera trace. They come from different sessions: fine for an inventory."""
    fixtures = require_real_ibl_fixtures()
    alf = tmp_path / "cache" / "lab" / "Subjects" / "ibl" / "2020-08-26" / "001" / "alf"
    shutil.copytree(fixtures / "spikes", alf / "probe00")
    for path in (fixtures / "trials" / "2020-08-26").iterdir():
        shutil.copy(path, alf / f"_ibl_{path.name}")
    for name in ["wheel.position.npy", "wheel.timestamps.npy"]:
        shutil.copy(fixtures / "wheel_radians_irregular" / name, alf / f"_ibl_{name}")
    camera_times = np.arange(0.0, 200.0, 1 / 60)
    np.save(alf / "_ibl_leftCamera.times.npy", camera_times)
    np.save(alf / "leftCamera.ROIMotionEnergy.npy", np.random.default_rng(0).gamma(2.0, 300.0, camera_times.size))
    make_parquet_db(tmp_path / "cache")
    return {"session_id": "real", "subject": "ibl", "one_cache": str(tmp_path / "cache"),
            "session": "lab/Subjects/ibl/2020-08-26/001", "probes": "probe00"}


def test_real_ibl_session_inventory(real_session):
    alf = Path(real_session["one_cache"]) / real_session["session"] / "alf"
    with pytest.raises(InputDataError, match="no cluster locations"):
        inventory_session(real_session)
    clusters = np.load(alf / "probe00" / "spikes.clusters.npy")
    np.save(alf / "probe00" / "clusters.brainLocationAcronyms_ccf_2017.npy", np.full(clusters.max() + 1, "CA1"))
    make_parquet_db(real_session["one_cache"])
    inventory = inventory_session(real_session)
    assert inventory["probe_collections"] == {"alf/probe00": {"n_spikes": 124_905, "n_clusters": 500}}  # README
    assert inventory["n_trials"] == 752
    assert inventory["camera"] == "left"
    assert 0 <= inventory["spike_span_s"][0] < inventory["spike_span_s"][1] <= 120
    assert any(p["path"].endswith("_ibl_trials.choice.npy") for p in inventory["files"])
    assert "firstMovement_times" not in inventory["trial_attributes"]  # not in this real table


def test_session_spike_arrays_must_agree(real_session):
    alf = Path(real_session["one_cache"]) / real_session["session"] / "alf"
    np.save(alf / "probe00" / "clusters.brainLocationAcronyms_ccf_2017.npy", np.array(["CA1"] * 500))
    make_parquet_db(real_session["one_cache"])
    np.save(alf / "probe00" / "spikes.clusters.npy", np.zeros(10, np.uint32))
    with pytest.raises(InputDataError, match="spikes.times.npy has 124905") as excinfo:
        inventory_session(real_session)
    assert excinfo.value.path.endswith("spikes.clusters.npy")


def test_ambiguous_alf_names_are_an_error(real_session):
    alf = Path(real_session["one_cache"]) / real_session["session"] / "alf"
    shutil.copy(alf / "_ibl_trials.choice.npy", alf / "trials.choice.npy")
    np.save(alf / "probe00" / "clusters.brainLocationAcronyms_ccf_2017.npy", np.array(["CA1"] * 500))
    make_parquet_db(real_session["one_cache"])
    with pytest.raises(InputDataError, match="trials.choice held by two files"):
        inventory_session(real_session)
