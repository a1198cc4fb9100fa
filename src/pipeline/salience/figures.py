"""Salience figures of NLP4Neuro (paper seed 000, Figs. 4-6), one paper column wide.

- Fig. 4 (:func:`salience_map_figure`): per fish, every neuron's (x, y) position in grey and
  the top-k salient neurons sized by global salience G and coloured by region.
- Fig. 5 (:func:`asymmetry_figure`): per fish, (left) true and predicted tail sum on the
  salience split; (right) signed tail-sum salience against x (distance from the midline,
  median x), top-k neurons highlighted: a lateralised circuit shows opposite signs on the
  two sides.
- Fig. 6 (:func:`moment_figure`): one fish and run, (top) true and predicted tail sum with
  the chosen frame marked; (bottom) neuron positions sized by moment-to-moment salience
  M(n, t) at that frame, coloured by region.
"""

from __future__ import annotations

import os
from typing import Sequence

import h5py
import numpy as np

from pipeline.report.figures import COLUMN_WIDTH_IN, paper_style, plt, save_figure
from pipeline.salience.ranking import top_k
from pipeline.salience.summary import FishSalience

REGION_COLORS = {"Pt": "#d62728", "nMLF": "#2ca02c", "Hb": "#1f77b4", "other": "#9467bd", "unassigned": "#7f7f7f"}


def _region_color(region: str) -> str:
    return REGION_COLORS.get(region, "#8c564b")


def _sizes(values: np.ndarray, largest: float = 40.0) -> np.ndarray:
    top = float(values.max()) if values.size and values.max() > 0 else 1.0
    return 4.0 + largest * values / top


