"""Config schema and recordings tables: valid configs pass, bad values fail naming the key."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from pipeline.config import ConfigError, plane_paths, read_fish_table, read_session_table, resolved_config

from helpers import REPO

SCHEMA = REPO / "config" / "schema"
CONFIGS = [REPO / "config" / "config.yaml", REPO / "config" / "paper.yaml", REPO / ".test" / "config" / "config.yaml"]


def load(path):
    return yaml.safe_load(path.read_text())


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(REPO)))
def test_shipped_configs_and_tables_are_valid(path):
    config = load(path)
    validate(config, str(SCHEMA / "config.schema.yaml"))
    root = path.parents[1]  # tables are relative to the working directory holding config/
    fish = read_fish_table(root / config["fish_table"])
    sessions = read_session_table(root / config["session_table"])
    validate(fish, str(SCHEMA / "fish.schema.yaml"))
    validate(sessions, str(SCHEMA / "sessions.schema.yaml"))
    assert pd.api.types.is_integer_dtype(fish["n_planes"]) and pd.api.types.is_float_dtype(fish["volume_rate_hz"])
    assert set(sessions["wheel_units"]) <= {"rad", "counts"}  # schema default fills the column


def _keys(tree, prefix=()):
    for key, value in tree.items():
        yield prefix + (key,)
        if isinstance(value, dict):
            yield from _keys(value, prefix + (key,))


def test_paper_config_overrides_every_demo_key():
    # `--configfile config/paper.yaml` is merged over config/config.yaml, so a key the
    # demo sets and paper.yaml omits would silently leak demo values into a paper run.
    # Exception: the model catalog (nlp4neuro.models), whose demo entries merge in unused
    # unless a paper experiment names them; but every demo experiment must be overridden.
    demo, paper = load(CONFIGS[0]), load(CONFIGS[1])
    catalog = ("nlp4neuro", "models")
    demo_keys = {k for k in _keys(demo) if k[:2] != catalog or len(k) == 2}
    assert demo_keys <= set(_keys(paper))


def test_paper_config_is_paper_scale():
    paper = load(CONFIGS[1])
    experiments = paper["nlp4neuro"]["experiments"]
    assert experiments["model_comparison"]["seq_lens"] == [5, 10, 15, 20]
    assert {e["n_runs"] for e in experiments.values()} == {10}
    assert experiments["model_comparison"]["split_fractions"] == [0.7, 0.15, 0.15]
    assert experiments["pretrained_vs_untrained"]["split_fractions"] == [0.7, 0.1, 0.2]
    models = paper["nlp4neuro"]["models"]
    assert models["deepseek_coder_7b"]["architecture"]["source"] == "deepseek-ai/deepseek-coder-6.7b-base"
    assert models["bert"]["architecture"]["source"] == "bert-base-uncased"
    fish = read_fish_table(REPO / paper["fish_table"])
    assert len(fish) == 5 and set(fish["n_planes"]) == {5}


@pytest.mark.parametrize(
    "mutate, key",
    [
        (lambda c: c.update(seed=-1), "seed"),
        (lambda c: c.update(sede=1), "sede"),
        (lambda c: c["nlp4neuro"]["experiments"]["model_comparison"].update(n_runs=0), "n_runs"),
        (lambda c: c["nlp4neuro"]["models"].update(rnn={"kind": "gru"}), "kind"),
        (lambda c: c["nlp4neuro"]["experiments"]["model_comparison"].update(seq_lens=[5, 5]), "seq_lens"),
        (lambda c: c["nlp4neuro"]["experiments"]["embeddings"].update(embeddings=["absolute"]), "embeddings"),
        (lambda c: c.pop("fish_table"), "fish_table"),
    ],
)
def test_bad_config_values_are_rejected_naming_the_key(mutate, key):
    config = copy.deepcopy(load(CONFIGS[0]))
    mutate(config)
    with pytest.raises(WorkflowError) as excinfo:
        validate(config, str(SCHEMA / "config.schema.yaml"))
    assert key in str(excinfo.value.args) or key in str(excinfo.value)


def write_table(tmp_path, rows: list[dict]) -> str:
    path = tmp_path / "fish.tsv"
    pd.DataFrame(rows).to_csv(path, sep="\t", index=False)
    return str(path)


GOOD_FISH = {
    "fish_id": "f1", "input_type": "tiff", "tiff": "raw/f1/plane{plane}.tif",
    "tail_log": "t.csv", "stimulus_log": "s.csv", "frame_times": "ft.csv",
    "volume_rate_hz": 1.1, "n_planes": 5, "pixel_size_um": 0.6, "plane_spacing_um": 7,
    "tail_rate_hz": 200,
}


def test_fish_table_types_and_plane_paths(tmp_path):
    table = read_fish_table(write_table(tmp_path, [GOOD_FISH, {**GOOD_FISH, "fish_id": "007"}]))
    assert list(table.index) == ["f1", "007"]  # ids stay strings
    assert plane_paths(table.loc["f1", "tiff"], 2) == ["raw/f1/plane0.tif", "raw/f1/plane1.tif"]


@pytest.mark.parametrize(
    "rows, message",
    [
        ([GOOD_FISH, GOOD_FISH], "duplicate fish_id"),
        ([{**GOOD_FISH, "tiff": "raw/f1/stack.tif"}], "column 'tiff'"),
        ([{**GOOD_FISH, "tiff": ""}], "column 'tiff': required"),
        ([{**GOOD_FISH, "input_type": "suite2p", "tiff": ""}], "column 'suite2p_dir'"),
        ([{**GOOD_FISH, "n_planes": "five"}], "column 'n_planes'"),
        ([{**GOOD_FISH, "n_planes": 2.5}], "not an integer"),
        ([{**GOOD_FISH, "frame_rate": 1.1}], "unknown column"),
        ([{**GOOD_FISH, "tail_log": ""}], "column 'tail_log': required when input_type is tiff"),
        ([{**GOOD_FISH, "frame_times": ""}], "column 'frame_times': required when input_type is tiff"),
        ([{**GOOD_FISH, "input_type": "scanimage", "tiff": ""}], "column 'scanimage': required"),
        ([{**GOOD_FISH, "input_type": "nlp4neuro_dataverse", "tiff": ""}], "column 'dataverse_dir': required"),
        ([{**GOOD_FISH, "zstack": "z/plane{plane}.tif"}], "'zstack' and 'zstack_step_um': give both"),
        ([{**GOOD_FISH, "zstack": "z/stack.tif", "zstack_step_um": 1.0}], "must contain"),
        ([{**GOOD_FISH, "zstack": "z/plane{plane}.tif", "zstack_step_um": 0.0}], "zstack_step_um must be > 0"),
    ],
)
def test_bad_fish_tables_fail_naming_file_row_and_column(tmp_path, rows, message):
    path = write_table(tmp_path, rows)
    with pytest.raises(ConfigError, match=message) as excinfo:
        read_fish_table(path)
    assert path in str(excinfo.value)


@pytest.mark.parametrize(
    "field, value",
    [("input_type", "zarr"), ("volume_rate_hz", -1.1), ("fish_id", "fish 1"), ("channel", 0)],
)
def test_fish_table_schema_rejects_bad_values(tmp_path, field, value):
    table = read_fish_table(write_table(tmp_path, [{**GOOD_FISH, field: value}]))
    with pytest.raises(WorkflowError):
        validate(table, str(SCHEMA / "fish.schema.yaml"))


def test_missing_table_is_named(tmp_path):
    with pytest.raises(ConfigError, match="sessions.tsv: recordings table not found"):
        read_session_table(tmp_path / "sessions.tsv")


def test_schema_lists_exactly_the_generator_fields():
    from dataclasses import fields

    from pipeline.synth.config import IblSynthParams, ZebrafishSynthParams

    schema = load(SCHEMA / "config.schema.yaml")["$defs"]
    json_type = {"int": "integer", "float": "number", "bool": "boolean", "str": "string"}
    for name, params_class in [("zebrafish_synth", ZebrafishSynthParams), ("ibl_synth", IblSynthParams)]:
        properties = schema[name]["properties"]
        assert list(properties) == [f.name for f in fields(params_class)], name
        for f in fields(params_class):
            expected = "array" if str(f.type).startswith("tuple") else json_type[str(f.type)]
            assert properties[f.name]["type"] == expected, f.name


def test_parameter_sections_are_completed_with_defaults():
    resolved = resolved_config(load(CONFIGS[0]))
    assert resolved["synthetic.zebrafish"]["n_volumes"] == 500
    assert resolved["synthetic.zebrafish"]["calcium_decay_tau_s"] > 0  # a default, not in the file
    assert resolved["synthetic.ibl"]["n_clusters"] == 120
    assert resolved["ibl_binning"]["trial_filter"]["max_reaction_time_s"] == 2.0
    assert resolved["tail_alignment"]["frame_times_mark"] == "middle"
    assert resolved_config({})["synthetic.ibl"]["n_trials"] > 0


@pytest.mark.parametrize(
    "section, values, message",
    [
        ("synthetic.zebrafish", {"calcium_rise_tau_s": 2.0, "calcium_decay_tau_s": 1.0}, "calcium_rise_tau_s"),
        ("synthetic.zebrafish", {"n_volumes": 0}, "n_volumes"),
        ("synthetic.ibl", {"n_trials": -3}, "n_trials"),
        ("synthetic.ibl", {"n_trails": 3}, "n_trails"),
        ("ibl_binning", {"bin_size_s": 0.03}, "whole number of bins"),
        ("ibl_binning", {"trial_filter": {"max_rt": 2}}, "max_rt"),
        ("tail_alignment", {"frame_times_mark": "end"}, "frame_times_mark"),
        ("motion_correction", {"method": "caiman2"}, "method"),
        ("suite2p_registration", {"block_size": 64}, "block_size"),
        ("tail_alignment", {"max_gap": 1}, "max_gap"),
    ],
)
def test_bad_parameter_values_name_the_key(section, values, message):
    config = {}
    node = config
    *parents, leaf = section.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = values
    with pytest.raises(ConfigError, match=f"config key {section}: .*{message}"):
        resolved_config(config)
