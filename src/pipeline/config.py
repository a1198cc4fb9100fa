"""Recording tables and the configuration checks a JSON schema cannot express.

The config file itself is validated against ``config/schema/config.schema.yaml`` and each
table row against ``config/schema/{fish,sessions}.schema.yaml`` (``snakemake.utils.validate``
in ``rules/common.smk``). This module reads the tables with explicit column types and adds
cross-field checks. Every error names the file, the row and the column.
"""

from __future__ import annotations

import glob
import importlib
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping

from pipeline.io.errors import InputDataError

if TYPE_CHECKING:
    import pandas as pd

#: Column -> dtype of config/fish.tsv. Identifiers and paths stay strings ("007" is not 7).
FISH_COLUMNS: dict[str, str] = {
    "fish_id": "string",
    "input_type": "string",
    "tiff": "string",
    "suite2p_dir": "string",
    "scanimage": "string",
    "channel": "int64",
    "dataverse_dir": "string",
    "nwb": "string",
    "nwb_data": "string",
    "tail_log": "string",
    "stimulus_log": "string",
    "frame_times": "string",
    "frame_trigger": "string",
    "region_table": "string",
    "zstack": "string",
    "zstack_step_um": "float64",
    "volume_rate_hz": "float64",
    "n_planes": "int64",
    "pixel_size_um": "float64",
    "plane_spacing_um": "float64",
    "tail_rate_hz": "float64",
}

#: Column -> dtype of config/sessions.tsv.
SESSION_COLUMNS: dict[str, str] = {
    "session_id": "string",
    "subject": "string",
    "one_cache": "string",
    "session": "string",
    "probes": "string",
    "nwb_file": "string",
    "wheel_units": "string",
    "wheel_ticks_per_rev": "int64",
}

#: Input types whose files carry the frame times (the ``frame_times`` column is then optional).
FRAME_TIMES_IN_DATA = ("scanimage", "nlp4neuro_dataverse", "nwb")
#: Input types whose files carry the tail log (``tail_log`` and ``stimulus_log`` are then optional).
TAIL_IN_DATA = ("nlp4neuro_dataverse", "nwb")

#: Placeholder for the 0-based plane index in the ``tiff`` path template.
PLANE_PLACEHOLDER = "{plane}"


class ConfigError(ValueError):
    """A configuration value or recordings-table entry is invalid."""


def _read_table(path: str | os.PathLike, columns: dict[str, str], id_column: str) -> "pd.DataFrame":
    import pandas as pd

    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: recordings table not found")
    header = pd.read_csv(path, sep="\t", nrows=0).columns
    unknown = [c for c in header if c not in columns]
    if unknown:
        raise ConfigError(f"{path}: unknown column(s) {unknown}; allowed: {list(columns)}")
    missing = [c for c in (id_column,) if c not in header]
    if missing:
        raise ConfigError(f"{path}: missing column {missing[0]!r}")
    text_columns = {c: "string" for c in header}
    table = pd.read_csv(path, sep="\t", dtype=text_columns, keep_default_na=False, comment="#")
    table = table.apply(lambda col: col.str.strip())
    if table.empty:
        raise ConfigError(f"{path}: the table lists no recordings")
    for column in header:
        dtype = columns[column]
        if dtype == "string":
            table[column] = table[column].replace("", pd.NA)
            continue
        for row_id, value in zip(table[id_column], table[column]):
            if value == "":
                continue  # an empty cell; the schema says whether the column is required
            try:
                number = float(value)
            except ValueError:
                raise ConfigError(
                    f"{path}: row {row_id!r}, column {column!r}: {value!r} is not a number"
                ) from None
            if dtype == "int64" and not number.is_integer():
                raise ConfigError(
                    f"{path}: row {row_id!r}, column {column!r}: {value!r} is not an integer"
                )
        nullable = {"int64": "Int64", "float64": "Float64"}[dtype]
        table[column] = pd.to_numeric(table[column].replace("", pd.NA)).astype(nullable)
    duplicated = table[id_column][table[id_column].duplicated()].tolist()
    if duplicated:
        raise ConfigError(f"{path}: duplicate {id_column} {sorted(set(duplicated))}")
    return table.set_index(id_column, drop=False)


