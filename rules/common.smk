# Shared by all rule files -- config validation, recording tables, wildcard constraints,
# input functions. No rule lives here.
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# Jobs (local, SLURM or conda) import the pipeline package from this checkout's src/.
SRC_DIR = str(Path(workflow.basedir) / "src")
sys.path.insert(0, SRC_DIR)
os.environ.update(
    PYTHONPATH=os.pathsep.join(p for p in (SRC_DIR, os.environ.get("PYTHONPATH")) if p)
)

from pipeline.config import (
    ConfigError,
    plain_row,
    plane_paths,
    read_fish_table,
    read_session_table,
    resolved_config,
    synthetic_root,
)
from pipeline.imaging.motion import METHOD_SECTIONS
from pipeline.provenance import config_hash
from pipeline.salience.job import SalienceParams, salience_jobs
from pipeline.seeding import derive_seed
from pipeline.train.experiments import resolve_design


validate(config, schema="../config/schema/config.schema.yaml")
try:
    PARAMS = resolved_config(config)  # section -> dict with every value (defaults filled in)
    DESIGN = resolve_design(config["nlp4neuro"])  # model catalog + experiments (NLP4Neuro)
except (ConfigError, ValueError) as err:
    raise WorkflowError(str(err)) from None


def _load_table(reader, path, schema):
    """Read a recordings table, then validate each row; errors name the table file."""
    try:
        table = reader(path)
        validate(table, schema=schema)
    except ConfigError as err:
        raise WorkflowError(str(err)) from None
    except WorkflowError as err:
        raise WorkflowError(f"{path}: invalid recordings table", err) from None
    return table


FISH = _load_table(read_fish_table, config["fish_table"], "../config/schema/fish.schema.yaml")
SESSIONS = _load_table(
    read_session_table, config["session_table"], "../config/schema/sessions.schema.yaml"
)

RESULTS = config["results_dir"].rstrip("/")
SYNTH = synthetic_root(RESULTS)
LOGS = f"{RESULTS}/logs"
BENCHMARKS = f"{RESULTS}/benchmarks"
CONDA_ENV = "../envs/pipeline.yaml"
CAIMAN_ENV = "../envs/caiman.yaml"  # motion_correction.method: caiman (CaImAn is conda-only)


wildcard_constraints:
    fish=r"[A-Za-z0-9][A-Za-z0-9_-]*",
    session=r"[A-Za-z0-9][A-Za-z0-9_-]*",
    plane=r"\d+",
    experiment=r"[A-Za-z0-9][A-Za-z0-9_.]*",
    model=r"[A-Za-z0-9][A-Za-z0-9_.]*",
    weights=r"pretrained|untrained",
    embedding=r"linear|sinusoidal|relative|laplacian|sparse_ae",
    seq_len=r"\d+",
    run=r"\d+",


# ---- recording metadata ---------------------------------------------------------------

RECORDING_METADATA = ["volume_rate_hz", "n_planes", "pixel_size_um", "plane_spacing_um", "tail_rate_hz"]


def fish_row(fish):
    """The fish's row of the fish table as a plain dict (NA cells dropped)."""
    if fish not in FISH.index:
        raise WorkflowError(f"fish {fish!r} is not in {config['fish_table']}")
    return plain_row(FISH.loc[fish])


def session_row(session):
    """The session's row of the sessions table as a plain dict."""
    if session not in SESSIONS.index:
        raise WorkflowError(f"session {session!r} is not in {config['session_table']}")
    return plain_row(SESSIONS.loc[session])


def fish_recording_metadata(wildcards):
    """Acquisition metadata of a fish, as the synthetic generator takes them."""
    row = fish_row(wildcards.fish)
    return {key: row[key] for key in RECORDING_METADATA}


