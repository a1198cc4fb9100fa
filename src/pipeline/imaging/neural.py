"""Merge a fish's per-plane Suite2P outputs into one neural file (the decoders' input).

Each plane folder (ours, from :func:`pipeline.imaging.extraction.extract_plane`, or a
lab's existing ``suite2p/planeN``) contributes its ROIs classified as cells. Per neuron:

- ``F``, ``Fneu``, ``spks`` as Suite2P wrote them (neurons, volumes);
- ``dff`` with the detector offset removed and a smoothed running-percentile baseline
  (:mod:`pipeline.imaging.dff`); the neuropil coefficient is the plane folder's own (its
  ``ops``) when recorded (``neucoeff_source: ops``), else ``neucoeff``; per plane the
  dark level, coefficient and formula are recorded (``/planes/*``, attr ``dff_method``);
- classifier probability, plane, centroid (px), position (x, y, z) in um, and the region
  from the fish's region mask (``unassigned`` without one).

Cross-plane duplicates (a nucleus seen as ROIs of two adjacent planes,
:mod:`pipeline.imaging.duplicates`) are written to ``/duplicates`` with the settings in its
attributes; with ``duplicates: merge`` the worse ROI of each pair is also left out of
``/neurons``.

Planes are acquired at different times within a volume: ``/time/frame_times_s`` keeps
each plane's frame times (planes, volumes) and ``/neurons/plane`` says which row applies.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any, Mapping, Sequence

import h5py
import numpy as np

from pipeline.behavior.clock import imaging_frame_times
from pipeline.imaging import dff as dff_mod
from pipeline.imaging.config import NeuralFileConfig
from pipeline.imaging.duplicates import CrossPlaneDuplicates, find_cross_plane_duplicates
from pipeline.imaging.extraction import read_suite2p_plane
from pipeline.io.atomic import atomic_paths
from pipeline.io.dataverse import read_dataverse_plane
from pipeline.io.errors import InputDataError
from pipeline.io.h5 import write_dataset
from pipeline.io.nwb import read_nwb_plane
from pipeline.io.region_mask import UNASSIGNED, read_region_mask, region_at
from pipeline.provenance import code_version, config_hash

log = logging.getLogger(__name__)


def plane_dff(s2p, keep: np.ndarray, config: NeuralFileConfig, frame_rate_hz: float,
              source: str | Path) -> tuple[np.ndarray, float, float]:
    """dF/F (kept rois, frames) of one plane (:mod:`pipeline.imaging.dff`) and the neuropil
    coefficient and dark level (trace units) it used. ``s2p``: a Suite2P plane (with ops), or
    traces extracted elsewhere (NLP4Neuro Dataverse ``F.npy``, NWB ROI responses: no ops, no
    movie). For those, a plane without neuropil traces (all zero) gets no neuropil correction
    (r = 0), and ``offset_method: movie`` cannot estimate a dark level: 0 is used, with a
    warning naming ``source`` (give ``offset_method: config`` to subtract a known offset)."""
    ops = getattr(s2p, "ops", None)
    if ops is None:
        r = config.neucoeff if np.any(s2p.Fneu[keep]) else 0.0
        if config.offset_method == "movie":
            log.warning("%s: traces without a movie; no detector offset estimated (dark level 0). "
                        "Set neural_file.offset_method: config with offset_adu to subtract one.", source)
            dark = 0.0
        else:
            dark = dff_mod.dark_level(config.offset_method, mean_image=None, percentile=config.offset_percentile,
                                      offset_adu=config.offset_adu, movie_scale=1.0, source=source)
    else:
        r = s2p.neucoeff if (config.neucoeff_source == "ops" and s2p.neucoeff_in_ops) else config.neucoeff
        dark = dff_mod.dark_level(config.offset_method, mean_image=ops.get("meanImg"),
                                  percentile=config.offset_percentile, offset_adu=config.offset_adu,
                                  movie_scale=float(ops.get("movie_scale", 1.0)), source=s2p.folder / "ops.npy")
    dff, _ = dff_mod.delta_f_over_f(s2p.F[keep], s2p.Fneu[keep], neucoeff=r, dark=dark, frame_rate_hz=frame_rate_hz,
                                    baseline_window_s=config.baseline_window_s,
                                    baseline_percentile=config.baseline_percentile,
                                    baseline_smoothing_s=config.baseline_smoothing_s)
    return dff, float(r), float(dark)


def write_neural_file(
    fish_row: Mapping[str, Any],
    plane_folders: Sequence[str | Path],
    out_path: str | Path,
    config: NeuralFileConfig,
    *,
    source_checksums: Mapping[str, str] | None = None,
) -> None:
    """Merge ``plane_folders`` (one Suite2P plane folder per plane, in plane order)."""
    n_planes = int(fish_row["n_planes"])
    if len(plane_folders) != n_planes:
        raise ValueError(f"{len(plane_folders)} plane folders for {n_planes} planes")
    frames = imaging_frame_times(fish_row)
    frame_times = frames.times_s
    pixel_um, spacing_um = float(fish_row["pixel_size_um"]), float(fish_row["plane_spacing_um"])
    mask = read_region_mask(fish_row["region_table"]) if fish_row.get("region_table") else None

    columns: dict[str, list[np.ndarray]] = {k: [] for k in
                                            ["F", "Fneu", "Fc", "spks", "dff", "prob", "plane", "roi", "centroid",
                                             "centroid_weighted"]}
    readers = {"nlp4neuro_dataverse": lambda folder, plane: read_dataverse_plane(folder), "nwb": read_nwb_plane}
    segmented_input = fish_row.get("nwb_data", "segmented") == "segmented"  # raw NWB planes went through Suite2P
    read_plane = (readers.get(fish_row.get("input_type")) if segmented_input else None) or (
        lambda folder, plane: read_suite2p_plane(folder))
    plane_neucoeff, plane_dark, plane_method = [], [], []
    for plane, folder in enumerate(plane_folders):
        s2p = read_plane(folder, plane)
        if s2p.n_frames != frame_times.shape[1]:
            raise InputDataError(folder, f"{s2p.n_frames} frames but {frames.sources[0]} lists "
                                         f"{frame_times.shape[1]} for plane {plane}")
        keep = s2p.is_cell if config.cells_only else np.ones(s2p.n_rois, bool)
        if not keep.any():
            raise InputDataError(folder, "no ROI classified as a cell in this plane")
        columns["F"].append(s2p.F[keep])
        columns["Fneu"].append(s2p.Fneu[keep])
        columns["spks"].append(s2p.spks[keep])
        dff, r, dark = plane_dff(s2p, keep, config, float(fish_row["volume_rate_hz"]), folder)
        columns["dff"].append(dff)
        columns["Fc"].append(s2p.F[keep].astype(np.float64) - r * s2p.Fneu[keep])  # neuropil-corrected (no dark level)
        plane_neucoeff.append(r)
        plane_dark.append(dark)
        plane_method.append(dff_mod.describe(r, dark, config.baseline_percentile, config.baseline_window_s,
                                             config.baseline_smoothing_s))
        columns["prob"].append(s2p.iscell[keep, 1])
        columns["plane"].append(np.full(int(keep.sum()), plane))
        columns["roi"].append(np.flatnonzero(keep))
        columns["centroid"].append(s2p.centroid_px[keep])
        columns["centroid_weighted"].append(getattr(s2p, "weighted_centroid_px", s2p.centroid_px)[keep])
    merged = {k: np.concatenate(v) for k, v in columns.items()}
    duplicates = cross_plane_duplicates(merged, frame_times, pixel_um, config, fish_row["fish_id"])
    pair_rows = None if duplicates is None else {
        "kept_plane": merged["plane"][duplicates.kept], "kept_roi": merged["roi"][duplicates.kept],
        "partner_plane": merged["plane"][duplicates.dropped], "partner_roi": merged["roi"][duplicates.dropped]}
    if duplicates is not None and config.duplicates == "merge":
        kept = np.ones(merged["plane"].size, bool)
        kept[duplicates.dropped] = False
        merged = {k: v[kept] for k, v in merged.items()}
    plane = merged["plane"]
    centroid = merged["centroid"]
    position = np.column_stack([centroid[:, 1] * pixel_um, centroid[:, 0] * pixel_um, plane * spacing_um])
    regions = region_at(*mask, plane, centroid) if mask else np.full(plane.size, UNASSIGNED, dtype=object)
    log.info("fish %s: %d neurons over %d planes; regions %s", fish_row["fish_id"], plane.size, n_planes,
             {r: int(n) for r, n in zip(*np.unique(regions.astype(str), return_counts=True))})

    sources = [*frames.sources] + ([fish_row["region_table"]] if mask else [])
    with atomic_paths(out_path) as (tmp,):
        with h5py.File(tmp, "w") as f:
            f.attrs.update({
                "fish_id": str(fish_row["fish_id"]),
                "description": "per-neuron calcium traces of one fish, all planes (NLP4Neuro decoder input)",
                "volume_rate_hz": float(fish_row["volume_rate_hz"]),
                "n_planes": n_planes,
                "dff_method": " | ".join(f"plane {p}: {m}" for p, m in enumerate(plane_method)),
                "dff_offset_method": config.offset_method,
                "dff_neucoeff_source": config.neucoeff_source,
                "neural_file_config_json": json.dumps(asdict(config)),
                "source_files_json": json.dumps({str(p): (source_checksums or {}).get(str(p), "") for p in sources}),
                "plane_folders_json": json.dumps([str(p) for p in plane_folders]),
                "config_hash": config_hash({"neural_file": asdict(config), "fish": dict(fish_row)}),
                "code_version": code_version(),
            })
            write_dataset(f, "neurons/F", merged["F"], "a.u.", "Suite2P ROI fluorescence (neurons, volumes)")
            write_dataset(f, "neurons/Fneu", merged["Fneu"], "a.u.", "Suite2P neuropil fluorescence (neurons, volumes)")
            write_dataset(f, "neurons/dff", merged["dff"], "1", "dF/F (neurons, volumes); method in attr dff_method")
            write_dataset(f, "neurons/spks", merged["spks"], "a.u.", "Suite2P deconvolved activity (neurons, volumes)")
            write_dataset(f, "neurons/iscell_prob", merged["prob"], "1", "Suite2P classifier probability")
            write_dataset(f, "neurons/plane", plane, "index", "imaging plane; its frame times are time/frame_times_s[plane]")
            write_dataset(f, "neurons/roi", merged["roi"], "index", "ROI index in the plane's Suite2P output")
            write_dataset(f, "neurons/centroid_px", centroid, "px", "ROI centre (y, x) in its plane")
            write_dataset(f, "neurons/position_um", position, "um", "(x, y, z): x = col * pixel, y = row * pixel, z = plane * spacing")
            write_dataset(f, "neurons/region", regions, "label", "anatomical region from the region mask")
            write_dataset(f, "time/frame_times_s", frame_times, "s", "acquisition time of each plane's frames (planes, volumes)")
            write_dataset(f, "planes/dark_level", np.asarray(plane_dark), "trace units",
                          f"detector dark level d subtracted from F and Fneu (offset_method {config.offset_method})")
            write_dataset(f, "planes/neucoeff", np.asarray(plane_neucoeff), "1",
                          f"neuropil coefficient used per plane (neucoeff_source {config.neucoeff_source})")
            if duplicates is not None:
                _write_duplicates(f, duplicates, pair_rows, config)


def cross_plane_duplicates(merged: Mapping[str, np.ndarray], frame_times: np.ndarray, pixel_um: float,
                           config: NeuralFileConfig, fish_id) -> CrossPlaneDuplicates | None:
    """Duplicate pairs among the merged rows (:mod:`pipeline.imaging.duplicates`, on their
    neuropil-corrected fluorescence ``Fc``), or None when ``config.duplicates`` is off, the fish
    has one plane, or a trace is not finite (logged)."""
    if config.duplicates == "off" or frame_times.shape[0] < 2:
        return None
    if not np.all(np.isfinite(merged["Fc"])):
        log.warning("fish %s: fluorescence not finite in every row; cross-plane duplicates not searched", fish_id)
        return None
    found = find_cross_plane_duplicates(
        merged["plane"], merged["centroid_weighted"], merged["Fc"], frame_times, pixel_size_um=pixel_um,
        max_distance_um=config.duplicate_max_distance_um, max_offset_um=config.duplicate_max_offset_um,
        highpass_s=config.duplicate_highpass_s, min_posterior=config.duplicate_min_posterior,
        null_near_um=config.duplicate_null_near_um, null_far_um=config.duplicate_null_far_um)
    log.info("fish %s: %d cross-plane duplicate pairs (%s); plane offsets %s um; per pair of planes %s: %s",
             fish_id, found.kept.size, config.duplicates, np.round(found.plane_offset_um, 2).tolist(),
             found.MODEL_COLUMNS, np.round(found.model, 3).tolist())
    return found


def _write_duplicates(f: h5py.File, found: CrossPlaneDuplicates, pair_rows: Mapping[str, np.ndarray],
                      config: NeuralFileConfig) -> None:
    g = f.create_group("duplicates")
    g.attrs["mode"] = config.duplicates
    g.attrs["description"] = ("cross-plane duplicate pairs (pipeline.imaging.duplicates): the same nucleus as ROIs of "
                              "adjacent planes; 'kept' has the higher trace SNR. mode merge: the partner is not in "
                              "/neurons; mode record: both are")
    g.attrs["settings_json"] = json.dumps({k: v for k, v in asdict(config).items() if k.startswith("duplicate")})
    for name, what in (("kept_plane", "plane of the ROI kept"), ("kept_roi", "its ROI index in the plane folder"),
                       ("partner_plane", "plane of its copy (dropped in mode merge)"),
                       ("partner_roi", "the copy's ROI index in its plane folder")):
        write_dataset(g, name, np.asarray(pair_rows[name], np.int64), "index", what)
    write_dataset(g, "distance_um", found.distance_um, "um", "xy distance of the pair's weighted centroids after the "
                                                            "planes' offset")
    write_dataset(g, "correlation", found.correlation, "1", "Pearson r of the pair's time-aligned, high-passed neuropil-corrected F")
    write_dataset(g, "posterior", found.posterior, "1", "probability that the pair is one cell under the fitted "
                                                         "mixture of copies and unrelated pairs")
    write_dataset(g, "plane_offset_um", found.plane_offset_um, "um",
                  "(planes - 1, 2) (dy, dx) of plane p+1's ROI coordinates relative to plane p's")
    write_dataset(g, "model", found.model, "mixed",
                  "(planes - 1, 6) per pair of planes p, p+1: candidates (count), expected unrelated candidates "
                  "(count), copies' centroid-distance Rayleigh scale (um), copies' r mean and sd (1), share of copies with a "
                  "gross (uniform) centroid error (1); NaN: not fitted")
    g["model"].attrs["columns"] = list(found.MODEL_COLUMNS)
