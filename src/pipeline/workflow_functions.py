"""Functions the rule files (rules/*.smk) hand to Snakemake as params, and what Snakemake
does with them.

Snakemake calls a params function once per job and reads the function's parameter names
with ``inspect.signature`` three times per call (is it a deriving function, does it take
``groupid``, which of input / output / threads / resources to pass). At paper scale the
functions of the training and NEDS search chunk rules are called ~4,000 times in a dry run;
:func:`per_job` declares their parameters once instead (bench/README.md, "Where a paper dry
run's time goes")."""

from __future__ import annotations

import inspect
from typing import Callable, TypeVar

from snakemake.common import overwrite_function_params

F = TypeVar("F", bound=Callable)


def per_job(function: F) -> F:
    """``function`` with its parameters declared to Snakemake once: the mapping
    ``inspect.signature`` gives, stored where ``snakemake.common.get_function_params`` reads
    it first (``overwrite_function_params``, the mechanism of Snakemake's own ``subpath``
    helper). Snakemake passes the same arguments and gets the same value; only the signature
    look-ups go. Returns ``function`` itself (usable as a decorator)."""
    overwrite_function_params(function, inspect.signature(function).parameters)
    return function
