"""ScanImage acquisitions written the way ScanImage lays them out (tifffile, SI.* metadata in
the Software tag, a frame header per page): planes, channels and flyback frames come out
pixel-identical to the per-plane truth, header frame times are used, an incomplete last
volume is dropped, and bad acquisitions are refused naming the file."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import tifffile

from pipeline.config import acquisition_files
from pipeline.io.errors import InputDataError
from pipeline.io.scanimage import iter_plane_frames, read_acquisition, write_plane_stack

from scanimage_files import (CHANNELS, FLYBACK, FRAME_RATE_HZ, LX, LY, SLICES, VOLUMES, static_metadata, truth_movie,
                             write_acquisition)


def test_planes_channels_and_flyback_deinterleave_pixel_identical(tmp_path):
    movie = truth_movie()
    files = write_acquisition(tmp_path, movie, pages_per_file=10)  # files split mid-volume
    assert len(files) > 2
    for channel, position in ((2, 1), (1, 0)):
        layout, frame_times, all_frames = read_acquisition(files, channel, SLICES)
        assert (layout.n_volumes, layout.n_flyback, layout.n_dropped_pages) == (VOLUMES, FLYBACK, 0)
        for plane in range(SLICES):
            frames = np.stack(list(iter_plane_frames(layout, plane)))
            np.testing.assert_array_equal(frames, movie[:, plane, position])
    # header frame times (frame starts): frame index f = page // channels
    frame_index = np.arange(VOLUMES)[None, :] * (SLICES + FLYBACK) + np.arange(SLICES)[:, None]
    np.testing.assert_allclose(frame_times, frame_index / FRAME_RATE_HZ, atol=1e-6)
    np.testing.assert_allclose(all_frames, np.arange(VOLUMES * (SLICES + FLYBACK)) / FRAME_RATE_HZ, atol=1e-6)

    out = tmp_path / "plane1.tif"
    write_plane_stack(layout, 1, out)
    np.testing.assert_array_equal(tifffile.imread(out), movie[:, 1, 0])


def test_incomplete_last_volume_is_dropped_and_logged(tmp_path, caplog):
    movie = truth_movie()
    files = write_acquisition(tmp_path, movie, pages_per_file=16, drop_last_pages=3)
    with caplog.at_level(logging.WARNING):
        layout, frame_times, all_frames = read_acquisition(files, 2, SLICES)
    assert layout.n_volumes == VOLUMES - 1 and layout.n_dropped_pages == 2 * (SLICES + FLYBACK) - 3
    assert frame_times.shape == (SLICES, VOLUMES - 1)
    assert all_frames.size == VOLUMES * (SLICES + FLYBACK) - 1  # 3 pages = the last frame and half of one
    assert "incomplete" in caplog.text and files[-1] in caplog.text
    np.testing.assert_array_equal(np.stack(list(iter_plane_frames(layout, 2))), movie[: VOLUMES - 1, 2, 1])


def test_single_channel_without_flyback_and_classic_tiff(tmp_path):
    movie = truth_movie(flyback=0, channels=(1,))
    meta = static_metadata(flyback=0, channels=(1,))
    files = write_acquisition(tmp_path, movie, pages_per_file=100, meta=meta, bigtiff=False)
    layout, _, _ = read_acquisition(files, None, SLICES)  # one saved channel: no column needed
    np.testing.assert_array_equal(np.stack(list(iter_plane_frames(layout, 0))), movie[:, 0, 0])


def test_glob_expands_in_name_order(tmp_path):
    files = write_acquisition(tmp_path, truth_movie(), pages_per_file=20)
    assert acquisition_files(str(tmp_path / "fish_*.tif")) == files
    with pytest.raises(InputDataError, match="no ScanImage file matches"):
        acquisition_files(str(tmp_path / "other_*.tif"))


def test_mixed_acquisitions_are_refused(tmp_path):
    for name in "abc":
        (tmp_path / name).mkdir()
    first = write_acquisition(tmp_path / "a", truth_movie(), 10)
    other = write_acquisition(tmp_path / "b", truth_movie(seed=1), 10, epoch="[2024 5 1 11 30 0]")
    with pytest.raises(InputDataError, match="different acquisitions") as err:
        read_acquisition(first[:2] + other[2:3], 1, SLICES)
    assert other[2] in str(err.value)
    # same settings and start time but frame numbers restart: a second acquisition's file
    restart = write_acquisition(tmp_path / "c", truth_movie(seed=2), 10)
    with pytest.raises(InputDataError, match="frame numbers do not continue") as err:
        read_acquisition(first[:2] + restart[:1], 1, SLICES)
    assert restart[0] in str(err.value)


def test_unsaved_channel_and_missing_channel_column_are_refused(tmp_path):
    files = write_acquisition(tmp_path, truth_movie(), 40)
    with pytest.raises(InputDataError, match=r"channel 3 was not saved \(saved channels: \[1, 2\]\)") as err:
        read_acquisition(files, 3, SLICES)
    assert files[0] in str(err.value)
    with pytest.raises(InputDataError, match="set the fish table's 'channel'"):
        read_acquisition(files, None, SLICES)


def test_inconsistent_slice_counts_between_files_are_refused(tmp_path):
    files = write_acquisition(tmp_path, truth_movie(), 16)
    (tmp_path / "b").mkdir()
    four = write_acquisition(tmp_path / "b", truth_movie(slices=4), 16, meta=static_metadata(slices=4))
    with pytest.raises(InputDataError, match="inconsistent slice counts") as err:
        read_acquisition(files[:1] + four[1:2], 1, SLICES)
    assert four[1] in str(err.value)
    with pytest.raises(InputDataError, match="declares n_planes=5"):
        read_acquisition(files, 1, 5)


def test_imagej_hyperstack_and_plain_tiff_are_refused_clearly(tmp_path):
    hyperstack = tmp_path / "resaved.tif"
    tifffile.imwrite(hyperstack, truth_movie()[:, :SLICES, 0], imagej=True)
    with pytest.raises(InputDataError, match="ImageJ/Fiji file .* not a ScanImage file"):
        read_acquisition([str(hyperstack)], 1, SLICES)
    plain = tmp_path / "plain.tif"
    tifffile.imwrite(plain, np.zeros((4, LY, LX), np.uint16), photometric="minisblack")
    with pytest.raises(InputDataError, match="not a ScanImage TIFF"):
        read_acquisition([str(plain)], 1, SLICES)
