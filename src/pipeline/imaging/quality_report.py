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

z position from a reference z-stack (per plane, optional): a stack of images around the
plane's nominal depth (middle slice = nominal depth, ``zstack_step_um`` apart; the fish
table's ``zstack`` / ``zstack_step_um`` columns; as suite2p's ``compute_zpos``). The stack is
aligned in xy to the session's mean registered image (phase correlation with its middle
slice, for the template's offset); then per chunk of ``Z_CHUNK_S`` seconds the mean of the
good registered frames is correlated (Pearson r over the valid region) with every slice, and
the z position is the best slice refined by a parabola through its neighbours' r:
``z = (k* + 0.5 (r[k*-1] - r[k*+1]) / (r[k*-1] - 2 r[k*] + r[k*+1]) - middle) * step`` (um, +
= deeper). Written per chunk to the z-position table and summarised in the drift table
(``z_start_um``, ``z_end_um``: first and last chunk).

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
from pipeline.io.errors import InputDataError  # noqa: E402

REGION_COLOURS = {"Pt": "tab:red", "nMLF": "tab:green", "Hb": "tab:blue", "other": "0.6", "unassigned": "0.8"}
DRIFT_COLUMNS = ["plane", "n_frames", "n_bad_frames", "corr_slope_per_hour", "corr_drop", "bidi_phase_mean_px",
                 "z_start_um", "z_end_um"]
Z_POSITION_COLUMNS = ["plane", "t_s", "z_um", "peak_corr"]
#: Length of a chunk of frames averaged for one z position estimate (s); as the 60 s trend
#: window, a property of the diagnostic rather than of any result.
Z_CHUNK_S = 20.0


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


