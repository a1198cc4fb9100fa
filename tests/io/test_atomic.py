import json

import pytest

from pipeline.io.atomic import atomic_paths, write_json


def test_atomic_paths_renames_files_and_directories(tmp_path):
    final_file, final_dir = tmp_path / "out" / "a.txt", tmp_path / "out" / "alf"
    with atomic_paths(final_file, final_dir) as (tmp_file, tmp_dir):
        tmp_file.write_text("hello")
        tmp_dir.mkdir()
        (tmp_dir / "x.npy").write_bytes(b"1")
        assert not final_file.exists() and not final_dir.exists()
    assert final_file.read_text() == "hello"
    assert (final_dir / "x.npy").read_bytes() == b"1"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.txt", "alf"]


def test_atomic_paths_leaves_nothing_on_failure(tmp_path):
    final = tmp_path / "b.txt"
    final.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_paths(final) as (tmp,):
            tmp.write_text("partial")
            raise RuntimeError("stage failed")
    assert final.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["b.txt"]


def test_atomic_paths_requires_every_output(tmp_path):
    with pytest.raises(FileNotFoundError, match="c.txt"):
        with atomic_paths(tmp_path / "c.txt"):
            pass
    assert list(tmp_path.iterdir()) == []


def test_write_json(tmp_path):
    write_json({"b": 1, "a": [1, 2]}, tmp_path / "x.json")
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": [1, 2], "b": 1}
