"""The generic table writer: three formats, one provenance, notes in the footer."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from pipeline.report.tables import (
    Provenance,
    Table,
    format_mean_sem,
    format_p_value,
    latex_escape,
    write_table,
)

PROVENANCE = Provenance(config_hash="0123456789abcdef", code_version="0.1.0+gdeadbeef", inputs="3 metrics files")


@pytest.fixture
def table():
    data = pd.DataFrame({"model": ["gpt2_small", "lstm"], "rmse_mean": [0.0612345678, 0.05], "n": [4, 1],
                         "p_adjusted": [0.012, math.nan]})
    display = pd.DataFrame({"Model": ["gpt2_small", "lstm"], "RMSE": ["0.061 ± 0.002", "0.050 ± n/a"],
                            "p": ["0.012*", "n.c."]})
    return Table(title="Table 9: a & b", data=data, display=display, notes=["* = p < 0.05", "n.c.: 1 run"])


def test_all_formats_carry_provenance_and_notes(tmp_path, table):
    paths = {fmt: tmp_path / f"t.{fmt}" for fmt in ("csv", "tex", "md")}
    write_table(table, paths, PROVENANCE)
    for path in paths.values():
        text = path.read_text(encoding="utf-8")
        assert "0123456789abcdef" in text and "0.1.0+gdeadbeef" in text and "3 metrics files" in text
        assert "n.c.: 1 run" in text
    tex, md = paths["tex"].read_text(), paths["md"].read_text()
    # display table in LaTeX/Markdown, escaped for LaTeX
    assert r"gpt2\_small & 0.061 $\pm$ 0.002 & 0.012* \\" in tex and r"\caption{Table 9: a \& b}" in tex
    assert "| gpt2_small | 0.061 ± 0.002 | 0.012* |" in md and "- * = p < 0.05" in md
    assert md.index("| Model |") < md.index("- n.c.: 1 run")  # notes are the footer


def test_csv_reads_back_at_full_precision(tmp_path, table):
    write_table(table, {"csv": tmp_path / "t.csv"}, PROVENANCE)
    text = (tmp_path / "t.csv").read_text()
    assert text.startswith("# Table 9: a & b\n# config hash: 0123456789abcdef\n")
    back = pd.read_csv(tmp_path / "t.csv", comment="#")
    pd.testing.assert_frame_equal(back, table.data)


def test_unknown_format_is_an_error(tmp_path, table):
    with pytest.raises(ValueError, match="docx"):
        write_table(table, {"docx": tmp_path / "t.docx"}, PROVENANCE)
    assert not list(tmp_path.iterdir())


def test_formatting_helpers():
    assert format_mean_sem(0.0523, 0.0011) == "0.052 ± 0.001"
    assert format_mean_sem(0.0523, math.nan) == "0.052 ± n/a"
    assert format_mean_sem(0.05304, 0.00031) == "0.0530 ± 0.0003"  # the SEM keeps a significant digit
    assert format_mean_sem(0.05, 0.0) == "0.050 ± 0.000"
    assert format_p_value(0.0004) == "<0.001" and format_p_value(0.01234) == "0.0123"
    assert format_p_value(math.nan) == "n/a"
    assert latex_escape("50% of a_b † ≥ 2") == r"50\% of a\_b $^\dagger$ $\geq$ 2"
    assert latex_escape("p <0.001") == r"p $<$0.001"