def fish_raw_inputs(wildcards):
    """Every input file of a fish, named, for the inventory rule."""
    row = fish_row(wildcards.fish)
    files = {
        "tail_log": row["tail_log"],
        "stimulus_log": row["stimulus_log"],
        "frame_times": row["frame_times"],
    }
    if row["input_type"] == "tiff":
        files["stacks"] = plane_paths(row["tiff"], int(row["n_planes"]))
    else:
        files["suite2p_planes"] = [
            f"{row['suite2p_dir']}/plane{plane}" for plane in range(int(row["n_planes"]))
        ]
    if "region_table" in row:
        files["region_table"] = row["region_table"]
    return files


# ---- seeds ----------------------------------------------------------------------------


def unit_seed(*keys):
    """Seed for one unit of work, derived from config['seed'] (see pipeline.seeding)."""
    return derive_seed(config["seed"], *keys)


# ---- targets --------------------------------------------------------------------------


def fish_behavior_inputs(wildcards):
    """The logs the behaviour alignment reads, plus the fish's inventory (provenance)."""
    row = fish_row(wildcards.fish)
    return {
        "tail_log": row["tail_log"],
        "stimulus_log": row["stimulus_log"],
        "frame_times": row["frame_times"],
        "inventory": f"{RESULTS}/inventory/fish/{wildcards.fish}.json",
    }


def raw_stack(wildcards):
    """The raw TIFF stack of one plane of a fish with input_type tiff."""
    row = fish_row(wildcards.fish)
    if row["input_type"] != "tiff":
        raise WorkflowError(f"fish {wildcards.fish!r} has no raw stacks (input_type {row['input_type']})")
    return plane_paths(row["tiff"], int(row["n_planes"]))[int(wildcards.plane)]


def neural_file_inputs(wildcards):
    """Suite2P plane folders of a fish: extracted by the pipeline from raw stacks, or the
    lab's existing folders (input_type suite2p); plus frame times, region mask, inventory."""
    row = fish_row(wildcards.fish)
    n_planes = int(row["n_planes"])
    if row["input_type"] == "tiff":
        planes = [f"{RESULTS}/imaging/{wildcards.fish}/plane{p}/suite2p" for p in range(n_planes)]
    else:
        planes = [f"{row['suite2p_dir']}/plane{p}" for p in range(n_planes)]
    inputs = {
        "planes": planes,
        "frame_times": row["frame_times"],
        "inventory": f"{RESULTS}/inventory/fish/{wildcards.fish}.json",
    }
    if "region_table" in row:
        inputs["region_table"] = row["region_table"]
    return inputs


def registered_planes(wildcards):
    """The registered-plane files of a fish with raw stacks (input_type tiff)."""
    row = fish_row(wildcards.fish)
    return [f"{RESULTS}/imaging/{wildcards.fish}/plane{p}/registered.h5" for p in range(int(row["n_planes"]))]


def imaging_quality_targets():
    """One quality page per fish the pipeline registers (input_type tiff)."""
    fish = [f for f in FISH.index if fish_row(f)["input_type"] == "tiff"]
    return expand(f"{RESULTS}/qc/{{fish}}/imaging_quality.png", fish=fish)


# ---- NLP4Neuro training jobs ----------------------------------------------------------

DECODER_RUN = "{experiment}/{fish}/{model}/{weights}-{embedding}/L{seq_len}/run{run}"
DECODER_JOBS = DESIGN.jobs(list(FISH.index))


def decoder_job(wildcards):
    """The job description of one training job (pipeline.train.job.DecodingJob fields).
    Its seed depends on fish, model, seq_len and run only, so the pretrained and untrained
    twins (and the embedding variants) of a run start from the same seed."""
    experiment = DESIGN.experiments[wildcards.experiment]
    return {
        "experiment": wildcards.experiment,
        "fish": wildcards.fish,
        "model": wildcards.model,
        "weights": wildcards.weights,
        "embedding": wildcards.embedding,
        "seq_len": int(wildcards.seq_len),
        "run": int(wildcards.run),
        "seed": unit_seed("nlp4neuro", wildcards.fish, wildcards.model, wildcards.seq_len, wildcards.run),
        "split_fractions": list(experiment.split_fractions),
        "signal": DESIGN.signal,
    }


