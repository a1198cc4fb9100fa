"""One table, three files: CSV (full-precision values for analysis), LaTeX (booktabs, for
the paper) and Markdown (for READMEs and the HTML report), each carrying the same
provenance header (title, config hash, code version, inputs) and footer (the notes:
what each column means, the statistics used).

Generic: any stage (NLP4Neuro tables, salience, NEDS) builds a :class:`Table` and calls
:func:`write_table`::

    table = Table(title="Table 1: ...", data=tidy_frame, display=formatted_frame,
                  notes=["RMSE: paper Eq. 15 ...", "Mann-Whitney U ..."])
    write_table(table, {"csv": "t1.csv", "tex": "t1.tex", "md": "t1.md"},
                Provenance(config_hash="ab12...", code_version="0.1.0+g...", inputs="40 metrics files"))

CSV layout: ``# key: value`` lines, the table, then ``# note`` lines
(``pandas.read_csv(path, comment="#")`` reads the table back). LaTeX: a ``table``
environment whose caption is the title, the provenance in a leading comment and in the
footnote block under the tabular. Markdown: a heading, a provenance line, a pipe table,
and the notes as a list.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import pandas as pd

from pipeline.io.atomic import atomic_paths

FORMATS = ("csv", "tex", "md")


@dataclass(frozen=True)
class Provenance:
    """What a table was made from: the hash of the configuration it summarises and the
    code version (pipeline.provenance), plus a free-text description of its inputs."""

    config_hash: str
    code_version: str
    inputs: str = ""

    def lines(self) -> list[str]:
        lines = [f"config hash: {self.config_hash}", f"code version: {self.code_version}"]
        return lines + ([f"inputs: {self.inputs}"] if self.inputs else [])


@dataclass(frozen=True)
class Table:
    """``data``: machine-readable values (CSV); ``display``: the same table formatted for
    reading (strings; LaTeX and Markdown), defaults to ``data``; ``notes``: footer lines
    (definitions, tests, corrections, n)."""

    title: str
    data: pd.DataFrame
    display: pd.DataFrame | None = None
    notes: tuple[str, ...] | list[str] = field(default_factory=tuple)

    @property
    def shown(self) -> pd.DataFrame:
        return self.data if self.display is None else self.display


def format_value(value, digits: int = 3) -> str:
    """A number with ``digits`` decimals; NaN as "n/a"; other values as text."""
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return "n/a" if math.isnan(value) else f"{value:.{digits}f}"
    return str(value)


def format_mean_sem(mean: float, sem: float, digits: int = 3) -> str:
    """"mean ± SEM" with at least ``digits`` decimals, more when needed to show the SEM's
    first significant digit (up to 6): 0.0530 ± 0.0003, not 0.053 ± 0.000. SEM n/a (one
    value) keeps the mean with ``digits`` decimals."""
    if isinstance(sem, float) and math.isnan(sem):
        return f"{format_value(mean, digits)} ± n/a"
    if sem > 0:
        digits = min(6, max(digits, -math.floor(math.log10(sem))))
    return f"{format_value(float(mean), digits)} ± {format_value(float(sem), digits)}"


def format_p_value(p: float) -> str:
    """p with 3 significant digits; below 0.001 as "<0.001"."""
    if isinstance(p, float) and math.isnan(p):
        return "n/a"
    return "<0.001" if p < 1e-3 else f"{p:.3g}"


# ---- writers ---------------------------------------------------------------------------

def _comment_lines(lines) -> str:
    return "".join(f"# {line}\n" for line in lines)


def table_csv(table: Table, provenance: Provenance) -> str:
    header = _comment_lines([table.title, *provenance.lines()])
    return header + table.data.to_csv(index=False, float_format="%.10g") + _comment_lines(table.notes)


_LATEX_SPECIAL = {"\\": r"\textbackslash{}", "&": r"\&", "%": r"\%", "$": r"\$", "#": r"\#", "_": r"\_",
                  "{": r"\{", "}": r"\}", "~": r"\textasciitilde{}", "^": r"\textasciicircum{}",
                  "<": r"$<$", ">": r"$>$", "±": r"$\pm$", "≥": r"$\geq$", "≤": r"$\leq$", "†": r"$^\dagger$", "−": "-", "×": r"$\times$"}


def latex_escape(text) -> str:
    """Text safe inside a LaTeX tabular (special characters escaped; < > ± † ≥ ≤ × as math,
    since ``<`` and ``>`` print as other glyphs in text mode with the default font encoding)."""
    return "".join(_LATEX_SPECIAL.get(ch, ch) for ch in str(text))


def table_latex(table: Table, provenance: Provenance) -> str:
    shown = table.shown
    columns = " ".join("l" if i == 0 else "r" for i in range(shown.shape[1]))
    body = [" & ".join(latex_escape(c) for c in shown.columns) + r" \\", r"\midrule"]
    body += [" & ".join(latex_escape(format_value(v)) for v in row) + r" \\" for row in shown.itertuples(index=False)]
    footer = [*table.notes, "; ".join(provenance.lines())]
    return "\n".join([
        *(f"% {line}" for line in provenance.lines()),
        r"\begin{table}[t]", r"\centering", r"\small",
        rf"\caption{{{latex_escape(table.title)}}}",
        rf"\begin{{tabular}}{{{columns}}}", r"\toprule", *body, r"\bottomrule", r"\end{tabular}",
        r"\par\smallskip\footnotesize",
        *(latex_escape(line) + r"\\" for line in footer),
        r"\end{table}", "",
    ])


def _md_cell(value) -> str:
    return format_value(value).replace("|", r"\|").replace("\n", " ")


def table_markdown(table: Table, provenance: Provenance) -> str:
    shown = table.shown
    lines = [f"### {table.title}", "", "_" + "; ".join(provenance.lines()) + "_", ""]
    lines.append("| " + " | ".join(_md_cell(c) for c in shown.columns) + " |")
    lines.append("|" + "|".join(":---" if i == 0 else "---:" for i in range(shown.shape[1])) + "|")
    lines += ["| " + " | ".join(_md_cell(v) for v in row) + " |" for row in shown.itertuples(index=False)]
    lines += [""] + [f"- {note}" for note in table.notes] + [""]
    return "\n".join(lines)


WRITERS = {"csv": table_csv, "tex": table_latex, "md": table_markdown}


def write_table(table: Table, paths: Mapping[str, str | os.PathLike], provenance: Provenance) -> None:
    """Write the table in each format of ``paths`` (keys among csv, tex, md), atomically."""
    unknown = set(paths) - set(WRITERS)
    if unknown:
        raise ValueError(f"unknown table formats {sorted(unknown)}; known: {FORMATS}")
    formats = list(paths)
    with atomic_paths(*(paths[f] for f in formats)) as tmps:
        for fmt, tmp in zip(formats, tmps):
            Path(tmp).write_text(WRITERS[fmt](table, provenance), encoding="utf-8")
