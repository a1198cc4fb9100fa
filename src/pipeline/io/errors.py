"""Errors raised for bad input data: always name the offending file and the problem."""

from __future__ import annotations

import os


class InputDataError(ValueError):
    """An input file is missing, unreadable or inconsistent with its declared metadata."""

    def __init__(self, path: str | os.PathLike, problem: str):
        self.path = os.fspath(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")
