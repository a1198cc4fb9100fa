"""Write outputs so that a failure never leaves a partial file behind.

Each stage writes into a temporary sibling path and renames it into place only when the
whole output is complete. If anything raises, the temporary files are removed and the
final paths are untouched (Snakemake also deletes outputs of failed jobs; this covers
scripts and library calls run outside Snakemake).
"""

from __future__ import annotations

import os
import shutil
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator


def _tmp_sibling(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex[:8]}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextmanager
def atomic_paths(*final_paths: str | os.PathLike) -> Iterator[list[Path]]:
    """Yield temporary paths, one per final path; on success rename each into place.

    Works for files and directories alike (the caller creates a directory at the
    temporary path if it wants one). Parent directories are created.

    >>> with atomic_paths("out/a.h5", "out/alf") as (tmp_h5, tmp_dir):
    ...     write_h5(tmp_h5); tmp_dir.mkdir(); write_alf(tmp_dir)
    """
    finals = [Path(p) for p in final_paths]
    tmps = [_tmp_sibling(p) for p in finals]
    for p in finals:
        p.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield tmps
        for tmp, final in zip(tmps, finals):
            if not tmp.exists():
                raise FileNotFoundError(f"stage finished without writing {final}")
        for tmp, final in zip(tmps, finals):
            _remove(final)
            os.replace(tmp, final)
    except BaseException:
        for tmp in tmps:
            _remove(tmp)
        raise


def write_json(obj: object, path: str | os.PathLike) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    import json

    with atomic_paths(path) as (tmp,):
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")