def read_fish_table(path: str | os.PathLike) -> "pd.DataFrame":
    """Read config/fish.tsv (one row per fish, indexed by ``fish_id``) and check the
    fields that depend on each other: a ``tiff`` template with ``{plane}`` for raw input,
    a ``suite2p_dir`` for Suite2P input, the ``scanimage`` files for ScanImage input, and
    a ``frame_times`` file unless the input carries frame times (ScanImage headers), and an
    optional reference z-stack template ``zstack`` (with ``{plane}``) together with its step."""
    import pandas as pd

    table = _read_table(path, FISH_COLUMNS, "fish_id")
    for fish_id, row in table.iterrows():
        where = f"{path}: row {fish_id!r}"
        if row.get("input_type") == "tiff":
            template = row.get("tiff")
            if pd.isna(template):
                raise ConfigError(f"{where}, column 'tiff': required when input_type is tiff")
            if PLANE_PLACEHOLDER not in template:
                raise ConfigError(
                    f"{where}, column 'tiff': {template!r} must contain {PLANE_PLACEHOLDER} "
                    "(one stack per plane)"
                )
        elif row.get("input_type") == "suite2p" and pd.isna(row.get("suite2p_dir")):
            raise ConfigError(f"{where}, column 'suite2p_dir': required when input_type is suite2p")
        elif row.get("input_type") == "scanimage" and pd.isna(row.get("scanimage")):
            raise ConfigError(f"{where}, column 'scanimage': required when input_type is scanimage")
        elif row.get("input_type") == "nlp4neuro_dataverse" and pd.isna(row.get("dataverse_dir")):
            raise ConfigError(f"{where}, column 'dataverse_dir': required when input_type is nlp4neuro_dataverse")
        elif row.get("input_type") == "nwb" and pd.isna(row.get("nwb")):
            raise ConfigError(f"{where}, column 'nwb': required when input_type is nwb")
        if row.get("input_type") not in TAIL_IN_DATA:
            for column in ("tail_log", "stimulus_log"):
                if pd.isna(row.get(column)):
                    raise ConfigError(f"{where}, column {column!r}: required when input_type is {row.get('input_type')}")
        if pd.isna(row.get("zstack")) != pd.isna(row.get("zstack_step_um")):
            raise ConfigError(f"{where}, columns 'zstack' and 'zstack_step_um': give both or neither")
        if not pd.isna(row.get("zstack")) and (PLANE_PLACEHOLDER not in row["zstack"] or not row["zstack_step_um"] > 0):
            raise ConfigError(f"{where}, column 'zstack': {row['zstack']!r} must contain {PLANE_PLACEHOLDER} "
                              f"(one stack per plane) and zstack_step_um must be > 0")
        if row.get("input_type") not in FRAME_TIMES_IN_DATA and pd.isna(row.get("frame_times")):
            raise ConfigError(f"{where}, column 'frame_times': required when input_type is {row.get('input_type')}")
    return table


def read_session_table(path: str | os.PathLike) -> "pd.DataFrame":
    """Read config/sessions.tsv (one row per IBL session, indexed by ``session_id``)."""
    return _read_table(path, SESSION_COLUMNS, "session_id")


def plane_paths(template: str, n_planes: int) -> list[str]:
    """Expand a ``tiff`` template (``.../plane{plane}.tif``) to one path per 0-based plane."""
    return [template.replace(PLANE_PLACEHOLDER, str(plane)) for plane in range(n_planes)]


#: Characters that make a ``scanimage`` table entry a glob.
GLOB_CHARACTERS = set("*?[")


def acquisition_files(spec: str) -> list[str]:
    """The files of a ``scanimage`` table cell: ``;``-separated paths or globs, each glob
    expanded in name order (ScanImage numbers files ``_00001``, ``_00002``, ...). A glob
    matching nothing is an error; plain paths are returned as written."""
    files: list[str] = []
    for entry in (part.strip() for part in spec.split(";")):
        if not entry:
            continue
        if GLOB_CHARACTERS & set(entry):
            matches = sorted(glob.glob(entry))
            if not matches:
                raise InputDataError(entry, "no ScanImage file matches this pattern")
            files.extend(matches)
        else:
            files.append(entry)
    if not files:
        raise InputDataError(spec, "no ScanImage file given")
    return files


