import logging
import sys

import pytest

from pipeline.logs import rule_log


def test_rule_log_captures_logging_stderr_and_tracebacks(tmp_path):
    log_file = tmp_path / "logs" / "job.log"
    stderr_before, handlers_before = sys.stderr, list(logging.getLogger().handlers)
    with pytest.raises(ValueError):
        with rule_log(log_file):
            logging.getLogger("pipeline.test").info("step one done")
            print("progress 50%", file=sys.stderr)
            raise ValueError("bad input in x.tif")
    text = log_file.read_text()
    assert "INFO pipeline.test: step one done" in text
    assert "progress 50%" in text
    assert "ValueError: bad input in x.tif" in text and "Traceback" in text
    assert sys.stderr is stderr_before  # restored
    assert logging.getLogger().handlers == handlers_before
