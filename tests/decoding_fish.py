"""A synthetic fish for decoder tests, at ground-truth level (no imaging): the simulator's
logs, its true dF/F plus measurement noise as the neural file, and the real tail alignment
as the behaviour file. Both files follow the stage contracts (docs/architecture.md)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from pipeline.behavior.config import TailAlignmentConfig
from pipeline.behavior.tail import align_behavior
from pipeline.io.h5 import write_dataset
from pipeline.synth.config import ZebrafishSynthParams
from pipeline.synth.zebrafish import simulate_fish

RECORDING = dict(volume_rate_hz=1.1, n_planes=2, pixel_size_um=1.2, plane_spacing_um=7.0, tail_rate_hz=200.0)


def make_decoding_fish(folder: Path, n_volumes: int = 800, neurons_per_plane: int = 40, seed: int = 3,
                       dff_noise: float = 0.05) -> tuple[Path, Path, Path]:
    """Write ``neural.h5``, ``behavior.h5`` and ``truth.h5`` into ``folder``; return their paths.

    Eight driver neurons per side, a more active spontaneous latent, a higher bout gain and a
    sharper left/right choice than the defaults make frequent, lateralised bouts, so a
    12-minute recording holds enough behaviour to learn from (a ridge regression from the
    same-frame activity reaches tail-sum r ~ 0.65 on the last 15 %)."""
    folder.mkdir(parents=True, exist_ok=True)
    params = ZebrafishSynthParams(n_volumes=n_volumes, frame_height_px=64, frame_width_px=64,
                                  neurons_per_plane=neurons_per_plane, static_duration_s=20.0,
                                  moving_duration_s=10.0, n_drivers_per_side=8, driver_latent_mean=0.5,
                                  bout_rate_gain_hz=3.0, bout_side_scale_hz=0.1)
    truth = folder / "truth.h5"
    simulate_fish(folder / "tail_log.csv", folder / "stimulus_log.csv", folder / "frame_times.csv",
                  folder / "region_mask.tif", truth, params, seed=seed, **RECORDING)
    row = {"fish_id": "synthetic", "tail_log": str(folder / "tail_log.csv"),
           "stimulus_log": str(folder / "stimulus_log.csv"), "frame_times": str(folder / "frame_times.csv"),
           **RECORDING}
    behavior = folder / "behavior.h5"
    align_behavior(row, behavior, TailAlignmentConfig())
    rng = np.random.default_rng(seed)
    with h5py.File(truth, "r") as t:
        dff = t["calcium/dff"][()]
        position = t["neurons/position_um"][()]
        plane, centroid = t["neurons/plane"][()], t["neurons/centroid_px"][()]
        region = t["neurons/region"].asstr()[()]
        frame_times = t["timing/frame_times"][()]
    neural = folder / "neural.h5"
    with h5py.File(neural, "w") as f:
        write_dataset(f, "neurons/dff", dff + dff_noise * rng.standard_normal(dff.shape), "1", "true dF/F + noise")
        write_dataset(f, "neurons/position_um", position, "um", "(x, y, z)")
        write_dataset(f, "neurons/plane", plane, "index", "imaging plane")
        write_dataset(f, "neurons/centroid_px", centroid, "px", "(y, x)")
        write_dataset(f, "neurons/region", region, "label", "region")
        write_dataset(f, "time/frame_times_s", frame_times, "s", "frame times (planes, volumes)")
    return neural, behavior, truth
