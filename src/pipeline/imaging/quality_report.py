"""Per-fish imaging quality: z-drift diagnostic and one figure page for the Snakemake report.

z-drift diagnostic (per plane): when the focal plane drifts axially, nuclei leave and enter
focus and every frame's correlation to the (session-mean) template falls away from the
middle of the session. From ``corr_to_template_after`` (frames,) of the registered file and
the plane's frame times (s):

* ``corr_trend``: running median over ``window_s`` of the good frames' correlation;
* ``corr_slope_per_hour``: least-squares slope of the correlation against time (1/h);
* ``corr_drop``: median correlation of the middle fifth of the session minus the mean of the
  first and last fifths (1) -- positive for a drift away from the template in either direction
  (a slow drift makes the template the middle's image).

The figure page (:func:`quality_figure`): per plane a row of mean registered image (valid
region outlined), rigid shifts (bad frames marked), bidirectional phase, correlation trend;
one last row with the ROI map coloured by region and example dF/F traces.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Sequence

import h5py
import matplotlib
import numpy as np
import pandas as pd
from scipy import ndimage

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from pipeline.io.atomic import atomic_paths  # noqa: E402

REGION_COLOURS = {"Pt": "tab:red", "nMLF": "tab:green", "Hb": "tab:blue", "other": "0.6", "unassigned": "0.8"}
DRIFT_COLUMNS = ["plane", "n_frames", "n_bad_frames", "corr_slope_per_hour", "corr_drop", "bidi_phase_mean_px"]


@dataclass(frozen=True)
class PlaneQuality:
    """What the figure and the drift table need from one registered plane."""

    mean_image: np.ndarray  # (Ly, Lx) mean registered frame (movie units)
    valid_region: np.ndarray | None  # (Ly, Lx) bool, None when the backend does not write it
    rigid_shift_px: np.ndarray  # (T, 2) (dy, dx) px
    bad_frame: np.ndarray  # (T,) bool (all False when not written)
    bidi_phase_px: np.ndarray | None  # (T,) px
    corr_after: np.ndarray  # (T,) Pearson r with the template
    times_s: np.ndarray  # (T,) frame times (s)


def read_plane_quality(registered_path, times_s: np.ndarray) -> PlaneQuality:
    """Read a registered-plane file (any backend) and its frame times (T,) s."""
    with h5py.File(registered_path, "r") as f:
        n = f["rigid_shift_px"].shape[0]
        return PlaneQuality(
            mean_image=f["mean_registered"][()],
            valid_region=f["valid_region"][()] if "valid_region" in f else None,
            rigid_shift_px=f["rigid_shift_px"][()],
            bad_frame=f["bad_frame"][()].astype(bool) if "bad_frame" in f else np.zeros(n, bool),
            bidi_phase_px=f["bidi_phase_px"][()] if "bidi_phase_px" in f else None,
            corr_after=f["corr_to_template_after"][()],
            times_s=np.asarray(times_s, dtype=float),
        )


def correlation_drift(q: PlaneQuality, window_s: float = 60.0) -> tuple[np.ndarray, float, float]:
    """(corr_trend (T,), corr_slope_per_hour, corr_drop) of one plane (module docstring);
    NaN where fewer than 10 good frames exist."""
    good = ~q.bad_frame
    if good.sum() < 10:
        return np.full(len(q.corr_after), np.nan), float("nan"), float("nan")
    t, c = q.times_s[good], q.corr_after[good]
    dt = float(np.median(np.diff(t))) if len(t) > 1 else 1.0
    size = max(3, int(round(window_s / max(dt, 1e-9))) | 1)
    trend_good = ndimage.median_filter(c, size=size, mode="nearest")
    trend = np.interp(q.times_s, t, trend_good)
    slope = float(np.polyfit((t - t[0]) / 3600.0, c, 1)[0])
    fifth = max(1, len(c) // 5)
    middle = c[(len(c) - fifth) // 2:(len(c) + fifth) // 2]
    drop = float(np.median(middle) - 0.5 * (np.median(c[:fifth]) + np.median(c[-fifth:])))
    return trend, slope, drop


def drift_table(planes: Sequence[PlaneQuality]) -> pd.DataFrame:
    """One row per plane: :data:`DRIFT_COLUMNS`."""
    rows = []
    for p, q in enumerate(planes):
        _, slope, drop = correlation_drift(q)
        bidi = float(np.mean(q.bidi_phase_px)) if q.bidi_phase_px is not None else float("nan")
        rows.append([p, len(q.corr_after), int(q.bad_frame.sum()), slope, drop, bidi])
    return pd.DataFrame(rows, columns=DRIFT_COLUMNS)


def quality_figure(fish_id: str, planes: Sequence[PlaneQuality], neural_path, n_examples: int = 5):
    """The figure page (module docstring); ``neural_path`` is the fish's neural file."""
    n_planes = len(planes)
    fig, axes = plt.subplots(n_planes + 1, 4, figsize=(14, 2.8 * (n_planes + 1)), squeeze=False,
                             gridspec_kw={"width_ratios": [1, 2, 2, 2]})
    for p, q in enumerate(planes):
        ax = axes[p, 0]
        lo, hi = np.percentile(q.mean_image, [1, 99.5])
        ax.imshow(q.mean_image, cmap="gray", vmin=lo, vmax=hi)
        if q.valid_region is not None and not q.valid_region.all():
            ax.contour(q.valid_region.astype(float), levels=[0.5], colors="yellow", linewidths=0.8)
        ax.set_title(f"plane {p}: mean registered", fontsize=8)
        ax.axis("off")
        t_min = (q.times_s - q.times_s[0]) / 60.0
        ax = axes[p, 1]
        ax.plot(t_min, q.rigid_shift_px[:, 0], lw=0.7, label="dy")
        ax.plot(t_min, q.rigid_shift_px[:, 1], lw=0.7, label="dx")
        for t_bad in t_min[q.bad_frame]:
            ax.axvline(t_bad, color="red", alpha=0.25, lw=0.6)
        ax.set_title(f"rigid shift (px); {int(q.bad_frame.sum())} bad frames (red)", fontsize=8)
        ax.legend(fontsize=6, loc="upper right")
        ax = axes[p, 2]
        if q.bidi_phase_px is not None:
            ax.plot(t_min, q.bidi_phase_px, lw=0.8)
            ax.set_title(f"bidirectional phase (px), mean {np.mean(q.bidi_phase_px):.2f}", fontsize=8)
        else:
            ax.text(0.5, 0.5, "not estimated by this backend", ha="center", va="center", fontsize=8)
            ax.set_title("bidirectional phase", fontsize=8)
        ax = axes[p, 3]
        trend, slope, drop = correlation_drift(q)
        ax.plot(t_min, q.corr_after, lw=0.4, color="0.6")
        ax.plot(t_min, trend, lw=1.2, color="k")
        ax.set_title(f"z-drift: corr to template (trend {slope:+.3f}/h, mid-ends {drop:+.3f})", fontsize=8)
        for a in axes[p, 1:]:
            a.set_xlabel("time (min)", fontsize=7)
            a.tick_params(labelsize=7)
    with h5py.File(neural_path, "r") as f:
        centroid, plane = f["neurons/centroid_px"][()], f["neurons/plane"][()]
        region = f["neurons/region"].asstr()[()]
        dff = f["neurons/dff"]
        order = np.argsort(-np.var(dff[()], axis=1))[:n_examples] if dff.shape[0] else np.zeros(0, int)
        examples = dff[np.sort(order)] if order.size else np.zeros((0, dff.shape[1]))
        example_ids = np.sort(order)
    ax = axes[n_planes, 0]
    for name in np.unique(region):
        sel = region == name
        ax.scatter(centroid[sel, 1], centroid[sel, 0], s=4, c=REGION_COLOURS.get(name, "k"), label=name)
    ax.invert_yaxis()
    ax.set_aspect("equal")
    ax.set_title(f"{len(region)} ROIs by region (all planes)", fontsize=8)
    ax.legend(fontsize=6, markerscale=2, loc="upper right")
    ax.tick_params(labelsize=6)
    ax = axes[n_planes, 1]
    for k, (i, trace) in enumerate(zip(example_ids, examples)):
        ax.plot(trace + 2.0 * k, lw=0.6, label=f"#{i} plane {plane[i]}")
    ax.set_title(f"dF/F of the {len(example_ids)} most variable neurons (offset by 2)", fontsize=8)
    ax.set_xlabel("volume", fontsize=7)
    ax.legend(fontsize=5, loc="upper right")
    for a in axes[n_planes, 2:]:
        a.axis("off")
    fig.suptitle(f"imaging quality, fish {fish_id}", fontsize=10)
    fig.tight_layout()
    return fig


def write_quality_report(fish_id: str, registered_paths: Sequence[str | os.PathLike], neural_path,
                         png_path, table_path) -> None:
    """Figure page (PNG) and per-plane drift table (TSV) of one fish; frame times (planes,
    volumes) s from the neural file's ``time/frame_times_s`` (whatever source the input type
    had: file, ScanImage headers, NWB). Written atomically."""
    with h5py.File(neural_path, "r") as f:
        frame_times = f["time/frame_times_s"][()]
    planes = [read_plane_quality(path, frame_times[p]) for p, path in enumerate(registered_paths)]
    fig = quality_figure(fish_id, planes, neural_path)
    with atomic_paths(png_path, table_path) as (tmp_png, tmp_table):
        fig.savefig(tmp_png, dpi=120, format="png")
        drift_table(planes).to_csv(tmp_table, sep="\t", index=False, float_format="%.6g")
    plt.close(fig)
