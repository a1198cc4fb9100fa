"""Tail angles per imaging frame by timestamps: brute-force reference, any tail rate,
stimulus state, and bad logs."""

from __future__ import annotations

import h5py
import numpy as np
import pandas as pd
import pytest

from pipeline.behavior.config import TailAlignmentConfig
from pipeline.behavior.tail import EPOCH_CODES, align_behavior
from pipeline.io.errors import InputDataError

N_PLANES, N_VOLUMES, RATE_HZ = 3, 30, 1.1
THETAS = [f"theta_{k:02d}" for k in range(6)]
CONFIG = TailAlignmentConfig()


def write_recording(folder, tail_rate_hz=200.0, seed=0, drop_fraction=0.01):
    rng = np.random.default_rng(seed)
    frame_times = [{"volume": v, "plane": p, "t": 0.3 + v / RATE_HZ + p / (RATE_HZ * N_PLANES) + 1e-4 * rng.standard_normal()}
                   for v in range(N_VOLUMES) for p in range(N_PLANES)]
    pd.DataFrame(frame_times).to_csv(folder / "frame_times.csv", index=False)
    t = np.arange(-1.0, N_VOLUMES / RATE_HZ + 1.5, 1 / tail_rate_hz)
    t = t + 0.05 / tail_rate_hz * rng.standard_normal(t.size)  # camera timestamp jitter
    t = np.sort(t[rng.random(t.size) > drop_fraction])  # dropped camera frames
    tail = pd.DataFrame({"t": t, "frame": np.arange(t.size)})
    for k, name in enumerate(THETAS):
        tail[name] = 0.2 * (k + 1) * np.sin(2 * np.pi * 0.3 * t + k) + 0.05 * rng.standard_normal(t.size)
    tail.to_csv(folder / "tail_log.csv", index=False)
    pd.DataFrame({"t_start": [0.0, 10.0, 16.0], "t_end": [10.0, 16.0, 40.0], "epoch": ["static", "moving", "static"],
                  "direction_deg": [90, 90, 135]}).to_csv(folder / "stimulus_log.csv", index=False)
    return {"fish_id": "f", "n_planes": N_PLANES, "volume_rate_hz": RATE_HZ, "tail_rate_hz": tail_rate_hz,
            "tail_log": str(folder / "tail_log.csv"), "stimulus_log": str(folder / "stimulus_log.csv"),
            "frame_times": str(folder / "frame_times.csv")}


def brute_force(row):
    """Loop over volumes and plane frames; average, per segment, the tracked samples whose
    time falls inside (pandas' mean skips NaN column by column)."""
    tail = pd.read_csv(row["tail_log"])
    frames = pd.read_csv(row["frame_times"]).sort_values(["plane", "volume"])
    d = 1 / (RATE_HZ * N_PLANES)
    per_volume = []
    for v in range(N_VOLUMES):
        times = frames[frames.volume == v].sort_values("plane")["t"].to_numpy()
        inside = (tail.t >= times[0] - d / 2) & (tail.t < times[-1] + d / 2)
        per_volume.append(tail.loc[inside, THETAS].mean().to_numpy())
    per_frame = np.zeros((N_PLANES, N_VOLUMES, 6))
    for r in frames.itertuples():
        inside = (tail.t >= r.t - d / 2) & (tail.t < r.t + d / 2)
        per_frame[r.plane, r.volume] = tail.loc[inside, THETAS].mean().to_numpy()
    return np.array(per_volume), per_frame


@pytest.mark.parametrize("tail_rate_hz", [200.0, 250.0, 700.0])
def test_averages_equal_brute_force_at_any_tail_rate(tmp_path, tail_rate_hz):
    row = write_recording(tmp_path, tail_rate_hz)
    out = tmp_path / "behavior.h5"
    align_behavior(row, out, CONFIG)
    expected_volume, expected_frame = brute_force(row)
    with h5py.File(out) as f:
        np.testing.assert_allclose(f["tail/theta"][()], expected_volume, atol=1e-12)
        np.testing.assert_allclose(f["tail/theta_per_plane_frame"][()], expected_frame, atol=1e-12)
        np.testing.assert_allclose(f["tail/tail_sum"][()], expected_volume.sum(axis=1), atol=1e-12)
        samples = f["tail/n_samples"][()]
        assert f.attrs["tail_rate_hz_measured"] == pytest.approx(tail_rate_hz, rel=0.02)
    # one volume lasts 1/1.1 s: that many samples, less the dropped ones
    assert np.all(np.abs(samples - tail_rate_hz / RATE_HZ) <= 0.05 * tail_rate_hz / RATE_HZ + 2)


def test_stimulus_state_per_volume(tmp_path):
    row = write_recording(tmp_path)
    align_behavior(row, tmp_path / "b.h5", CONFIG)
    with h5py.File(tmp_path / "b.h5") as f:
        start, end = f["time/volume_start_s"][()], f["time/volume_end_s"][()]
        centre = (start + end) / 2
        epoch, direction, moving = f["stimulus/epoch"][()], f["stimulus/direction_deg"][()], f["stimulus/moving_fraction"][()]
    inside_moving = (centre >= 10) & (centre < 16)
    assert np.all(epoch[inside_moving] == EPOCH_CODES["moving"]) and np.all(epoch[~inside_moving] == EPOCH_CODES["static"])
    assert np.all(direction[centre >= 16] == 135)
    assert np.all(moving[(start >= 10) & (end <= 16)] == 1.0) and np.all(moving[end <= 10] == 0.0)
    straddling = (start < 10) & (end > 10)
    assert np.all((moving[straddling] > 0) & (moving[straddling] < 1))


