"""Send a stage's logging, warnings, tracebacks and tqdm progress to its rule's log file."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import traceback
from pathlib import Path
from typing import Iterator


@contextlib.contextmanager
def rule_log(log_path: str | os.PathLike, level: int = logging.INFO) -> Iterator[None]:
    """Within the block, route ``logging`` records and ``sys.stderr`` (tqdm writes its
    progress bars there) to ``log_path``. An exception is logged with its traceback,
    then re-raised so the job fails (Snakemake shows the log with --show-failed-logs)."""
    log_path = Path(log_path)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", buffering=1) as stream:
        handler = logging.StreamHandler(stream)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        root = logging.getLogger()
        previous_level, previous_stderr = root.level, sys.stderr
        root.addHandler(handler)
        root.setLevel(level)
        logging.captureWarnings(True)
        sys.stderr = stream
        try:
            yield
        except BaseException:
            stream.write(traceback.format_exc())
            raise
        finally:
            sys.stderr = previous_stderr
            logging.captureWarnings(False)
            root.removeHandler(handler)
            root.setLevel(previous_level)