def _phase_correlation_shift(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """(dy, dx) px such that ``a(y, x) ~ b(y - dy, x - dx)`` (peak of the cross-power spectrum
    divided by the square root of its magnitude, refined by a parabola per axis)."""
    fa, fb = np.fft.fft2(a - a.mean()), np.fft.fft2(b - b.mean())
    cross = fa * np.conj(fb)
    r = np.fft.ifft2(cross / np.maximum(np.sqrt(np.abs(cross)), 1e-12)).real  # half-whitened: a smooth peak
    iy, ix = np.unravel_index(np.argmax(r), r.shape)
    shift = []
    for i, line in ((iy, r[:, ix]), (ix, r[iy, :])):
        n = line.size
        lo, mid, hi = line[(i - 1) % n], line[i], line[(i + 1) % n]
        den = lo - 2 * mid + hi
        shift.append((i if i <= n // 2 else i - n) + (0.5 * (lo - hi) / den if den < 0 else 0.0))
    return np.asarray(shift)


def z_position(registered_path, stack: np.ndarray, step_um: float, q: "PlaneQuality",
               chunk_s: float = Z_CHUNK_S) -> pd.DataFrame:
    """z position (um, + = deeper, 0 = the stack's middle slice) of one plane per chunk of
    ``chunk_s`` s from its reference ``stack`` (slices, Ly, Lx); module docstring. Columns
    t_s (chunk's mean frame time), z_um, peak_corr. Chunks without good frames are left out."""
    stack = np.asarray(stack, dtype=np.float64)
    n_slices = stack.shape[0]
    shift = _phase_correlation_shift(q.mean_image.astype(float), stack[n_slices // 2])
    aligned = np.stack([ndimage.shift(s, shift, order=1, mode="nearest") for s in stack])
    margin = int(np.ceil(np.abs(shift).max())) + 4
    mask = np.zeros(q.mean_image.shape, bool)
    mask[margin:-margin, margin:-margin] = True
    if q.valid_region is not None:
        mask &= q.valid_region
    ref = aligned[:, mask]
    ref = (ref - ref.mean(axis=1, keepdims=True)) / ref.std(axis=1, keepdims=True)
    t0 = q.times_s[0]
    chunk = np.floor((q.times_s - t0) / chunk_s).astype(int)
    rows = []
    with h5py.File(registered_path, "r") as f:
        movie = f["registered"]
        for c in np.unique(chunk):
            frames = np.flatnonzero((chunk == c) & ~q.bad_frame)
            if frames.size == 0:
                continue
            mean = movie[frames[0]:frames[-1] + 1][frames - frames[0]].mean(axis=0)[mask].astype(np.float64)
            r = ref @ ((mean - mean.mean()) / mean.std()) / mask.sum()
            k = int(np.argmax(r))
            frac = 0.0
            if 0 < k < n_slices - 1 and (den := r[k - 1] - 2 * r[k] + r[k + 1]) < 0:
                frac = 0.5 * (r[k - 1] - r[k + 1]) / den
            rows.append([float(q.times_s[frames].mean()), (k + frac - n_slices // 2) * step_um, float(r[k])])
    return pd.DataFrame(rows, columns=Z_POSITION_COLUMNS[1:])


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


def drift_table(planes: Sequence[PlaneQuality], z_positions: Sequence[pd.DataFrame | None]) -> pd.DataFrame:
    """One row per plane: :data:`DRIFT_COLUMNS` (z columns NaN for a plane without a stack)."""
    rows = []
    for p, (q, z) in enumerate(zip(planes, z_positions)):
        _, slope, drop = correlation_drift(q)
        bidi = float(np.mean(q.bidi_phase_px)) if q.bidi_phase_px is not None else float("nan")
        z_ends = (z.z_um.iloc[0], z.z_um.iloc[-1]) if z is not None and len(z) else (float("nan"),) * 2
        rows.append([p, len(q.corr_after), int(q.bad_frame.sum()), slope, drop, bidi, *z_ends])
    return pd.DataFrame(rows, columns=DRIFT_COLUMNS)


def quality_figure(fish_id: str, planes: Sequence[PlaneQuality], z_positions: Sequence[pd.DataFrame | None],
                   neural_path, n_examples: int = 5):
    """The figure page (module docstring); ``neural_path`` is the fish's neural file,
    ``z_positions`` each plane's :func:`z_position` table or None."""
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
        z = z_positions[p]
        if z is not None and len(z):
            az = ax.twinx()
            az.plot((z.t_s - q.times_s[0]) / 60.0, z.z_um, "o-", color="tab:purple", ms=3, lw=1.0)
            az.set_ylabel("z from stack (um, + deeper)", fontsize=7, color="tab:purple")
            az.tick_params(labelsize=7, colors="tab:purple")
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
                         png_path, table_path, z_table_path, zstack_paths: Sequence[str | os.PathLike] | None = None,
                         zstack_step_um: float | None = None) -> None:
    """Figure page (PNG), per-plane drift table and per-chunk z-position table (TSVs) of one
    fish; frame times (planes, volumes) s from the neural file's ``time/frame_times_s``
    (whatever source the input type had: file, ScanImage headers, NWB). ``zstack_paths``: one
    reference z-stack TIFF per plane (slices ``zstack_step_um`` apart, the middle one at the
    plane's nominal depth), or None (no z position; the z table has its header only).
    Written atomically."""
    import tifffile

    with h5py.File(neural_path, "r") as f:
        frame_times = f["time/frame_times_s"][()]
    planes = [read_plane_quality(path, frame_times[p]) for p, path in enumerate(registered_paths)]
    z_positions: list[pd.DataFrame | None] = [None] * len(planes)
    if zstack_paths:
        if not (zstack_step_um and zstack_step_um > 0):
            raise InputDataError(zstack_paths[0], f"a reference z-stack needs zstack_step_um > 0, got {zstack_step_um!r}")
        for p, (path, q) in enumerate(zip(zstack_paths, planes)):
            try:
                stack = tifffile.imread(path)
            except Exception as e:  # missing or unreadable file
                raise InputDataError(path, f"cannot read the reference z-stack: {type(e).__name__}: {e}") from e
            if stack.ndim != 3 or stack.shape[1:] != q.mean_image.shape or stack.shape[0] < 3:
                raise InputDataError(path, f"reference z-stack must be (>= 3 slices, {q.mean_image.shape[0]}, "
                                           f"{q.mean_image.shape[1]}) like the plane's frames, got {stack.shape}")
            z_positions[p] = z_position(registered_paths[p], stack, float(zstack_step_um), q)
    z_table = pd.concat([z.assign(plane=p) for p, z in enumerate(z_positions) if z is not None] or
                        [pd.DataFrame(columns=Z_POSITION_COLUMNS)])[Z_POSITION_COLUMNS]
    fig = quality_figure(fish_id, planes, z_positions, neural_path)
    with atomic_paths(png_path, table_path, z_table_path) as (tmp_png, tmp_table, tmp_z):
        fig.savefig(tmp_png, dpi=120, format="png")
        drift_table(planes, z_positions).to_csv(tmp_table, sep="\t", index=False, float_format="%.6g")
        z_table.to_csv(tmp_z, sep="\t", index=False, float_format="%.6g")
    plt.close(fig)
