"""Spike binning against brute-force histograms (REAL spikes and synthetic sessions), the
binned-session file, ground-truth regions and rates, and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from pipeline.ibl.binning import bin_session, bin_spikes
from pipeline.ibl.config import BinningConfig
from pipeline.io.errors import InputDataError

from helpers import require_real_ibl_fixtures
from ibl_sessions import REAL_ACRONYMS, alf_dir, copy_session, rebuild_cache

CONFIG = BinningConfig()


def brute_force_counts(spike_times, spike_clusters, clusters, align_times, relative_edges):
    """Per trial and neuron: a histogram of that neuron's spikes over the trial's edges,
    half-open bins [e_k, e_k+1) (np.histogram closes the last bin, so drop t == last edge)."""
    counts = np.zeros((len(align_times), len(relative_edges) - 1, len(clusters)), int)
    for i, t0 in enumerate(align_times):
        edges = t0 + relative_edges
        for j, cluster in enumerate(clusters):
            t = spike_times[(spike_clusters == cluster) & (spike_times < edges[-1])]
            counts[i, :, j] = np.histogram(t, bins=edges)[0]
    return counts


def test_bin_spikes_equals_brute_force_on_real_spikes():
    fixtures = require_real_ibl_fixtures()
    spike_times = np.load(fixtures / "spikes" / "spikes.times.npy")
    spike_clusters = np.load(fixtures / "spikes" / "spikes.clusters.npy").astype(np.int64)
    rng = np.random.default_rng(3)
    align = np.sort(rng.uniform(1.0, 118.0, 25))  # events inside the 0-120 s span
    align[3] = align[2] + 0.7  # overlapping windows are counted independently
    clusters = np.unique(spike_clusters)[::7]  # a subset of neurons, others dropped
    rows = np.full(spike_clusters.max() + 1, -1)
    rows[clusters] = np.arange(clusters.size)
    counts = bin_spikes(spike_times, spike_clusters, rows, align, CONFIG.relative_edges_s)
    expected = brute_force_counts(spike_times, spike_clusters, clusters, align, CONFIG.relative_edges_s)
    np.testing.assert_array_equal(counts, expected)
    # conservation: every spike of a kept neuron inside a window is counted once per window
    for i, t0 in enumerate(align):
        inside = (spike_times >= t0 - 0.5) & (spike_times < t0 + 1.5) & np.isin(spike_clusters, clusters)
        assert counts[i].sum() == inside.sum()


def test_spike_on_a_bin_edge_goes_to_the_bin_it_opens():
    relative = np.array([0.0, 0.02, 0.04])
    counts = bin_spikes(np.array([10.0, 10.02, 10.04]), np.zeros(3, int), np.array([0]), np.array([10.0]), relative)
    assert counts[0, :, 0].tolist() == [1, 1]  # 10.04 is the window's end: excluded


def test_spikes_on_every_absolute_edge():
    """Spikes exactly on t0 + relative edge k (floating-point sums that a relative-time
    bin lookup can misplace) land where the per-trial histogram puts them."""
    rng = np.random.default_rng(8)
    align = np.sort(rng.uniform(100.0, 5000.0, 40)) + 0.1234567
    edges = CONFIG.relative_edges_s
    on_edges = (align[:, None] + edges[None, :]).ravel()
    spike_times = np.sort(np.concatenate([on_edges, rng.uniform(90.0, 5010.0, 20_000)]))
    spike_clusters = rng.integers(0, 6, spike_times.size)
    counts = bin_spikes(spike_times, spike_clusters, np.arange(6), align, edges)
    np.testing.assert_array_equal(counts, brute_force_counts(spike_times, spike_clusters, np.arange(6), align, edges))


def test_dropped_spikes_in_first_and_last_bins_do_not_touch_kept_counts():
    """Spikes of a dropped cluster (row -1) at the start and end of a window, next to kept
    spikes of the first and last neuron in the first and last bins, are not counted."""
    relative = np.array([0.0, 0.02, 0.04])
    spike_times = np.array([10.0, 10.0, 10.001, 10.03, 10.039, 10.039])
    spike_clusters = np.array([3, 2, 0, 0, 2, 3])
    counts = bin_spikes(spike_times, spike_clusters, np.array([0, -1, 2, -1]), np.array([10.0]), relative)
    assert counts[0].tolist() == [[1, 0, 1], [1, 0, 1]]


def test_row_below_minus_one_is_an_error():
    with pytest.raises(ValueError, match="-1 to drop"):
        bin_spikes(np.array([10.0, 10.01]), np.array([0, 1]), np.array([0, -2]), np.array([10.0]), np.array([0.0, 0.02]))


@pytest.fixture(scope="module")
def binned(synthetic_session, tmp_path_factory):
    out = tmp_path_factory.mktemp("binned") / "ses.h5"
    bin_session(synthetic_session, out, CONFIG, split_seed=11, progress=False)
    return out


def test_binned_file_matches_brute_force_and_ground_truth(binned, synthetic_session):
    probe = alf_dir(synthetic_session) / "probe00" / "pykilosort"
    spike_times = np.load(probe / "spikes.times.npy")
    spike_clusters = np.load(probe / "spikes.clusters.npy").astype(np.int64)
    with h5py.File(binned) as f, h5py.File(synthetic_session["truth"]) as truth:
        counts = f["spikes/counts"][()]
        clusters = f["neurons/cluster_id"][()]
        align = f["trials/align_time_s"][()]
        assert counts.shape == (align.size, 100, clusters.size)
        np.testing.assert_array_equal(f["time/bin_edges_s"][()], CONFIG.relative_edges_s)
        np.testing.assert_array_equal(
            counts, brute_force_counts(spike_times, spike_clusters, clusters, align, CONFIG.relative_edges_s)
        )
        # regions (from the revised channel locations, not the root-only first release) and
        # firing rates are those of the generator
        true_regions = truth["clusters/acronym"].asstr()[()]
        assert f["neurons/region"].asstr()[()].tolist() == true_regions[clusters].tolist()
        assert f["neurons/region"].attrs["level"] == "Beryl"
        assert set(f["neurons/probe"].asstr()[()]) == {"alf/probe00/pykilosort"}
        true_rates = truth["clusters/rate_hz"][()]
        np.testing.assert_allclose(f["neurons/firing_rate_hz"][()], true_rates[clusters], rtol=0.35)
        assert np.all(true_rates[np.setdiff1d(np.arange(true_rates.size), clusters)] < 3.0)
        assert np.all(f["neurons/firing_rate_hz"][()] >= 2.0)
        # the trial-window rate is the binned counts' mean rate
        np.testing.assert_allclose(f["neurons/firing_rate_hz"][()], counts.sum(axis=(0, 1)) / (align.size * 2.0))
        # labels: choice and block of the kept trials
        trial_index = f["trials/trial_index"][()]
        assert f["behavior/choice"][()].tolist() == (truth["trials/choice"][()][trial_index] > 0).astype(int).tolist()
        assert set(f["behavior/block"][()].tolist()) <= {0, 1, 2}
        # behaviour bins: finite, wheel moves after stimulus onset more than before
        wheel = f["behavior/wheel_speed"][()]
        assert np.isfinite(wheel).all() and np.isfinite(f["behavior/whisker_motion_energy"][()]).all()
        assert wheel[:, 35:75].mean() > 2 * wheel[:, :20].mean()
        # splits: disjoint, complete, 70/10/20; normalisation statistics from train only
        splits = {k: f[f"splits/{k}"][()] for k in ("train", "val", "test")}
        assert sorted(np.concatenate(list(splits.values())).tolist()) == list(range(align.size))
        assert f["behavior/wheel_speed"].attrs["train_mean"] == pytest.approx(wheel[splits["train"]].mean(), rel=1e-5)
        filters = json.loads(f.attrs["filters_json"])
        assert sum(filters["excluded_trials"].values()) + align.size == filters["n_trials_in_session"]
        assert f["spikes/counts"].attrs["units"] == "spikes/bin"


def test_binning_is_deterministic(binned, synthetic_session, tmp_path):
    again = tmp_path / "again.h5"
    bin_session(synthetic_session, again, CONFIG, split_seed=11, progress=False)
    with h5py.File(binned) as a, h5py.File(again) as b:
        for name in ["spikes/counts", "splits/test", "behavior/wheel_speed"]:
            np.testing.assert_array_equal(a[name][()], b[name][()])


def test_real_spikes_as_a_second_probe_of_a_one_cache(real_spike_session, tmp_path):
    """Two probes merged: each probe's counts equal the brute-force histogram of its own
    spikes, probe and Allen id are kept per neuron, and the regions are those of the
    revised channel locations at the Beryl level (an independent iblatlas lookup)."""
    from iblatlas.regions import BrainRegions

    out = tmp_path / "real.h5"
    bin_session(real_spike_session, out, CONFIG, split_seed=1, progress=False)
    alf = alf_dir(real_spike_session)
    with h5py.File(out) as f:
        counts, align = f["spikes/counts"][()], f["trials/align_time_s"][()]
        probes, clusters = f["neurons/probe"].asstr()[()], f["neurons/cluster_id"][()]
        assert list(dict.fromkeys(probes)) == ["alf/probe00/pykilosort", "alf/probe01/pykilosort"]
        for collection in set(probes):
            mine = probes == collection
            times = np.load(alf.parent / collection / "spikes.times.npy")
            ids = np.load(alf.parent / collection / "spikes.clusters.npy").astype(np.int64)
            np.testing.assert_array_equal(counts[:, :, mine], brute_force_counts(
                times, ids, clusters[mine], align, CONFIG.relative_edges_s))
        real = probes == "alf/probe01/pykilosort"
        assert clusters[real].max() <= 499 and counts[:, :, real].sum() > 0
        expected_acronyms = np.array(REAL_ACRONYMS)[(clusters[real] % 384) % len(REAL_ACRONYMS)]
        regions = BrainRegions()
        expected_ids = regions.acronym2id(expected_acronyms)
        np.testing.assert_array_equal(f["neurons/allen_id"][()][real], expected_ids)
        beryl = f["neurons/region"].asstr()[()][real]
        np.testing.assert_array_equal(beryl, regions.id2acronym(expected_ids, mapping="Beryl"))
        # exact lookups: VISam4 -> VISam (not VISa), POL stays POL (not PO)
        assert set(beryl[expected_acronyms == "VISam4"]) == {"VISam"}
        assert set(beryl[expected_acronyms == "POL"]) == {"POL"}
        assert set(beryl[expected_acronyms == "VISa5"]) == {"VISa"}


def test_cosmos_level_and_one_probe_of_two(real_spike_session, tmp_path):
    from iblatlas.regions import BrainRegions

    out = tmp_path / "cosmos.h5"
    row = {**real_spike_session, "probes": "probe01/pykilosort"}
    bin_session(row, out, BinningConfig(region_level="Cosmos"), split_seed=1, progress=False)
    with h5py.File(out) as f:
        assert set(f["neurons/probe"].asstr()[()]) == {"alf/probe01/pykilosort"}
        ids = f["neurons/allen_id"][()]
        np.testing.assert_array_equal(f["neurons/region"].asstr()[()], BrainRegions().id2acronym(ids, mapping="Cosmos"))
        assert f["neurons/region"].attrs["level"] == "Cosmos"


def _unsort_spikes(session: dict):
    path = alf_dir(session) / "probe00" / "pykilosort" / "spikes.times.npy"
    times = np.load(path)
    times[[10, 11]] = times[[11, 10]] + np.array([0.0, 1.0])
    np.save(path, times)


def _cluster_out_of_range(session: dict):
    path = alf_dir(session) / "probe00" / "pykilosort" / "spikes.clusters.npy"
    clusters = np.load(path)
    clusters[5] = 10_000
    np.save(path, clusters)


def _channel_out_of_range(session: dict):
    path = alf_dir(session) / "probe00" / "pykilosort" / "clusters.channels.npy"
    channels = np.load(path)
    channels[0] = 400
    np.save(path, channels)


def _unknown_allen_id(session: dict):
    path = alf_dir(session) / "probe00" / "pykilosort" / "#2024-05-06#" / "channels.brainLocationIds_ccf_2017.npy"
    ids = np.load(path)
    ids[:] = 123_456_789
    np.save(path, ids)


def _malformed_revision(session: dict):
    (alf_dir(session) / "probe00" / "pykilosort" / "#2024-06-01").mkdir()


def _remove(*names: str):
    def remove(session: dict):
        for name in names:
            (alf_dir(session) / name).unlink()
        rebuild_cache(session)
    return remove


@pytest.mark.parametrize(
    "break_session, message",
    [
        (_remove("_ibl_wheel.position.npy"), "missing ALF dataset wheel.position"),
        (_remove("probe00/pykilosort/spikes.clusters.npy"), "collection without spikes"),
        (_remove("_ibl_trials.stimOn_times.npy", "_ibl_trials.table.pqt"), "missing ALF dataset trials.stimOn_times"),
        (_unsort_spikes, "not sorted"),
        (_cluster_out_of_range, "describes 40 clusters but spikes.clusters.npy holds cluster ids 0..10000"),
        (_channel_out_of_range, "384 channels but clusters.channels.npy refers to channels"),
        (_unknown_allen_id, "Allen id.* unknown to iblatlas: \\[123456789\\]"),
        (_malformed_revision, "malformed revision folder name"),
        (lambda s: np.save(alf_dir(s) / "_ibl_trials.choice.npy", np.zeros(120)),
         "trials.choice disagrees with column 'choice' of .*_ibl_trials.table.pqt"),
        (lambda s: s.update(session="synthlab/Subjects/other/2024-01-01/001"), "not in the cache's sessions table"),
        (lambda s: s.update(probes="probe01"), "collection has no spikes"),
        (lambda s: (Path(s["one_cache"]) / "datasets.pqt").unlink(), "ONE cache table not found"),
    ],
)
def test_bad_input_fails_naming_the_file_and_writes_nothing(synthetic_session, tmp_path, break_session, message):
    session = copy_session(synthetic_session, tmp_path / "ses")
    break_session(session)
    out = tmp_path / "out" / "binned.h5"
    with pytest.raises(InputDataError, match=message) as excinfo:
        bin_session(session, out, CONFIG, split_seed=1, progress=False)
    assert str(tmp_path / "ses") in str(excinfo.value)
    assert not out.exists() and not any(out.parent.glob("*"))


def test_encoder_counts_declared_as_radians_are_caught(synthetic_session, tmp_path):
    fixtures = require_real_ibl_fixtures()
    session = copy_session(synthetic_session, tmp_path / "ses")
    for name in ["position", "timestamps"]:
        shutil.copy(fixtures / "wheel_encoder_1khz" / f"wheel.{name}.npy",
                    alf_dir(session) / f"_ibl_wheel.{name}.npy")
    with pytest.raises(InputDataError, match="encoder counts"):
        bin_session(session, tmp_path / "x.h5", CONFIG, split_seed=1, progress=False)


def test_trials_table_alone_gives_the_same_file(binned, synthetic_session, tmp_path):
    session = copy_session(synthetic_session, tmp_path / "ses")
    for path in alf_dir(session).glob("_ibl_trials.*.npy"):
        path.unlink()
    rebuild_cache(session)
    out = tmp_path / "from_table.h5"
    bin_session(session, out, CONFIG, split_seed=11, progress=False)
    with h5py.File(binned) as a, h5py.File(out) as b:
        for name in ["spikes/counts", "trials/trial_index", "behavior/block", "splits/train"]:
            np.testing.assert_array_equal(a[name][()], b[name][()])


def test_without_the_revision_folder_regions_are_the_first_release(synthetic_session, tmp_path):
    """The revision wins only because ONE resolves it: remove it and the root-only first
    release of the channel locations is what is read."""
    session = copy_session(synthetic_session, tmp_path / "ses")
    shutil.rmtree(alf_dir(session) / "probe00" / "pykilosort" / "#2024-05-06#")
    rebuild_cache(session)
    out = tmp_path / "unrevised.h5"
    bin_session(session, out, CONFIG, split_seed=11, progress=False)
    with h5py.File(out) as f:
        assert set(f["neurons/region"].asstr()[()]) == {"root"}
        assert set(f["neurons/allen_id"][()]) == {997}


def test_qc_and_session_rate_filters_match_independent_counts(synthetic_session, tmp_path):
    import pandas as pd

    session = copy_session(synthetic_session, tmp_path / "ses")
    probe = alf_dir(session) / "probe00" / "pykilosort"
    labels = np.random.default_rng(5).choice([0.0, 1 / 3, 2 / 3, 1.0], 40)
    pd.DataFrame({"cluster_id": np.arange(40)[::-1], "label": labels[::-1]}).to_parquet(probe / "clusters.metrics.pqt")
    rebuild_cache(session)
    times, ids = np.load(probe / "spikes.times.npy"), np.load(probe / "spikes.clusters.npy")
    session_rate = np.bincount(ids, minlength=40) / (times[-1] - times[0])

    out = tmp_path / "qc_session.h5"
    bin_session(session, out, BinningConfig(min_qc_label=1.0, firing_rate_window="session"), split_seed=1, progress=False)
    with h5py.File(out) as f:
        expected = np.flatnonzero((labels == 1.0) & (session_rate >= 2.0))
        np.testing.assert_array_equal(f["neurons/cluster_id"][()], expected)
        np.testing.assert_allclose(f["neurons/firing_rate_hz"][()], session_rate[expected])
        assert set(f["neurons/qc_label"][()]) == {1.0}
        counts = json.loads(f.attrs["neuron_filter_json"])["per_probe"]["alf/probe00/pykilosort"]
        assert counts == {"n_clusters_in_collection": 40, "n_clusters_passing_qc": int((labels == 1.0).sum()),
                          "n_clusters_kept": int(expected.size)}

    out = tmp_path / "qc_trials.h5"  # default rate window: spikes inside the kept trials' windows
    bin_session(session, out, BinningConfig(min_qc_label=2 / 3), split_seed=1, progress=False)
    with h5py.File(out) as f:
        align = f["trials/align_time_s"][()]
        in_windows = np.zeros(40)
        for t0 in align:
            inside = (times >= t0 - 0.5) & (times < t0 + 1.5)
            in_windows += np.bincount(ids[inside], minlength=40)
        trial_rate = in_windows / (align.size * 2.0)
        expected = np.flatnonzero((labels >= 2 / 3) & (trial_rate >= 2.0))
        np.testing.assert_array_equal(f["neurons/cluster_id"][()], expected)
        np.testing.assert_allclose(f["neurons/firing_rate_hz"][()], trial_rate[expected])

    (probe / "clusters.metrics.pqt").unlink()
    rebuild_cache(session)
    with pytest.raises(InputDataError, match="min_qc_label is set but the collection has no clusters.metrics"):
        bin_session(session, tmp_path / "x.h5", BinningConfig(min_qc_label=1.0), split_seed=1, progress=False)


def test_duplicate_wheel_timestamps_are_averaged_and_logged(synthetic_session, tmp_path, caplog):
    from pipeline.ibl.alf_session import load_session

    session = copy_session(synthetic_session, tmp_path / "ses")
    alf = alf_dir(session)
    t, p = np.load(alf / "_ibl_wheel.timestamps.npy"), np.load(alf / "_ibl_wheel.position.npy")
    where = np.array([10, 500, 501])  # three samples repeated with a slightly different position
    t_dup, p_dup = np.insert(t, where, t[where]), np.insert(p, where, p[where] + 0.003)
    np.save(alf / "_ibl_wheel.timestamps.npy", t_dup)
    np.save(alf / "_ibl_wheel.position.npy", p_dup)
    with caplog.at_level("WARNING"):
        loaded = load_session(session)
    assert "3 samples share a timestamp" in caplog.text
    np.testing.assert_array_equal(loaded.wheel_times, t)
    expected = p.copy()
    expected[[10]] += 0.0015
    expected[[500, 501]] += 0.0015
    np.testing.assert_allclose(loaded.wheel_position_rad, expected)


def test_camera_lengths_follow_ibls_rule_then_the_right_camera(synthetic_session, binned, tmp_path, caplog):
    session = copy_session(synthetic_session, tmp_path / "ses")
    alf = alf_dir(session)
    times, me = np.load(alf / "_ibl_leftCamera.times.npy"), np.load(alf / "leftCamera.ROIMotionEnergy.npy")

    # more timestamps than frames: IBL drops the first timestamps (first frames not recorded)
    np.save(alf / "leftCamera.ROIMotionEnergy.npy", me[3:])
    trimmed = copy_session(session, tmp_path / "trimmed")
    np.save(alf_dir(trimmed) / "_ibl_leftCamera.times.npy", times[3:])
    with caplog.at_level("WARNING"):
        bin_session(session, tmp_path / "rule.h5", CONFIG, split_seed=11, progress=False)
    assert "the first 3 dropped" in caplog.text
    bin_session(trimmed, tmp_path / "trimmed.h5", CONFIG, split_seed=11, progress=False)
    with h5py.File(tmp_path / "rule.h5") as a, h5py.File(tmp_path / "trimmed.h5") as b:
        np.testing.assert_array_equal(a["behavior/whisker_motion_energy"][()], b["behavior/whisker_motion_energy"][()])
        assert a["behavior/whisker_motion_energy"].attrs["camera"] == "left"

    # fewer timestamps than frames cannot be aligned: the right camera is used, else both are named
    np.save(alf / "leftCamera.ROIMotionEnergy.npy", me)
    np.save(alf / "_ibl_leftCamera.times.npy", times[:-3])
    with pytest.raises(InputDataError, match="frames without a time cannot be aligned.*missing ALF dataset rightCamera"):
        bin_session(session, tmp_path / "x.h5", CONFIG, split_seed=11, progress=False)
    np.save(alf / "_ibl_rightCamera.times.npy", times)
    np.save(alf / "rightCamera.ROIMotionEnergy.npy", me)
    rebuild_cache(session)
    out = tmp_path / "right.h5"
    bin_session(session, out, CONFIG, split_seed=11, progress=False)
    with h5py.File(binned) as a, h5py.File(out) as b:
        assert a["behavior/whisker_motion_energy"].attrs["camera"] == "left"
        assert b["behavior/whisker_motion_energy"].attrs["camera"] == "right"
        np.testing.assert_array_equal(a["behavior/whisker_motion_energy"][()], b["behavior/whisker_motion_energy"][()])


def test_session_named_by_eid_or_absolute_path(synthetic_session, binned, tmp_path):
    import pandas as pd

    eid = str(pd.read_parquet(Path(synthetic_session["one_cache"]) / "sessions.pqt").index[0])
    absolute = str(Path(synthetic_session["one_cache"]).resolve() / synthetic_session["session"])
    for name, session in [("eid", eid), ("absolute", absolute)]:
        out = tmp_path / f"{name}.h5"
        bin_session({**synthetic_session, "session": session}, out, CONFIG, split_seed=11, progress=False)
        with h5py.File(binned) as a, h5py.File(out) as b:
            np.testing.assert_array_equal(a["spikes/counts"][()], b["spikes/counts"][()])


def test_all_probes_prefer_the_newest_sorter_and_names_select_exactly(synthetic_session, tmp_path):
    from pipeline.io.alf import OneSession

    session = copy_session(synthetic_session, tmp_path / "ses")
    alf = alf_dir(session)
    (alf / "probe00" / "iblsorter").mkdir()
    shutil.copytree(alf / "probe00" / "pykilosort", alf / "probe01", ignore=shutil.ignore_patterns("#*"))
    for name in ["spikes.times.npy", "spikes.clusters.npy"]:
        shutil.copy(alf / "probe00" / "pykilosort" / name, alf / "probe00" / name)  # an older, plain sorting
        shutil.copy(alf / "probe00" / "pykilosort" / name, alf / "probe00" / "iblsorter" / name)
    rebuild_cache(session)
    one_session = OneSession(session["one_cache"], session["session"])
    assert one_session.probe_collections("all") == ["alf/probe00/iblsorter", "alf/probe01"]
    assert one_session.probe_collections("probe00, probe00/pykilosort") == ["alf/probe00", "alf/probe00/pykilosort"]
