"""pipeline.io.alf.OneSession resolves a session's datasets exactly as ONE-api's
``filter_datasets`` (what ``load_object`` applies), with and without default-revision flags."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest
from iblutil.io import parquet
from one.util import filter_datasets

from pipeline.io.alf import OneSession

from ibl_sessions import copy_session


def _flag_default_revisions(session: dict, default: str) -> None:
    """Add ONE's ``default_revision`` column to the cache's datasets table: every dataset
    listed once is the default; of the revised one, the root release (``root``), the
    revision (``revision``) or neither (``none``: ONE then takes the latest)."""
    table_path = Path(session["one_cache"]) / "datasets.pqt"
    table, metadata = parquet.load(table_path)
    revised = table["rel_path"].str.contains("#")
    twin = table["rel_path"].isin(table.loc[revised, "rel_path"].str.replace("#.*#/", "", regex=True))
    table["default_revision"] = ~(revised | twin)
    table.loc[twin if default == "root" else revised if default == "revision" else [], "default_revision"] = True
    parquet.save(table_path, table, metadata)


@pytest.mark.parametrize("default", [None, "root", "revision", "none"])
def test_resolved_datasets_equal_one_filter_datasets(synthetic_session, tmp_path, default):
    session = copy_session(synthetic_session, tmp_path / "cache")
    if default is not None:
        _flag_default_revisions(session, default)
    one_session = OneSession(session["one_cache"], session["session"])
    listed = one_session.one.list_datasets(one_session.eid, details=True, keep_eid_index=True)
    assert listed["rel_path"].str.contains("#").sum() == 1  # one dataset has a revision folder
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = filter_datasets(listed, assert_unique=False, wildcards=True)
    assert sorted(one_session._datasets["rel_path"]) == sorted(expected["rel_path"])
    if default is not None:
        assert "default_revision" in listed.columns
    revised = [p for p in expected["rel_path"] if "brainLocationIds" in p and p.startswith("alf/probe00")]
    assert len(revised) == 1 and ("#" in revised[0]) == (default != "root")
