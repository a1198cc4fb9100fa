"""Bin an IBL session into trial-aligned tensors (NEDS, seed 002, Sec. 4).

Spikes are counted in ``bin_size_s`` bins over a window around each trial's alignment
event (default stimOn, -0.5 s to +1.5 s, 20 ms: 100 bins); wheel speed and whisker motion
energy are resampled onto the same bins; choice and block are per-trial labels.

Output: one HDF5 file per session (:func:`bin_session`), layout

- ``/spikes/counts`` (n_trials, n_bins, n_neurons) uint16: spikes per bin;
- ``/behavior/wheel_speed`` (n_trials, n_bins) float32 rad/s: |mean wheel velocity| per bin;
- ``/behavior/whisker_motion_energy`` (n_trials, n_bins) float32 a.u.: mean motion
  energy of the left camera's whisker ROI per bin (attr ``camera``: ``right`` when the
  left camera was missing or inconsistent);
  both carry attrs ``train_mean``, ``train_std``, ``train_min``, ``train_max`` computed on
  the training trials only (normalise with these; never with statistics of all trials);
- ``/behavior/choice`` (n_trials,) int8: 0 = choice -1 (CCW), 1 = choice +1 (CW);
- ``/behavior/block`` (n_trials,) int8: probabilityLeft 0.2/0.5/0.8 -> 0/1/2;
- ``/neurons/{cluster_id, probe, allen_id, region, firing_rate_hz, depth_um, qc_label}``
  (n_neurons,): kept clusters of all probe collections, neurons of one probe contiguous and
  in cluster-id order; ``probe`` the collection (e.g. ``alf/probe00/pykilosort``),
  ``allen_id`` the Allen CCF 2017 structure id of the cluster's channel, ``region`` its
  acronym at ``region_level`` (attr ``level``; :mod:`pipeline.ibl.regions`), the firing rate
  used by the filter (attr ``definition``), depth from the tip and IBL QC label (NaN where
  the cache has no ``clusters.metrics``; depth only if every probe has ``clusters.depths``);
- ``/trials/{trial_index, align_time_s, reaction_time_s}`` (n_trials,): original trial
  index in the ALF trial table, alignment time (s), reaction time (s);
- ``/splits/{train, val, test}``: positions along the trial axis;
- ``/time/bin_edges_s`` (n_bins + 1,): edges relative to the alignment event (s);
- root attrs: session id, units, bin size, window, alignment event, the filter settings
  and per-reason excluded-trial counts (``filters_json``), neuron-filter counts, source
  files with SHA-256, ``config_hash``, ``code_version``.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping

import h5py
import numpy as np
from tqdm import tqdm

from pipeline.ibl.alf_session import AlfSession, load_session
from pipeline.ibl.config import BinningConfig
from pipeline.ibl.regions import region_acronyms
from pipeline.ibl.signals import bin_mean_velocity, bin_means
from pipeline.ibl.trials import (
    BLOCK_CLASSES,
    encode_block,
    encode_choice,
    needed_events,
    select_trials,
    split_trials,
)
from pipeline.io.atomic import atomic_paths
from pipeline.io.errors import InputDataError
from pipeline.io.h5 import write_dataset
from pipeline.provenance import code_version, config_hash

log = logging.getLogger(__name__)


def bin_spikes(
    spike_times: np.ndarray,
    spike_clusters: np.ndarray,
    cluster_to_row: np.ndarray,
    align_times: np.ndarray,
    relative_edges: np.ndarray,
    progress: bool = False,
) -> np.ndarray:
    """Spike counts (n_trials, n_bins, n_neurons) uint16, n_neurons = ``cluster_to_row.max() + 1``.

    ``spike_times`` (n_spikes,) s, sorted; ``spike_clusters`` (n_spikes,) cluster id of each
    spike (memory maps are fine for both: only each window's slice is read);
    ``cluster_to_row`` (n_clusters,) output column of each cluster id, -1 to drop its
    spikes; ``align_times`` (n_trials,) s; ``relative_edges`` (n_bins + 1,) s, increasing.
    A spike at time t falls in bin k when edge_k <= t < edge_{k+1}.

    Because the times are sorted, the spikes of bin k are those at positions
    ``pos_k <= i < pos_{k+1}`` with ``pos = searchsorted(spike_times, t0 + edges, 'left')``:
    the bin of each spike follows from the positions of the edges (found inside the
    window's slice, so the whole array is searched only for the window's bounds). Each
    spike is added straight into a uint16 (n_bins, n_neurons + 1) table whose last column
    takes the dropped spikes (row -1 of bin k is the last column of bin k - 1; of bin 0,
    the table's last cell), so there is no per-spike mask and no int64 histogram; the
    per-spike rows are looked up per window, never materialised for the session.
    """
    if cluster_to_row.size and cluster_to_row.min() < -1:
        raise ValueError(f"cluster_to_row holds {cluster_to_row.min()}: rows are >= 0, or -1 to drop a cluster")
    n_neurons = int(cluster_to_row.max()) + 1 if cluster_to_row.size else 0
    spike_times, spike_clusters = np.asarray(spike_times), np.asarray(spike_clusters)  # plain views of memory maps
    n_bins = relative_edges.shape[0] - 1
    counts = np.zeros((align_times.shape[0], n_bins, n_neurons), np.uint16)
    window_bounds = np.searchsorted(spike_times, align_times[:, None] + relative_edges[None, [0, -1]], side="left")
    table = np.zeros((n_bins, n_neurons + 1), np.uint16)  # one trial; column n_neurons: dropped spikes
    bin_offsets = np.arange(n_bins) * (n_neurons + 1)  # flat index of (bin k, neuron 0) in the table
    one = np.uint16(1)  # same dtype as the table: np.add.at takes its fast path only without casting
    for trial in tqdm(range(align_times.shape[0]), desc="binning trials", unit="trial", disable=not progress):
        lo, hi = window_bounds[trial]
        positions = lo + np.searchsorted(spike_times[lo:hi], align_times[trial] + relative_edges, side="left")
        flat = np.repeat(bin_offsets, np.diff(positions))
        flat += np.take(cluster_to_row, spike_clusters[lo:hi])
        table.fill(0)
        np.add.at(table.reshape(-1), flat, one)
        counts[trial] = table[:, :n_neurons]
    return counts


def window_spike_counts(spike_times: np.ndarray, spike_clusters: np.ndarray, n_clusters: int,
                        starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Spikes per cluster id (n_clusters,) summed over the windows [starts_i, ends_i) (s);
    overlapping windows count a spike once per window. Reads only each window's slice."""
    total = np.zeros(n_clusters, np.int64)
    bounds = np.searchsorted(spike_times, np.column_stack([starts, ends]), side="left")
    for lo, hi in bounds:
        total += np.bincount(np.asarray(spike_clusters[lo:hi]), minlength=n_clusters)
    return total


def cluster_spike_counts(spike_clusters: np.ndarray, n_clusters: int, chunk: int = 1 << 22) -> np.ndarray:
    """Spikes per cluster id (n_clusters,), streaming a memory-mapped array in chunks."""
    total = np.zeros(n_clusters, np.int64)
    for start in range(0, spike_clusters.shape[0], chunk):
        total += np.bincount(np.asarray(spike_clusters[start:start + chunk]), minlength=n_clusters)
    return total


def _train_stats(values: np.ndarray, train: np.ndarray) -> dict[str, float]:
    x = values[train]
    return {"train_mean": float(x.mean()), "train_std": float(x.std()),
            "train_min": float(x.min()), "train_max": float(x.max())}


@dataclass(frozen=True)
class _Neurons:
    """Kept clusters of all probes, in output-column order, with their counts."""

    counts: np.ndarray  # (n_trials, n_bins, n_neurons) uint16
    cluster_id: np.ndarray  # (n_neurons,) int64
    probe: np.ndarray  # (n_neurons,) str collection
    allen_id: np.ndarray  # (n_neurons,) int64
    region: np.ndarray  # (n_neurons,) str acronym at the configured level
    firing_rate_hz: np.ndarray  # (n_neurons,) Hz, as defined by firing_rate_window
    depth_um: np.ndarray | None  # (n_neurons,) um from the tip
    qc_label: np.ndarray  # (n_neurons,) IBL QC label, NaN if unknown
    filter_counts: dict  # per probe: clusters in session, passing QC, passing rate


def _select_neurons(session: AlfSession, config: BinningConfig, align_kept: np.ndarray, progress: bool) -> _Neurons:
    """Per probe: QC filter, firing-rate filter (:class:`pipeline.ibl.config.BinningConfig`), spike counts of the
    kept clusters; neurons of all probes concatenated in probe order."""
    window_s = config.window_end_s - config.window_start_s
    parts: list[dict] = []
    filter_counts: dict[str, dict[str, int]] = {}
    for probe in session.probes:
        regions = region_acronyms(probe.cluster_allen_ids, config.region_level, probe.region_source)
        qc = probe.cluster_qc_label if probe.cluster_qc_label is not None else np.full(probe.n_clusters, np.nan)
        passes_qc = np.ones(probe.n_clusters, bool)
        if config.min_qc_label is not None:
            if probe.cluster_qc_label is None:
                raise InputDataError(session.session_path + "/" + probe.collection,
                                     "min_qc_label is set but the collection has no clusters.metrics label")
            passes_qc = qc >= config.min_qc_label
        candidates = np.flatnonzero(passes_qc)
        if config.firing_rate_window == "trials":
            in_windows = window_spike_counts(probe.spike_times, probe.spike_clusters, probe.n_clusters,
                                             align_kept + config.window_start_s, align_kept + config.window_end_s)
            rate = in_windows[candidates] / (align_kept.size * window_s)
        else:
            span_s = float(probe.spike_times[-1] - probe.spike_times[0])
            per_cluster = cluster_spike_counts(probe.spike_clusters, probe.n_clusters)[candidates]
            rate = per_cluster / span_s if span_s > 0 else np.zeros(candidates.size)
        keep = rate >= config.min_firing_rate_hz
        kept = candidates[keep]
        to_row = np.full(probe.n_clusters, -1, np.int64)
        to_row[kept] = np.arange(kept.size)
        counts = bin_spikes(probe.spike_times, probe.spike_clusters, to_row, align_kept, config.relative_edges_s,
                            progress)
        filter_counts[probe.collection] = {"n_clusters_in_collection": probe.n_clusters,
                                           "n_clusters_passing_qc": int(candidates.size),
                                           "n_clusters_kept": int(kept.size)}
        log.info("%s: %d clusters, %d pass QC, %d at >= %.3g Hz (%s windows)", probe.collection, probe.n_clusters,
                 candidates.size, kept.size, config.min_firing_rate_hz, config.firing_rate_window)
        parts.append({"counts": counts, "cluster_id": kept, "probe": np.full(kept.size, probe.collection),
                      "allen_id": probe.cluster_allen_ids[kept], "region": regions[kept], "firing_rate_hz": rate[keep],
                      "depth_um": None if probe.cluster_depths_um is None else probe.cluster_depths_um[kept],
                      "qc_label": qc[kept]})
    depths = [p["depth_um"] for p in parts]
    return _Neurons(
        counts=parts[0]["counts"] if len(parts) == 1 else np.concatenate([p["counts"] for p in parts], axis=2),
        cluster_id=np.concatenate([p["cluster_id"] for p in parts]).astype(np.int64),
        probe=np.concatenate([p["probe"] for p in parts]).astype(str),
        allen_id=np.concatenate([p["allen_id"] for p in parts]).astype(np.int64),
        region=np.concatenate([p["region"] for p in parts]).astype(str),
        firing_rate_hz=np.concatenate([p["firing_rate_hz"] for p in parts]).astype(float),
        depth_um=None if any(d is None for d in depths) else np.concatenate(depths),
        qc_label=np.concatenate([p["qc_label"] for p in parts]).astype(float),
        filter_counts=filter_counts,
    )


def bin_session(
    session_row: Mapping[str, Any],
    out_path: str | Path,
    config: BinningConfig,
    *,
    split_seed: int,
    source_checksums: Mapping[str, str] | None = None,
    progress: bool = True,
) -> None:
    """Read the session of ``session_row`` (a sessions-table row: ``one_cache`` +
    ``session``, or ``nwb_file``; ``probes``), bin it, write ``out_path``.

    ``source_checksums``: path -> SHA-256 of input files (from the inventory), recorded in
    the output. Raises InputDataError for bad input and when nothing is left after filtering;
    no output is written then.
    """
    rule = config.trial_filter
    session = load_session(session_row, required_trial_events=needed_events(rule, config.align_event))
    align = session.trials[config.align_event]
    with np.errstate(invalid="ignore"):
        starts, ends = align + config.window_start_s, align + config.window_end_s
        covered = ((starts >= session.wheel_times[0]) & (ends <= session.wheel_times[-1])
                   & (starts >= session.camera_times[0]) & (ends <= session.camera_times[-1]))
    keep, excluded = select_trials(session.trials, rule, config.align_event, covered)
    trial_index = np.flatnonzero(keep)
    log.info("session %s: %d of %d trials kept; excluded %s", session_row["session_id"],
             trial_index.size, session.n_trials, excluded)
    if trial_index.size == 0:
        raise InputDataError(session.session_path, f"no trial left after filtering (excluded: {excluded})")

    align_kept = align[trial_index]
    neurons = _select_neurons(session, config, align_kept, progress)
    if neurons.cluster_id.size == 0:
        raise InputDataError(session.session_path, f"no cluster passes the neuron filters ({neurons.filter_counts})")
    edges = align_kept[:, None] + config.relative_edges_s[None, :]
    wheel_speed = np.abs(bin_mean_velocity(session.wheel_times, session.wheel_position_rad, edges))
    motion_energy = bin_means(session.camera_times, session.motion_energy, edges)
    splits = split_trials(trial_index.size, config.split_fractions, split_seed)

    settings = {"binning": asdict(config), "session": dict(session_row)}
    rate_definition = ("spikes inside the kept trials' windows / (n_trials x window length)"
                       if config.firing_rate_window == "trials" else "spikes / (last - first spike time of the probe)")
    with atomic_paths(out_path) as (tmp,):
        with h5py.File(tmp, "w") as f:
            f.attrs.update({
                "session_id": str(session_row["session_id"]),
                "session_path": session.session_path,
                "probe_collections_json": json.dumps([p.collection for p in session.probes]),
                "description": "trial-aligned spike counts and behaviour of one IBL session (NEDS input)",
                "align_event": config.align_event,
                "bin_size_s": config.bin_size_s,
                "window_s": [config.window_start_s, config.window_end_s],
                "filters_json": json.dumps({"trial_filter": asdict(rule),
                                            "excluded_trials": excluded,
                                            "n_trials_in_session": session.n_trials}),
                "neuron_filter_json": json.dumps({"min_firing_rate_hz": config.min_firing_rate_hz,
                                                  "firing_rate_window": config.firing_rate_window,
                                                  "firing_rate_definition": rate_definition,
                                                  "min_qc_label": config.min_qc_label,
                                                  "per_probe": neurons.filter_counts,
                                                  "n_clusters_in_session": sum(p.n_clusters for p in session.probes),
                                                  "n_clusters_kept": int(neurons.cluster_id.size)}),
                "source_files_json": json.dumps({p: (source_checksums or {}).get(p, "") for p in session.source_files}),
                "config_hash": config_hash(settings),
                "code_version": code_version(),
            })
            write_dataset(f, "time/bin_edges_s", config.relative_edges_s, "s", f"bin edges relative to {config.align_event}")
            write_dataset(f, "spikes/counts", neurons.counts, "spikes/bin", "spike counts (trials, bins, neurons)")
            for name, values, units, text in [
                ("wheel_speed", wheel_speed, "rad/s", "|mean wheel velocity| over each bin"),
                ("whisker_motion_energy", motion_energy, "a.u.",
                 f"mean {session.camera}-camera whisker ROI motion energy over each bin"),
            ]:
                ds = write_dataset(f, f"behavior/{name}", values.astype(np.float32), units, text)
                ds.attrs.update(_train_stats(values, splits["train"]))
            f["behavior/whisker_motion_energy"].attrs["camera"] = session.camera
            write_dataset(f, "behavior/choice", encode_choice(session.trials["choice"][trial_index]), "class",
                     "0 = choice -1 (counter-clockwise), 1 = choice +1 (clockwise)")
            write_dataset(f, "behavior/block", encode_block(session.trials["probabilityLeft"][trial_index]), "class",
                     f"block prior probabilityLeft -> class: {json.dumps(BLOCK_CLASSES)}")
            write_dataset(f, "neurons/cluster_id", neurons.cluster_id, "id", "ALF cluster id within its probe collection")
            write_dataset(f, "neurons/probe", neurons.probe, "collection", "probe collection of the cluster")
            write_dataset(f, "neurons/allen_id", neurons.allen_id, "id", "Allen CCF 2017 structure id of the cluster's channel")
            ds = write_dataset(f, "neurons/region", neurons.region, "acronym",
                               f"brain region at the iblatlas {config.region_level} level")
            ds.attrs["level"] = config.region_level
            ds = write_dataset(f, "neurons/firing_rate_hz", neurons.firing_rate_hz, "Hz", "firing rate of the neuron filter")
            ds.attrs["definition"] = rate_definition
            if neurons.depth_um is not None:
                write_dataset(f, "neurons/depth_um", neurons.depth_um, "um", "depth from the probe tip")
            write_dataset(f, "neurons/qc_label", neurons.qc_label, "fraction",
                          "IBL single-unit QC label from clusters.metrics (1 = good; NaN = not in the cache)")
            write_dataset(f, "trials/trial_index", trial_index, "index", "row of the trial in the ALF trials table")
            write_dataset(f, "trials/align_time_s", align_kept, "s", f"{config.align_event} on the session clock")
            write_dataset(f, "trials/reaction_time_s",
                     (session.trials[rule.reaction_time_event] - session.trials["stimOn_times"])[trial_index],
                     "s", f"{rule.reaction_time_event} - stimOn_times")
            for name, positions in splits.items():
                write_dataset(f, f"splits/{name}", positions, "index", f"{name} trials: positions along the trial axis")

