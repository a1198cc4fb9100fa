"""Reading the Snakefile (what every `snakemake` call does before planning a job) imports
no heavy library: the parameter dataclasses the rules need live in light ``config`` modules
(pipeline.<package>.config), and the modules that need torch, scipy, h5py, ... import them
themselves (issue 17: `snakemake -n` over config/paper.yaml within 10 s on 2 cores)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from helpers import REPO

#: Libraries that reading the Snakefile must not import (snakemake itself imports numpy and pandas).
HEAVY = ("torch", "transformers", "peft", "bitsandbytes", "suite2p", "caiman", "sklearn", "scipy",
         "matplotlib", "h5py", "pynwb", "one", "statsmodels", "tifffile")

#: Runs snakemake's command line in this process; at exit prints which HEAVY modules were loaded.
PROBE = """
import atexit, json, sys
heavy = json.loads(sys.argv[1])
atexit.register(lambda: print("LOADED=" + json.dumps(sorted(m for m in heavy if m in sys.modules))))
from snakemake.cli import main
sys.argv = ["snakemake", *sys.argv[2:]]
main()
"""


def loaded_heavy_modules(*snakemake_args: str) -> list[str]:
    """The HEAVY modules loaded by `snakemake --list-rules` (parses the Snakefile, builds no DAG)."""
    result = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(HEAVY), "--snakefile", str(REPO / "Snakefile"), "--list-rules",
         *snakemake_args],
        cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600,
    )
    assert result.returncode == 0, result.stdout
    return json.loads(result.stdout.rsplit("LOADED=", 1)[1].splitlines()[0])


@pytest.mark.parametrize("configfile", [[], ["--configfile", "config/paper.yaml"]], ids=["demo", "paper"])
def test_reading_the_snakefile_imports_no_heavy_library(configfile):
    assert loaded_heavy_modules(*configfile) == []


def test_the_probe_sees_an_imported_library():
    """The probe is not blind: a module the Snakefile's Python imports is reported."""
    result = subprocess.run(
        [sys.executable, "-c", "import scipy.stats\n" + PROBE, json.dumps(HEAVY), "--version"],
        cwd=REPO, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=600,
    )
    assert "LOADED=" in result.stdout and '"scipy"' in result.stdout.rsplit("LOADED=", 1)[1], result.stdout
