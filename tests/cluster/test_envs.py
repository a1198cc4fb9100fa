"""Conda environments (`snakemake --sdm conda`): every rule names an existing, well-formed
env file; motion correction switches to envs/caiman.yaml for the CaImAn backend; and the
code that job imports needs nothing that envs/caiman.yaml does not bring."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from cluster import new_workdir
from helpers import REPO

ENVS = REPO / "envs"
#: Import names of distributions whose pip name differs.
IMPORT_NAMES = {"pyyaml": "yaml", "scikit-learn": "sklearn"}
#: What the conda-forge caiman package itself brings (its core run requirements).
CAIMAN_BRINGS = {"numpy", "scipy"}


def env_spec(name: str) -> dict:
    return yaml.safe_load((ENVS / name).read_text())


def pip_packages(env: dict) -> list[str]:
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    return [requirement.split("==")[0].lower() for requirement in pip]


def rule_conda_envs(tmp_path: Path, config: dict) -> dict[str, str | None]:
    """Rule name -> its conda directive, from the parsed workflow (cluster config + config)."""
    workdir = new_workdir(tmp_path)
    script = textwrap.dedent(f"""
        from pathlib import Path
        from snakemake.api import SnakemakeApi
        from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings
        with SnakemakeApi(OutputSettings(quiet={{"all"}})) as api:
            workflow = api.workflow(resource_settings=ResourceSettings(), config_settings=ConfigSettings(config={config!r}),
                                    snakefile=Path({str(REPO / "Snakefile")!r}), workdir=Path({str(workdir)!r}))
            for rule in workflow._workflow.rules:
                print("RULE", rule.name, rule.conda_env)
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=workdir, text=True, capture_output=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    envs = {}
    for line in result.stdout.splitlines():
        if line.startswith("RULE "):
            _, name, env = line.split(" ", 2)
            envs[name] = None if env == "None" else env
    return envs


@pytest.mark.parametrize("env_file", sorted(p.name for p in ENVS.glob("*.yaml")))
def test_env_files_are_well_formed(env_file):
    env = env_spec(env_file)
    assert env["channels"][0] == "conda-forge" and "nodefaults" in env["channels"]
    assert "python=3.11" in env["dependencies"] and "pip" in env["dependencies"]
    assert pip_packages(env), env_file


def test_every_rule_has_an_existing_conda_env_and_caiman_switches_motion_correction(tmp_path):
    default = rule_conda_envs(tmp_path / "default", {})
    caiman = rule_conda_envs(tmp_path / "caiman", {"motion_correction": {"method": "caiman"}})
    for name, env in default.items():
        if name == "all":
            continue
        assert env == "../envs/pipeline.yaml", (name, env)
        assert (REPO / "rules" / env).resolve().is_file()
    assert caiman["motion_correct"] == "../envs/caiman.yaml"
    assert {n: e for n, e in caiman.items() if n != "motion_correct"} == {
        n: e for n, e in default.items() if n != "motion_correct"}
    assert "caiman>=1.11" in env_spec("caiman.yaml")["dependencies"]


def test_caiman_env_brings_every_module_the_caiman_motion_correction_imports():
    # Import the caiman job's code with every third-party package that envs/caiman.yaml
    # does not provide blocked (caiman itself is imported lazily, when the job runs).
    allowed = CAIMAN_BRINGS | {IMPORT_NAMES.get(name, name) for name in pip_packages(env_spec("caiman.yaml"))}
    script = textwrap.dedent(f"""
        import sys
        allowed = {sorted(allowed)!r}
        def importer():
            frame = sys._getframe(2)
            while frame and frame.f_globals.get("__name__", "").startswith(("importlib", "_frozen_importlib")):
                frame = frame.f_back
            return frame.f_globals.get("__name__", "") if frame else ""
        class Blocker:  # checks the imports of the pipeline's own code (packages import their deps)
            def find_spec(self, name, path=None, target=None):
                top = name.split(".")[0]
                if not importer().startswith(("pipeline", "__main__")):
                    return None
                if top in sys.stdlib_module_names or top in allowed or top == "pipeline":
                    return None
                raise ImportError(f"{{top}} (imported by {{importer()}}) is not in envs/caiman.yaml")
        sys.meta_path.insert(0, Blocker())
        import pipeline.logs, pipeline.imaging.motion, pipeline.imaging.caiman_registration
    """)
    result = subprocess.run([sys.executable, "-c", script], text=True, capture_output=True, timeout=120,
                            env={"PYTHONPATH": str(REPO / "src"), "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-3000:]
