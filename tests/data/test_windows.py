"""Chronological splits, training-only normalisation, lazy windows, overlap averaging."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from pipeline.data.windows import (
    DecodingRecording,
    Normaliser,
    WindowSet,
    average_overlapping_windows,
    blocked_fold_split,
    chronological_split,
    make_splits,
)


def recording(n_frames=100, n_neurons=7, seed=0) -> DecodingRecording:
    rng = np.random.default_rng(seed)
    activity = (rng.standard_normal((n_frames, n_neurons)) * np.arange(1, n_neurons + 1) + 5).astype(np.float32)
    tail = (0.1 * rng.standard_normal((n_frames, 6))).astype(np.float32)
    return DecodingRecording(activity, tail, np.zeros((n_neurons, 3), np.float32),
                             np.array(["Pt"] * n_neurons), np.arange(n_frames) / 1.1, "dff")


def test_split_is_contiguous_chronological_and_covers_every_frame():
    ranges = chronological_split(100, (0.7, 0.15, 0.15), seq_len=5)
    assert [(r.start, r.stop) for r in ranges.values()] == [(0, 70), (70, 85), (85, 100)]
    with pytest.raises(ValueError, match="fewer than seq_len"):
        chronological_split(100, (0.7, 0.15, 0.15), seq_len=20)
    with pytest.raises(ValueError, match="sum"):
        chronological_split(100, (0.7, 0.2, 0.2), seq_len=5)


def test_no_window_crosses_a_split_boundary():
    splits = make_splits(recording(), (0.7, 0.15, 0.15), seq_len=10)
    for name in ("train", "val", "test"):
        windows = splits[name]
        frames = windows.frame_index(torch.arange(len(windows))) + windows.first_frame
        (block,) = splits.frame_segments[name]
        assert frames.min() == block.start and frames.max() == block.stop - 1
    assert len(splits.train) == 70 - 10 + 1


def test_normalisation_uses_training_frames_only():
    rec = recording()
    splits = make_splits(rec, (0.7, 0.15, 0.15), seq_len=5)
    train = splits.train.inputs.numpy()
    np.testing.assert_allclose(train.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(train.std(0), 1, atol=1e-4)
    # Changing the test block must not change anything the model is trained on.
    altered = rec.neural_activity.copy()
    altered[85:] *= 100
    splits2 = make_splits(DecodingRecording(altered, *[getattr(rec, f) for f in
                                                      ("tail_angles", "neuron_position_um", "neuron_region",
                                                       "frame_times_s", "signal")]), (0.7, 0.15, 0.15), 5)
    assert torch.equal(splits.train.inputs, splits2.train.inputs)
    assert not torch.equal(splits.test.inputs, splits2.test.inputs)
    # A per-frame normalisation across neurons (the original scripts) would differ here.
    np.testing.assert_allclose(splits.tail_normaliser.inverse(splits.test.targets.numpy()),
                               rec.tail_angles[85:], atol=1e-6)


def test_constant_neuron_is_centred_not_divided_by_zero():
    normaliser = Normaliser.fit(np.array([[1.0, 3.0], [1.0, 5.0]], dtype=np.float32))
    assert np.all(np.isfinite(normaliser.transform(np.array([[2.0, 4.0]], dtype=np.float32))))


def test_gathered_windows_equal_materialised_windows():
    rng = np.random.default_rng(1)
    inputs, targets = rng.standard_normal((30, 4)), rng.standard_normal((30, 6))
    windows = WindowSet(inputs, targets, seq_len=7)
    index = torch.tensor([0, 5, 23])
    x, y = windows.batch(index)
    for row, start in enumerate(index.tolist()):
        np.testing.assert_allclose(x[row].numpy(), inputs[start : start + 7], rtol=1e-6)
        np.testing.assert_allclose(y[row].numpy(), targets[start : start + 7], rtol=1e-6)
    assert len(windows) == 24
    # One copy of the block whatever seq_len is (windows are never materialised).
    assert WindowSet(inputs, targets, seq_len=20).inputs.numel() == windows.inputs.numel() == 30 * 4


def test_overlap_average_matches_brute_force():
    rng = np.random.default_rng(2)
    values = rng.standard_normal((12, 4, 6))
    averaged = average_overlapping_windows(values)
    assert averaged.shape == (15, 6)
    for frame in range(15):
        members = [values[w, frame - w] for w in range(12) if 0 <= frame - w < 4]
        np.testing.assert_allclose(averaged[frame], np.mean(members, axis=0), rtol=1e-5)


def test_blocks_are_views_of_one_normalised_copy():
    splits = make_splits(recording(), (0.7, 0.15, 0.15), seq_len=5)
    # train, val and test are consecutive rows of one (frames, neurons) float32 buffer
    assert splits.train.inputs.data_ptr() + 70 * 7 * 4 == splits.val.inputs.data_ptr()
    assert splits.val.inputs.data_ptr() + 15 * 7 * 4 == splits.test.inputs.data_ptr()


def test_windows_over_invalid_volumes_never_reach_training_or_metrics():
    """Brute force: a window is kept iff its block holds all its frames and all are valid;
    the tail normaliser sees valid training volumes only; invalid targets are never gathered."""
    rec = recording(n_frames=120)
    valid = np.ones(120, bool)
    valid[[3, 40, 41, 90, 110]] = False
    tail = rec.tail_angles.copy()
    tail[~valid] = 1e6  # what a broken tracker would leave
    rec = DecodingRecording(rec.neural_activity, tail, rec.neuron_position_um, rec.neuron_region,
                            rec.frame_times_s, rec.signal, valid)
    seq_len = 6
    splits = make_splits(rec, (0.6, 0.2, 0.2), seq_len)
    for name in ("train", "val", "test"):
        (block,) = splits.frame_segments[name]
        expected = [s - block.start for s in block if s + seq_len <= block.stop and valid[s : s + seq_len].all()]
        windows = splits[name]
        np.testing.assert_array_equal(windows.window_starts.numpy(), expected)
        _, targets = windows.batch(torch.arange(len(windows)))
        assert torch.isfinite(targets).all() and targets.abs().max() < 10
    train_valid = np.flatnonzero(valid[:72])
    np.testing.assert_allclose(splits.tail_normaliser.mean, tail[train_valid].mean(0), rtol=1e-5)
    assert torch.isnan(splits.train.targets[3]).all()  # z-scored target of an invalid volume: NaN, never used
    with pytest.raises(ValueError, match="no window of seq_len=6 valid volumes"):
        WindowSet(np.zeros((8, 2)), np.zeros((8, 6)), 6, valid=np.array([1, 1, 1, 0, 1, 1, 1, 1], bool))


def test_overlap_average_with_gaps_matches_brute_force():
    rng = np.random.default_rng(3)
    starts = np.array([0, 1, 2, 7, 8, 12])
    values = rng.standard_normal((starts.size, 3, 6))
    averaged = average_overlapping_windows(values, starts, n_frames=16)
    for frame in range(16):
        members = [values[w, frame - s] for w, s in enumerate(starts) if 0 <= frame - s < 3]
        if members:
            np.testing.assert_allclose(averaged[frame], np.mean(members, axis=0), rtol=1e-5)
        else:
            assert np.isnan(averaged[frame]).all()  # frames 5, 6 and 15 are in no window
    assert np.isnan(averaged[[5, 6, 15]]).all()


@pytest.mark.parametrize("n_frames, n_folds, seq_len", [(1000, 5, 10), (997, 3, 7), (200, 4, 1)])
def test_blocked_folds_tile_the_recording_with_gaps_of_seq_len(n_frames, n_folds, seq_len):
    """Test blocks are disjoint, contiguous and together cover every volume once; validation
    sits just before the test block (fold 0: just after) with seq_len volumes between them;
    training keeps seq_len volumes away from both and takes every other volume."""
    folds = [blocked_fold_split(n_frames, n_folds, f, 0.1, seq_len) for f in range(n_folds)]
    tests = [fold["test"][0] for fold in folds]
    assert [f["test"] for f in folds] == [(t,) for t in tests]
    np.testing.assert_array_equal(np.concatenate([np.arange(t.start, t.stop) for t in tests]), np.arange(n_frames))
    for f, fold in enumerate(folds):
        (val,), (test,) = fold["val"], fold["test"]
        assert len(val) == round(0.1 * n_frames)
        assert (val.stop + seq_len == test.start) if f > 0 else (test.stop + seq_len == val.start)
        held_out = set(range(min(val.start, test.start) - seq_len, max(val.stop, test.stop) + seq_len))
        train = set().union(*map(set, fold["train"]))
        assert not train & held_out
        assert train | held_out >= set(range(n_frames))  # nothing else is left out (segments >= seq_len)
        assert all(len(r) >= seq_len for r in fold["train"]) and len(fold["train"]) == (2 if 0 < f < n_folds - 1 else 1)


def test_blocked_folds_reject_layouts_that_do_not_fit():
    with pytest.raises(ValueError, match="test block has 4 frames, fewer than seq_len=5"):
        blocked_fold_split(20, 5, 0, 0.3, 5)
    with pytest.raises(ValueError, match="does not fit"):
        blocked_fold_split(100, 5, 1, 0.3, 5)  # 30 validation volumes before a test block starting at 20
    with pytest.raises(ValueError, match="n_folds >= 2"):
        blocked_fold_split(100, 1, 0, 0.1, 5)


def test_no_window_of_a_fold_crosses_blocks_or_segments():
    """Every window of every block of a middle fold (training in two segments) covers
    seq_len consecutive recording volumes inside one segment; the training windows are all
    the windows that fit in its segments, and the normaliser sees training volumes only."""
    rec, seq_len = recording(n_frames=300), 6
    splits = make_splits(rec, (0.7, 0.1, 0.2), seq_len, cv_folds=3, fold=1)
    for name in ("train", "val", "test"):
        windows = splits[name]
        frames = splits.frames(name)[windows.frame_index(torch.arange(len(windows))).numpy()]
        assert (np.diff(frames, axis=1) == 1).all()
        segments = splits.frame_segments[name]
        assert all(any(f[0] in r and f[-1] in r for r in segments) for f in frames)
        assert len(windows) == sum(len(r) - seq_len + 1 for r in segments)
    assert len(splits.frame_segments["train"]) == 2
    train = splits.frames("train")
    np.testing.assert_allclose(splits.activity_normaliser.mean, rec.neural_activity[train].mean(0), rtol=1e-5)
    held_out = splits.frame_segments["val"][0].start - seq_len, splits.frame_segments["test"][0].stop + seq_len
    assert not ((train >= held_out[0]) & (train < held_out[1])).any()
    # the windows' inputs are the normalised activity of those volumes
    np.testing.assert_allclose(splits.train.inputs.numpy(), splits.activity_normaliser.transform(rec.neural_activity[train]))


def test_a_single_split_is_unchanged_by_the_fold_machinery():
    rec = recording()
    splits = make_splits(rec, (0.7, 0.15, 0.15), seq_len=5)
    assert splits.frame_segments == {"train": (range(0, 70),), "val": (range(70, 85),), "test": (range(85, 100),)}
    assert splits.n_recording_frames == 100 and len(splits.train) == 66