def synthetic_root(results_dir: str) -> str:
    """Folder under which the built-in generators write; table paths inside it are synthetic."""
    return f"{results_dir.rstrip('/')}/synth"


def plain_row(row) -> dict:
    """A table row (pandas Series or mapping) as a dict of plain Python values, empty
    cells dropped: what rules pass as params and inventories record as metadata."""
    import pandas as pd

    return {k: (v.item() if hasattr(v, "item") else v) for k, v in dict(row).items() if not pd.isna(v)}


def resolved_section(section: Mapping[str, Any] | None, key: str, params_class: type):
    """A config section checked by its parameter dataclass (unknown keys, types, ranges),
    as that dataclass (defaults filled in). Errors name ``key``.

    Used at parse time (rules/common.smk), so a bad value fails before any job runs. Rules
    pass :meth:`~pipeline.params.Params.result_params` of it as params (result fields that
    differ from their defaults), so runtime settings and new defaults rerun nothing."""
    mapping = dict(section or {})
    try:
        return params_class.from_mapping(mapping)
    except (TypeError, ValueError) as err:
        raise ConfigError(f"config key {key}: {err}") from None


#: Config key -> (module, class) of every parameter section's dataclass. Imported one at a
#: time when needed (:func:`section_class`): a job imports only its own section's module (the
#: CaImAn environment has no pandas). The classes live in light ``config`` modules (no torch,
#: transformers, scipy, h5py or suite2p), so reading the Snakefile stays fast (tests/test_parse_imports.py).
SECTION_CLASSES: dict[str, tuple[str, str]] = {
    "synthetic.zebrafish": ("pipeline.synth.config", "ZebrafishSynthParams"),
    "synthetic.ibl": ("pipeline.synth.config", "IblSynthParams"),
    "ibl_binning": ("pipeline.ibl.config", "BinningConfig"),
    "tail_alignment": ("pipeline.behavior.config", "TailAlignmentConfig"),
    "motion_correction": ("pipeline.imaging.motion", "MotionCorrectionConfig"),
    "normcorre": ("pipeline.imaging.config", "NormcorreParams"),
    "suite2p_registration": ("pipeline.imaging.config", "Suite2pRegistrationParams"),
    "caiman": ("pipeline.imaging.config", "CaimanParams"),
    "extraction": ("pipeline.imaging.config", "ExtractionParams"),
    "neural_file": ("pipeline.imaging.config", "NeuralFileConfig"),
    "neds": ("pipeline.neds.config", "NedsConfig"),
    "salience": ("pipeline.salience.config", "SalienceParams"),
}


def section_class(key: str) -> type:
    """The parameter dataclass of config section ``key`` (its module imported on call)."""
    module, name = SECTION_CLASSES[key]
    return getattr(importlib.import_module(module), name)


def config_section(config: Mapping[str, Any], key: str):
    """The parameter dataclass of one config section (dotted ``key``: ``synthetic.ibl``)."""
    node: Any = config
    for part in key.split("."):
        node = (node or {}).get(part)
    return resolved_section(node, key, section_class(key))


def config_sections(config: Mapping[str, Any]) -> dict[str, Any]:
    """Every parameter section of the config as its dataclass (see :func:`resolved_section`)."""
    return {key: config_section(config, key) for key in SECTION_CLASSES}


def resolved_config(config: Mapping[str, Any]) -> dict[str, dict]:
    """Every parameter section of the config as a plain dict with every value (defaults
    filled in): ``synthetic.zebrafish``, ``synthetic.ibl``, ``ibl_binning``, ``tail_alignment``,
    ``motion_correction``, ``normcorre``, ``suite2p_registration``, ``caiman``, ``extraction``,
    ``neural_file``, ``neds``, ``salience``."""
    return {key: asdict(params) for key, params in config_sections(config).items()}


def job_settings(config: Mapping[str, Any], key: str, result_params: Mapping[str, Any]) -> dict[str, Any]:
    """Inside a job: the full settings of section ``key`` -- the rule's params (result
    fields) plus the section's runtime fields (device, threads) read from the config, which
    are not params -- as a plain dict with every value."""
    runtime = config_section(config, key).runtime_settings()
    return asdict(section_class(key).from_mapping({**result_params, **runtime}))
