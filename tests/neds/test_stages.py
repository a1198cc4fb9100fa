"""pipeline.neds.stages: every NEDS rule's job imports it, so importing it loads torch only;
the stages that need scikit-learn (baselines, region classification) or pandas and scipy (the
report) import their modules themselves (issue 17: job start-up CPU)."""

from __future__ import annotations

import json

from helpers import modules_loaded_by
from pipeline.neds.config import BaselineParams

#: Libraries that importing pipeline.neds.stages must not load (torch is what every NEDS job needs).
NOT_AT_IMPORT = ("sklearn", "scipy", "pandas", "matplotlib")


def test_importing_the_stages_loads_neither_sklearn_nor_pandas():
    assert modules_loaded_by("import pipeline.neds.stages", NOT_AT_IMPORT) == []


def test_baselines_stage_imports_what_it_needs_and_writes_its_record(binned_sessions, tmp_path):
    from pipeline.neds import stages

    binned = next(iter(binned_sessions.values()))
    record = stages.run_baselines(binned, BaselineParams(cv_folds=2), seed=0, out_path=tmp_path / "baselines.json")
    assert {"session", "linear", "chance"} <= set(record)
    assert json.loads((tmp_path / "baselines.json").read_text())["session"] == record["session"]
