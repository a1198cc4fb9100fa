"""The synthetic ScanImage hand-over (pipeline.synth.scanimage) reads back through the
ScanImage reader as the rendered planes (last volume dropped), with the anatomy channel
static, and its frame trigger relates the imaging clock to the tail clock as constructed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tifffile

from pipeline.behavior.clock import fit_clock
from pipeline.io.scanimage import iter_plane_frames, read_acquisition
from pipeline.synth.scanimage import IMAGING_CLOCK_DRIFT_PPM, write_scanimage_recording


def test_synthetic_acquisition_reads_back(tmp_path):
    rng = np.random.default_rng(0)
    n_planes, n_volumes, rate = 3, 8, 1.1
    movies = [rng.integers(0, 60000, (n_volumes, 10, 12), dtype=np.uint16) for _ in range(n_planes)]
    stacks = []
    for plane, movie in enumerate(movies):
        tifffile.imwrite(tmp_path / f"plane{plane}.tif", movie)
        stacks.append(str(tmp_path / f"plane{plane}.tif"))
    mid = 5.0 + np.arange(n_volumes)[None, :] / rate + (np.arange(n_planes)[:, None] + 0.5) / (rate * n_planes)
    pd.DataFrame([{"volume": v, "plane": p, "t": mid[p, v]} for v in range(n_volumes) for p in range(n_planes)]).to_csv(
        tmp_path / "frame_times.csv", index=False)
    files = [str(tmp_path / f"f_0000{k}.tif") for k in (1, 2)]
    write_scanimage_recording(stacks, tmp_path / "frame_times.csv", files, tmp_path / "trigger.csv",
                              volume_rate_hz=rate, seed=1)
    layout, starts, all_starts = read_acquisition(files, 2, n_planes)
    assert layout.n_volumes == n_volumes - 1 and layout.n_dropped_pages == 2 * n_planes - 1
    for plane in range(n_planes):
        np.testing.assert_array_equal(np.stack(list(iter_plane_frames(layout, plane))), movies[plane][:-1])
    anatomy = read_acquisition(files, 1, n_planes)[0]
    assert all((frame == movies[0][0]).all() for frame in iter_plane_frames(anatomy, 0))
    fit = fit_clock(all_starts, pd.read_csv(tmp_path / "trigger.csv")["t"].to_numpy(), 0.005, "f", "trigger.csv")
    assert fit.drift_ppm == pytest.approx(-IMAGING_CLOCK_DRIFT_PPM, abs=5)
    np.testing.assert_allclose(fit.to_behaviour_clock(starts), (mid - 0.5 / (rate * n_planes))[:, :-1], atol=1e-3)
