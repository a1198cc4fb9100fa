"""Spike binning against brute-force histograms (REAL spikes and synthetic sessions), the
binned-session file, ground-truth regions and rates, and bad input."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from pipeline.ibl.binning import BinningConfig, bin_session, bin_spikes
from pipeline.io.errors import InputDataError

from helpers import require_real_ibl_fixtures
from ibl_sessions import copy_session

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
    counts = bin_spikes(spike_times, rows[spike_clusters], clusters.size, align, CONFIG.relative_edges_s)
    expected = brute_force_counts(spike_times, spike_clusters, clusters, align, CONFIG.relative_edges_s)
    np.testing.assert_array_equal(counts, expected)
    # conservation: every spike of a kept neuron inside a window is counted once per window
    for i, t0 in enumerate(align):
        inside = (spike_times >= t0 - 0.5) & (spike_times < t0 + 1.5) & np.isin(spike_clusters, clusters)
        assert counts[i].sum() == inside.sum()


def test_spike_on_a_bin_edge_goes_to_the_bin_it_opens():
    relative = np.array([0.0, 0.02, 0.04])
    counts = bin_spikes(np.array([10.0, 10.02, 10.04]), np.zeros(3, int), 1, np.array([10.0]), relative)
    assert counts[0, :, 0].tolist() == [1, 1]  # 10.04 is the window's end: excluded


@pytest.fixture(scope="module")
def binned(synthetic_session, tmp_path_factory):
    out = tmp_path_factory.mktemp("binned") / "ses.h5"
    bin_session(synthetic_session, out, CONFIG, split_seed=11, progress=False)
    return out


def test_binned_file_matches_brute_force_and_ground_truth(binned, synthetic_session):
    alf = Path(synthetic_session["alf_dir"])
    spike_times = np.load(alf / "probe00" / "spikes.times.npy")
    spike_clusters = np.load(alf / "probe00" / "spikes.clusters.npy").astype(np.int64)
    with h5py.File(binned) as f, h5py.File(synthetic_session["truth"]) as truth:
        counts = f["spikes/counts"][()]
        clusters = f["neurons/cluster_id"][()]
        align = f["trials/align_time_s"][()]
        assert counts.shape == (align.size, 100, clusters.size)
        np.testing.assert_array_equal(f["time/bin_edges_s"][()], CONFIG.relative_edges_s)
        np.testing.assert_array_equal(
            counts, brute_force_counts(spike_times, spike_clusters, clusters, align, CONFIG.relative_edges_s)
        )
        # regions and firing rates are those of the generator
        true_regions = truth["clusters/acronym"].asstr()[()]
        assert f["neurons/region"].asstr()[()].tolist() == true_regions[clusters].tolist()
        true_rates = truth["clusters/rate_hz"][()]
        np.testing.assert_allclose(f["neurons/firing_rate_hz"][()], true_rates[clusters], rtol=0.25)
        assert np.all(true_rates[np.setdiff1d(np.arange(true_rates.size), clusters)] < 2.5)
        assert np.all(f["neurons/firing_rate_hz"][()] >= 2.0)
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


def test_real_spikes_through_the_whole_stage(real_spike_session, tmp_path):
    out = tmp_path / "real.h5"
    bin_session(real_spike_session, out, CONFIG, split_seed=1, progress=False)
    with h5py.File(out) as f:
        assert f["neurons/cluster_id"][()].max() <= 499
        assert f["spikes/counts"][()].sum() > 0


def _unsort_spikes(alf: Path):
    times = np.load(alf / "probe00" / "spikes.times.npy")
    times[[10, 11]] = times[[11, 10]] + np.array([0.0, 1.0])
    np.save(alf / "probe00" / "spikes.times.npy", times)


def _cluster_out_of_range(alf: Path):
    clusters = np.load(alf / "probe00" / "spikes.clusters.npy")
    clusters[5] = 10_000
    np.save(alf / "probe00" / "spikes.clusters.npy", clusters)


@pytest.mark.parametrize(
    "break_session, message",
    [
        (lambda alf: (alf / "_ibl_wheel.position.npy").unlink(), "missing ALF dataset wheel.position"),
        (lambda alf: (alf / "probe00" / "spikes.clusters.npy").unlink(), "missing ALF dataset spikes.clusters"),
        (lambda alf: (alf / "_ibl_trials.stimOn_times.npy").unlink(), "missing ALF dataset trials.stimOn_times"),
        (_unsort_spikes, "not sorted"),
        (_cluster_out_of_range, "cluster ids range 0..10000"),
        (lambda alf: np.save(alf / "_ibl_trials.choice.npy", np.zeros(120)), "no trial left after filtering"),
        (lambda alf: np.save(alf / "_ibl_trials.choice.npy", np.zeros(7)), "trial arrays differ in length"),
    ],
)
def test_bad_input_fails_naming_the_file_and_writes_nothing(synthetic_session, tmp_path, break_session, message):
    session = copy_session(synthetic_session, tmp_path / "ses")
    break_session(Path(session["alf_dir"]))
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
                    Path(session["alf_dir"]) / f"_ibl_wheel.{name}.npy")
    with pytest.raises(InputDataError, match="encoder counts"):
        bin_session(session, tmp_path / "x.h5", CONFIG, split_seed=1, progress=False)


def test_trials_table_parquet_gives_the_same_file(binned, synthetic_session, tmp_path):
    import pandas as pd

    session = copy_session(synthetic_session, tmp_path / "ses")
    alf = Path(session["alf_dir"])
    columns = {}
    for path in sorted(alf.glob("_ibl_trials.*.npy")):
        attribute = path.name.split(".")[1]
        if attribute != "intervals":
            columns[attribute] = np.load(path)
        path.unlink()
    pd.DataFrame(columns).to_parquet(alf / "_ibl_trials.table.pqt")
    out = tmp_path / "from_table.h5"
    bin_session(session, out, CONFIG, split_seed=11, progress=False)
    with h5py.File(binned) as a, h5py.File(out) as b:
        for name in ["spikes/counts", "trials/trial_index", "behavior/block", "splits/train"]:
            np.testing.assert_array_equal(a[name][()], b[name][()])