def test_frame_start_times_shift_the_intervals(tmp_path):
    row = write_recording(tmp_path)
    align_behavior(row, tmp_path / "mid.h5", CONFIG)
    align_behavior(row, tmp_path / "start.h5", TailAlignmentConfig(frame_times_mark="start"))
    with h5py.File(tmp_path / "mid.h5") as a, h5py.File(tmp_path / "start.h5") as b:
        shift = b["time/volume_start_s"][()] - a["time/volume_start_s"][()]
    np.testing.assert_allclose(shift, 1 / (RATE_HZ * N_PLANES) / 2)


def _short_log(row):
    tail = pd.read_csv(row["tail_log"])
    tail[tail.t < 20].to_csv(row["tail_log"], index=False)


def _untracked_most_of_the_time(row):
    tail = pd.read_csv(row["tail_log"])
    tail.loc[(tail.t > 3) & (tail.t < 12), "theta_05"] = np.nan  # 9 of 27 s: a third of the volumes
    tail.to_csv(row["tail_log"], index=False)


def _backwards_time(row):
    tail = pd.read_csv(row["tail_log"])
    tail.loc[100, "t"] = tail.loc[98, "t"]
    tail.to_csv(row["tail_log"], index=False)


def _nan_time(row):
    tail = pd.read_csv(row["tail_log"])
    tail.loc[50, "t"] = np.nan
    tail.to_csv(row["tail_log"], index=False)


def _plane_missing_frames(row):
    frames = pd.read_csv(row["frame_times"])
    frames.drop(index=frames.index[-1]).to_csv(row["frame_times"], index=False)


@pytest.mark.parametrize(
    "break_log, file_name, message",
    [
        (_short_log, "tail_log.csv", "must cover the whole imaging"),
        (_untracked_most_of_the_time, "tail_log.csv", r"3\d% of 30 volumes are invalid"),
        (_backwards_time, "tail_log.csv", "do not increase at row 100"),
        (_nan_time, "tail_log.csv", r"missing \(NaN\)"),
        (_plane_missing_frames, "frame_times.csv", "same number of frames"),
    ],
)
def test_bad_logs_fail_naming_the_file_and_write_nothing(tmp_path, break_log, file_name, message):
    row = write_recording(tmp_path)
    break_log(row)
    out = tmp_path / "out" / "behavior.h5"
    with pytest.raises(InputDataError, match=message) as excinfo:
        align_behavior(row, out, CONFIG)
    assert excinfo.value.path.endswith(file_name)
    assert not out.exists()


def test_short_untracked_stretches_are_tolerated(tmp_path):
    row = write_recording(tmp_path)
    tail = pd.read_csv(row["tail_log"])
    tail.loc[(tail.t > 5) & (tail.t < 5.05), "theta_02"] = np.nan  # 50 ms untracked
    tail.to_csv(row["tail_log"], index=False)
    align_behavior(row, tmp_path / "b.h5", CONFIG)
    expected, _ = brute_force(row)
    with h5py.File(tmp_path / "b.h5") as f:
        np.testing.assert_allclose(f["tail/theta"][()], expected, atol=1e-12)


def brute_force_valid(row, max_gap_s):
    """A volume is valid unless, for some segment, two consecutive tracked samples (or the
    imaging span's edges) more than max_gap_s apart enclose part of it."""
    tail = pd.read_csv(row["tail_log"])
    frames = pd.read_csv(row["frame_times"]).sort_values(["plane", "volume"])
    d = 1 / (RATE_HZ * N_PLANES)
    bounds = [(frames[frames.volume == v].t.min() - d / 2, frames[frames.volume == v].t.max() + d / 2)
              for v in range(N_VOLUMES)]
    span = (bounds[0][0], bounds[-1][1])
    valid = np.ones(N_VOLUMES, bool)
    for name in THETAS:
        tracked = [span[0]] + [t for t in tail.t[tail[name].notna()] if span[0] < t < span[1]] + [span[1]]
        for a, b in zip(tracked[:-1], tracked[1:]):
            if b - a > max_gap_s:
                for v, (start, end) in enumerate(bounds):
                    if start < b and end > a:
                        valid[v] = False
    return valid


def test_gaps_mark_volumes_invalid_per_segment_and_nan_is_skipped_per_segment(tmp_path, caplog):
    row = write_recording(tmp_path)
    tail = pd.read_csv(row["tail_log"])
    tail.loc[(tail.t > 5) & (tail.t < 5.5), "theta_05"] = np.nan  # the tip lost for 0.5 s
    tail.loc[tail.index % 7 == 0, "theta_04"] = np.nan  # and often one sample at a time
    tail = tail[(tail.t < 11) | (tail.t > 11.4)]  # camera frames dropped for 0.4 s
    tail.to_csv(row["tail_log"], index=False)
    align_behavior(row, tmp_path / "b.h5", CONFIG)
    expected_theta, _ = brute_force(row)
    expected_valid = brute_force_valid(row, CONFIG.max_gap_s)
    with h5py.File(tmp_path / "b.h5") as f:
        valid, theta, n = f["tail/valid"][()], f["tail/theta"][()], f["tail/n_samples"][()]
        assert f.attrs["invalid_fraction"] == pytest.approx(np.mean(~expected_valid))
    np.testing.assert_array_equal(valid, expected_valid)
    assert 2 <= (~valid).sum() <= 6  # the two stretches, each over one or two volumes
    np.testing.assert_allclose(theta, expected_theta, atol=1e-12)  # segment 4 keeps its tracked samples
    assert np.all(n[:, 4] < n[:, 3])
    assert "invalid" in caplog.text