def salience_map_figure(fish: Sequence[FishSalience], k: int, model: str):
    n = len(fish)
    columns = min(n, 3)
    rows = -(-n // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(COLUMN_WIDTH_IN, 1.5 * rows + 0.4), squeeze=False)
    for ax, entry in zip(axes.ravel(), fish):
        ranked = top_k(entry.global_salience, k)
        x, y = entry.position_um[:, 0], entry.position_um[:, 1]
        ax.scatter(x, y, s=2, c="#d0d0d0", linewidths=0)
        colors = [_region_color(r) for r in entry.region[ranked]]
        ax.scatter(x[ranked], y[ranked], s=_sizes(entry.global_salience[ranked]), c=colors, linewidths=0.3,
                   edgecolors="black", alpha=0.85)
        ax.set_title(entry.fish)
        ax.set_aspect("equal")
        ax.invert_yaxis()
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes.ravel()[n:]:
        ax.axis("off")
    present = sorted({r for entry in fish for r in entry.region[top_k(entry.global_salience, k)]})
    handles = [plt.Line2D([], [], marker="o", ls="", color=_region_color(r), label=r, markersize=4) for r in present]
    figure.legend(handles=handles, loc="lower center", ncol=len(handles), frameon=False, bbox_to_anchor=(0.5, -0.02))
    figure.suptitle(f"{model}: top-{k} salient neurons (size = salience)", fontsize=8)
    figure.tight_layout(rect=(0, 0.06, 1, 1))
    return figure


def _traces(ax, path: str | os.PathLike, frame: int | None = None) -> None:
    with h5py.File(path, "r") as f:
        true, predicted = f["frames/tail_sum_rad"][()], f["frames/predicted_tail_sum_rad"][()]
    t = np.arange(true.size)
    ax.plot(t, true, color="black", lw=0.8, label="true")
    ax.plot(t, predicted, color="#d62728", lw=0.8, label="predicted")
    if frame is not None:
        ax.axvline(frame, color="#1f77b4", lw=0.8, ls="--")
    ax.set_xlabel("frame of the salience split")
    ax.set_ylabel("tail sum (rad)")


def asymmetry_figure(fish: Sequence[FishSalience], example_paths: Sequence[str | os.PathLike], k: int, model: str):
    figure, axes = plt.subplots(len(fish), 2, figsize=(COLUMN_WIDTH_IN, 1.4 * len(fish) + 0.3), squeeze=False)
    for (trace_ax, scatter_ax), entry, path in zip(axes, fish, example_paths):
        _traces(trace_ax, path)
        trace_ax.set_title(entry.fish, loc="left")
        x = entry.position_um[:, 0] - np.median(entry.position_um[:, 0])
        ranked = top_k(entry.global_salience, k)
        scatter_ax.axhline(0, color="#999999", lw=0.5)
        scatter_ax.axvline(0, color="#999999", lw=0.5)
        scatter_ax.scatter(x, entry.signed_tail_sum, s=2, c="#c0c0c0", linewidths=0)
        scatter_ax.scatter(x[ranked], entry.signed_tail_sum[ranked], s=8,
                           c=[_region_color(r) for r in entry.region[ranked]], linewidths=0)
        scatter_ax.set_xlabel("x − midline (µm)")
        scatter_ax.set_ylabel("signed salience")
    figure.legend(*axes[0, 0].get_legend_handles_labels(), frameon=False, ncol=2, loc="lower center",
                  bbox_to_anchor=(0.5, 0.0))
    figure.suptitle(f"{model}: tail predictions and salience asymmetry", fontsize=8)
    figure.tight_layout(rect=(0, 0.05, 1, 1))
    return figure


def moment_figure(path: str | os.PathLike, frame: int, model: str):
    with h5py.File(path, "r") as f:
        moment = f["salience/moment"][()]
        position = f["neurons/position_um"][()]
        region = f["neurons/region"].asstr()[()]
        fish = f.attrs["fish"]
    frame = int(np.clip(frame, 0, moment.shape[0] - 1))
    figure, (trace_ax, map_ax) = plt.subplots(2, 1, figsize=(COLUMN_WIDTH_IN, 3.6),
                                              gridspec_kw={"height_ratios": [1, 1.6]})
    _traces(trace_ax, path, frame)
    figure.legend(*trace_ax.get_legend_handles_labels(), frameon=False, ncol=2, loc="upper right")
    figure.suptitle(f"{fish}, {model}: frame {frame}", x=0.02, ha="left", fontsize=8)
    salience = moment[frame]
    order = np.argsort(salience)
    map_ax.scatter(position[order, 0], position[order, 1], s=_sizes(salience[order]),
                   c=[_region_color(r) for r in region[order]], linewidths=0, alpha=0.8)
    map_ax.set_aspect("equal")
    map_ax.invert_yaxis()
    map_ax.set_xlabel("x (µm)")
    map_ax.set_ylabel("y (µm)")
    present = sorted(set(region))
    map_ax.legend(handles=[plt.Line2D([], [], marker="o", ls="", color=_region_color(r), label=r, markersize=4)
                           for r in present], frameon=False, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    figure.tight_layout()
    return figure


PCA_STYLES = {"intact": ("black", "intact"), "top_k_replaced": ("#d62728", "top-k salient replaced"),
              "random_k_replaced": ("#1f77b4", "k random replaced")}


def activation_pca_figure(path: str | os.PathLike, k: int, model: str):
    """App. A.13: the decoder's representation of the test windows on PC1/PC2 of the intact
    representation, intact vs top-k salient neurons replaced vs k random neurons replaced."""
    with h5py.File(path, "r") as f:
        points = {name: f[f"pca/{name}"][()] for name in PCA_STYLES}
        explained = f["pca/explained_variance_ratio"][()]
        fish = f.attrs["fish"]
    figure, ax = plt.subplots(figsize=(COLUMN_WIDTH_IN, 2.6))
    for name, (color, label) in PCA_STYLES.items():
        ax.scatter(points[name][:, 0], points[name][:, 1], s=3, color=color, alpha=0.5, linewidths=0,
                   label=label.replace("k", str(k), 1) if name != "intact" else label)
    ax.set_xlabel(f"PC1 ({100 * explained[0]:.0f} % of variance)")
    ax.set_ylabel(f"PC2 ({100 * explained[1]:.0f} %)")
    ax.legend(frameon=False, fontsize=7, markerscale=3)
    figure.suptitle(f"{fish}, {model}: decoder representation of the test windows", x=0.02, ha="left", fontsize=8)
    figure.tight_layout()
    return figure


def write_salience_figures(fish: Sequence[FishSalience], example_paths: Sequence[str | os.PathLike], k: int,
                           model: str, frame: int, outputs: dict[str, tuple[str, str]]) -> None:
    """Draw Figs. 4-6 and the App. A.13 PCA into ``outputs`` = {"map": (pdf, png),
    "asymmetry": ..., "moment": ..., "pca": ...};
    ``example_paths``: one salience file per fish (its first run); Fig. 6 uses the first."""
    with paper_style():
        save_figure(salience_map_figure(fish, k, model), *outputs["map"])
        save_figure(asymmetry_figure(fish, example_paths, k, model), *outputs["asymmetry"])
        save_figure(moment_figure(example_paths[0], frame, model), *outputs["moment"])
        save_figure(activation_pca_figure(example_paths[0], k, model), *outputs["pca"])
