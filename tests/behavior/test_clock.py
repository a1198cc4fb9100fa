"""Clock synchronisation of align_behavior: an offset between the imaging and tail clocks is
corrected with a frame trigger (volume means equal those on the true times) and refused
without one; drift is fitted; a trigger with missing pulses or a bad fit is refused."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest

from pipeline.behavior.clock import fit_clock
from pipeline.behavior.config import TailAlignmentConfig
from pipeline.behavior.tail import align_behavior
from pipeline.io.errors import InputDataError

from scanimage_files import FLYBACK, FRAME_RATE_HZ, SLICES, static_metadata, truth_movie, write_acquisition

VOLUMES = 40
FRAMES_PER_VOLUME = SLICES + FLYBACK
OFFSET_S = 0.4  # the imaging clock runs 0.4 s behind the tail clock (on top of its own zero)
THETAS = [f"theta_{k:02d}" for k in range(6)]


def recording(folder, *, trigger: bool, drop_pulse: int | None = None):
    """A ScanImage fish (single saved channel) whose header times are on the imaging clock,
    the tail log on the behaviour clock; returns (row, true frame starts on the tail clock)."""
    n_frames = VOLUMES * FRAMES_PER_VOLUME
    true_starts = 2.0 + np.arange(n_frames) / FRAME_RATE_HZ  # tail clock
    header_starts = true_starts - (2.0 + OFFSET_S)  # imaging clock: 0 at the acquisition trigger, 0.4 s late
    write_acquisition(folder, truth_movie(volumes=VOLUMES, channels=(1,)), pages_per_file=60,
                      meta=static_metadata(channels=(1,)), frame_starts_s=header_starts)
    rng = np.random.default_rng(0)
    t = 1.3e-3 + np.arange(0.0, true_starts[-1] + 2.0, 1 / 200.0)  # >= 0.37 ms from every frame boundary
    tail = pd.DataFrame({"t": t, "frame": np.arange(t.size)})
    for k, name in enumerate(THETAS):
        tail[name] = 0.2 * (k + 1) * np.sin(2 * np.pi * 1.3 * t + k) + 0.02 * rng.standard_normal(t.size)
    tail.to_csv(folder / "tail_log.csv", index=False)
    pd.DataFrame({"t_start": [0.0], "t_end": [100.0], "epoch": ["static"], "direction_deg": [0]}).to_csv(
        folder / "stimulus_log.csv", index=False)
    row = {"fish_id": "f", "input_type": "scanimage", "scanimage": str(folder / "fish_*.tif"), "n_planes": SLICES,
           "volume_rate_hz": FRAME_RATE_HZ / FRAMES_PER_VOLUME, "tail_rate_hz": 200.0,
           "tail_log": str(folder / "tail_log.csv"), "stimulus_log": str(folder / "stimulus_log.csv")}
    if trigger:
        pulses = true_starts + 2e-4 * rng.standard_normal(true_starts.size)  # logged with 0.2 ms jitter
        if drop_pulse is not None:
            pulses = np.delete(pulses, drop_pulse)
        pd.DataFrame({"t": pulses}).to_csv(folder / "frame_trigger.csv", index=False)
        row["frame_trigger"] = str(folder / "frame_trigger.csv")
    return row, true_starts


def volume_means_on_true_times(row, true_starts):
    """Brute force: mean of the tracked samples in [start of plane 0, end of the last plane)."""
    tail = pd.read_csv(row["tail_log"])
    starts = true_starts.reshape(VOLUMES, FRAMES_PER_VOLUME)
    means = []
    for v in range(VOLUMES):
        inside = (tail.t >= starts[v, 0]) & (tail.t < starts[v, SLICES - 1] + 1 / FRAME_RATE_HZ)
        means.append(tail.loc[inside, THETAS].mean().to_numpy())
    return np.array(means)


def test_offset_is_corrected_with_a_trigger(tmp_path):
    row, true_starts = recording(tmp_path, trigger=True)
    align_behavior(row, tmp_path / "b.h5", TailAlignmentConfig())
    with h5py.File(tmp_path / "b.h5") as f:
        theta = f["tail/theta"][()]
        assert f.attrs["clock_sync"] == "frame_trigger"
        assert f.attrs["clock_offset_s"] == pytest.approx(2.0 + OFFSET_S, abs=1e-4)
        assert abs(f.attrs["clock_drift_ppm"]) < 50
        np.testing.assert_allclose(f["time/frame_times_s"][()],
                                   true_starts.reshape(VOLUMES, FRAMES_PER_VOLUME)[:, :SLICES].T, atol=3e-4)
    np.testing.assert_allclose(theta, volume_means_on_true_times(row, true_starts), atol=1e-12)


def test_offset_is_refused_without_a_trigger(tmp_path):
    row, _ = recording(tmp_path, trigger=False)
    with pytest.raises(InputDataError, match="imaging computer's clock") as err:
        align_behavior(row, tmp_path / "b.h5", TailAlignmentConfig())
    assert "fish_00001.tif" in str(err.value) and "tail_log.csv" in str(err.value)
    assert not (tmp_path / "b.h5").exists()


def test_trigger_with_a_missing_pulse_is_refused(tmp_path):
    row, _ = recording(tmp_path, trigger=True, drop_pulse=57)
    with pytest.raises(InputDataError, match="1 missing frame-trigger pulse") as err:
        align_behavior(row, tmp_path / "b.h5", TailAlignmentConfig())
    assert "frame_trigger.csv" in str(err.value) and "fish_00001.tif" in str(err.value)
    assert not (tmp_path / "b.h5").exists()


def test_drift_of_100_ppm_over_an_hour_is_fitted_within_5_ppm():
    rng = np.random.default_rng(1)
    t_imaging = np.arange(0, 3600, 1 / (1.1 * 5))  # 5 planes at 1.1 Hz for one hour
    t_behaviour = 12.3 + (1 + 100e-6) * t_imaging + 5e-4 * rng.standard_normal(t_imaging.size)
    fit = fit_clock(t_imaging, t_behaviour, 0.005, "frames.csv", "trigger.csv")
    assert abs(fit.drift_ppm - 100) < 5 and fit.offset_s == pytest.approx(12.3, abs=1e-3)
    # one pulse lost in the hour is found, not absorbed by the fit
    with pytest.raises(InputDataError, match="missing frame-trigger pulse"):
        fit_clock(t_imaging[:-1], np.delete(t_behaviour, 1000)[:-1], 0.005, "frames.csv", "trigger.csv")


def test_count_mismatch_and_residual_beyond_tolerance_are_refused():
    t_imaging = np.arange(200) / 10.0
    with pytest.raises(InputDataError, match="199 frame-trigger pulses but frames.csv has 200 frames"):
        fit_clock(t_imaging, t_imaging[:-1] + 1.0, 0.005, "frames.csv", "trigger.csv")
    wobbly = t_imaging + 0.02 * np.sin(t_imaging)  # 20 ms non-linear wander
    with pytest.raises(InputDataError, match="tolerance 5.00 ms") as err:
        fit_clock(t_imaging, wobbly, 0.005, "frames.csv", "trigger.csv")
    assert str(err.value).startswith("trigger.csv")