def decoder_embedding_params(wildcards):
    """Embedding parameters, only for the strategies that have any (so changing them does
    not rerun linear/sinusoidal jobs or the reservoir and LSTM)."""
    return DESIGN.embedding if wildcards.embedding in ("relative", "laplacian", "sparse_ae") else {}


def decoder_model_spec(wildcards):
    return DESIGN.models[wildcards.model].to_dict()


def decoder_training(wildcards):
    return DESIGN.training(wildcards.experiment, wildcards.model)


def decoder_params_hash(wildcards):
    """Hash of everything that defines a training job's result (stored in its metrics)."""
    return config_hash([decoder_job(wildcards), decoder_model_spec(wildcards), decoder_training(wildcards),
                        decoder_embedding_params(wildcards)])


def decoder_outputs(name):
    """Paths of one output kind (metrics.json, predictions.h5, model.pt) of every job."""
    return [f"{RESULTS}/nlp4neuro/{DECODER_RUN.format(**job)}/{name}" for job in DECODER_JOBS]


# ---- salience --------------------------------------------------------------------------

SALIENCE = SalienceParams.from_mapping(PARAMS["salience"])
try:
    SALIENCE_JOBS = salience_jobs(SALIENCE, DESIGN, list(FISH.index))
except ValueError as err:
    raise WorkflowError(str(err)) from None


def synthetic_truth(wildcards):
    """The ground-truth file of a synthetic fish (its logs come from the synth rules), else
    nothing: salience is then reported without precision@k."""
    row = fish_row(wildcards.fish)
    if str(row["tail_log"]).startswith(f"{SYNTH}/zebrafish/"):
        return {"truth": f"{SYNTH}/ground_truth/zebrafish/{wildcards.fish}.h5"}
    return {}


def salience_targets():
    """Salience table and figures of every model in config `salience.models`."""
    return [
        path
        for model in SALIENCE.models
        for path in expand(
            f"{RESULTS}/tables/salience_{model}.{{ext}}", ext=["csv", "tex", "md"]
        )
        + expand(
            f"{RESULTS}/figures/fig{{figure}}_{model}.{{ext}}",
            figure=["4_salience_map", "5_asymmetry", "6_moment_salience"],
            ext=["pdf", "png"],
        )
    ]


def salience_files(model):
    """Salience files of one model: {fish: [one per run]} in table order."""
    files = {}
    for job in SALIENCE_JOBS:
        if job["model"] == model:
            files.setdefault(job["fish"], []).append(
                f"{RESULTS}/nlp4neuro/salience/{DECODER_RUN.format(**job)}.h5"
            )
    return files


def all_targets():
    """Targets of the default target: one neural and one behaviour file per fish, one
    binned file per IBL session, every NLP4Neuro training job's metrics, the NEDS tables and
    figure. Synthetic recordings (table paths under
    {results_dir}/synth/) are generated first; every recording is inventoried first."""
    return (
        expand(f"{RESULTS}/neural/{{fish}}.h5", fish=FISH.index)
        + expand(f"{RESULTS}/behavior/{{fish}}.h5", fish=FISH.index)
        + expand(f"{RESULTS}/ibl/binned/{{session}}.h5", session=SESSIONS.index)
        + decoder_outputs("metrics.json")
        + neds_targets()  # rules/neds.smk: NEDS tables and figure
        + evaluation_targets()  # rules/evaluate.smk: NLP4Neuro tables 1-3, figures 2a-c, 3
        + salience_targets()  # rules/salience.smk: salience table and figures 4-6 per model
        + imaging_quality_targets()  # rules/imaging.smk: quality page per registered fish
    )
