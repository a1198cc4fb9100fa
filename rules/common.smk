# Shared by all rule files -- config validation, recording tables, wildcard constraints,
# input functions. No rule lives here.
import functools
import os
import re
import sys
from pathlib import Path
from types import SimpleNamespace

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
    acquisition_files,
    config_sections,
    plain_row,
    plane_paths,
    read_fish_table,
    read_session_table,
    synthetic_root,
)
from pipeline.imaging.motion import METHOD_SECTIONS
from pipeline.io.errors import InputDataError
from pipeline.models.config import EmbeddingParams
from pipeline.provenance import config_hash
from pipeline.salience.config import salience_jobs
from pipeline.seeding import derive_seed
from pipeline.train.config import TrainingParams
from pipeline.train.experiments import FOLD_WILDCARD, parse_fold_wildcard, resolve_design
from pipeline.workflow_functions import per_job  # params functions of the thousand-job rules


validate(config, schema="../config/schema/config.schema.yaml")
try:
    SECTIONS = config_sections(config)  # section -> its parameter dataclass (pipeline.config)
    PARAMS = {key: section.to_dict() for key, section in SECTIONS.items()}  # ... as dicts, every value
    DESIGN = resolve_design(config["nlp4neuro"])  # model catalog + experiments (NLP4Neuro)
except (ConfigError, ValueError) as err:
    raise WorkflowError(str(err)) from None


def section_params(key, only=None):
    """A rule's params from config section ``key``: the fields that change its result and
    differ from their defaults (pipeline.params.Params.result_params), optionally only the
    fields named in ``only``. Runtime fields (device, threads) are never params."""
    return SECTIONS[key].result_params(only)


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
    weights=r"pretrained|untrained|scratch_full",
    embedding=r"linear_no_position|relative_control|linear|sinusoidal|relative|laplacian|sparse_ae",
    seq_len=r"\d+",
    run=r"\d+",
    fold=FOLD_WILDCARD,  # "" (single split) or "-fold<f>" (blocked cross-validation)


# ---- recording metadata ---------------------------------------------------------------

RECORDING_METADATA = ["volume_rate_hz", "n_planes", "pixel_size_um", "plane_spacing_um", "tail_rate_hz"]


#: Every table row as a plain dict (NA cells dropped), read once: input functions ask for
#: rows once per job.
FISH_ROWS = {fish: plain_row(FISH.loc[fish]) for fish in FISH.index}
SESSION_ROWS = {session: plain_row(SESSIONS.loc[session]) for session in SESSIONS.index}


def fish_row(fish):
    """The fish's row of the fish table as a plain dict (NA cells dropped; a copy)."""
    if fish not in FISH_ROWS:
        raise WorkflowError(f"fish {fish!r} is not in {config['fish_table']}")
    return dict(FISH_ROWS[fish])


def session_row(session):
    """The session's row of the sessions table as a plain dict (a copy)."""
    if session not in SESSION_ROWS:
        raise WorkflowError(f"session {session!r} is not in {config['session_table']}")
    return dict(SESSION_ROWS[session])


def session_source(wildcards):
    """The input a session is read from: its NWB file, else its ONE cache folder."""
    row = session_row(wildcards.session)
    return row.get("nwb_file") or row["one_cache"]
def row_params(row, columns):
    """The cells of a table row that a rule reads, as its params. Editing another column,
    or adding one, reruns nothing of that rule. Empty cells are left out."""
    return {column: row[column] for column in columns if column in row}


#: Fish-table columns each per-fish rule reads (the inventory records the whole row).
#: Both read the frame times through pipeline.behavior.clock, which takes them from whichever
#: source the input type has (frame_times file, ScanImage headers, Dataverse frame column, NWB).
FRAME_TIME_COLUMNS = ["fish_id", "input_type", "n_planes", "volume_rate_hz", "frame_times", "frame_trigger",
                      "scanimage", "channel", "dataverse_dir", "nwb", "nwb_data"]
FISH_COLUMNS_READ = {
    "align_behavior": FRAME_TIME_COLUMNS + ["tail_log", "stimulus_log"],
    "neural_file": FRAME_TIME_COLUMNS + ["pixel_size_um", "plane_spacing_um", "region_table", "tail_log"],
}
#: Sessions-table columns the binning reads.
SESSION_COLUMNS_READ = ["session_id", "one_cache", "session", "probes", "nwb_file", "wheel_units",
                        "wheel_ticks_per_rev"]


def fish_recording_metadata(wildcards):
    """Acquisition metadata of a fish, as the synthetic generator takes them."""
    return row_params(fish_row(wildcards.fish), RECORDING_METADATA)


def scanimage_files(row):
    """The ScanImage files of a fish row (globs expanded; a glob matching nothing is an error)."""
    try:
        return acquisition_files(row["scanimage"])
    except InputDataError as err:
        raise WorkflowError(f"fish {row['fish_id']!r}, column 'scanimage': {err}") from None


def dataverse_tail_logs(row):
    """Every plane's tail_df.h5 of an NLP4Neuro Dataverse fish."""
    return [f"{row['dataverse_dir']}/plane_{p}/tail_df.h5" for p in range(int(row["n_planes"]))]


def fish_timing_inputs(row):
    """Files that give a fish's frame times and relate them to the tail clock: the table's
    frame_times (else the ScanImage files, whose headers hold them, or the Dataverse tail
    logs, whose frame column does) and the frame trigger."""
    if "frame_times" in row:
        files = {"frame_times": row["frame_times"]}
    elif row["input_type"] == "nwb":
        files = {"nwb": row["nwb"]}
    elif row["input_type"] == "nlp4neuro_dataverse":
        files = {"tail_logs": dataverse_tail_logs(row)}
    else:
        files = {"scanimage": scanimage_files(row)}
    if "frame_trigger" in row:
        files["frame_trigger"] = row["frame_trigger"]
    return files


def fish_raw_inputs(wildcards):
    """Every input file of a fish, named, for the inventory rule."""
    row = fish_row(wildcards.fish)
    files = {
        **{log: row[log] for log in ("tail_log", "stimulus_log") if log in row},
        **fish_timing_inputs(row),
    }
    if row["input_type"] == "tiff":
        files["stacks"] = plane_paths(row["tiff"], int(row["n_planes"]))
    elif row["input_type"] == "scanimage":
        files["scanimage"] = scanimage_files(row)
    elif row["input_type"] == "nlp4neuro_dataverse":
        files["dataverse_planes"] = [f"{row['dataverse_dir']}/plane_{p}" for p in range(int(row["n_planes"]))]
    elif row["input_type"] == "nwb":
        pass  # the NWB file is the timing input
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
        **{log: row[log] for log in ("tail_log", "stimulus_log") if log in row},
        **fish_timing_inputs(row),
        "inventory": f"{RESULTS}/inventory/fish/{wildcards.fish}.json",
    }


def raw_stack(wildcards):
    """The raw TIFF stack of one plane: the table's (input_type tiff), the plane
    de-interleaved from a ScanImage acquisition (rule scanimage_plane) or streamed from an
    NWB TwoPhotonSeries (rule nwb_plane)."""
    row = fish_row(wildcards.fish)
    if row["input_type"] == "scanimage":
        return f"{RESULTS}/imaging/{wildcards.fish}/plane{wildcards.plane}/raw.tif"
    if nwb_raw(row):
        return f"{RESULTS}/imaging/{wildcards.fish}/plane{wildcards.plane}/raw_nwb.tif"
    if row["input_type"] != "tiff":
        raise WorkflowError(f"fish {wildcards.fish!r} has no raw stacks (input_type {row['input_type']})")
    return plane_paths(row["tiff"], int(row["n_planes"]))[int(wildcards.plane)]


def synthetic_plane_stacks(wildcards):
    """The rendered plane stacks of a synthetic fish (rule synth_zebrafish_plane)."""
    n_planes = int(fish_row(wildcards.fish)["n_planes"])
    return [f"{SYNTH}/zebrafish/{wildcards.fish}/plane{p}.tif" for p in range(n_planes)]


def nwb_raw(row):
    """Whether a fish row is an NWB file of raw TwoPhotonSeries (registered like stacks)."""
    return row["input_type"] == "nwb" and row.get("nwb_data") == "raw"


def nwb_plane_inputs(wildcards):
    """A raw NWB fish's file and its inventory."""
    row = fish_row(wildcards.fish)
    if not nwb_raw(row):
        raise WorkflowError(f"fish {wildcards.fish!r} is not a raw NWB recording")
    return {"nwb": row["nwb"], "inventory": f"{RESULTS}/inventory/fish/{wildcards.fish}.json"}


def scanimage_plane_inputs(wildcards):
    """A ScanImage fish's acquisition files and its inventory (which checked them)."""
    row = fish_row(wildcards.fish)
    if row["input_type"] != "scanimage":
        raise WorkflowError(f"fish {wildcards.fish!r} is not a ScanImage recording (input_type {row['input_type']})")
    return {"files": scanimage_files(row), "inventory": f"{RESULTS}/inventory/fish/{wildcards.fish}.json"}


def scanimage_plane_params(wildcards):
    """What defines a de-interleaved plane: the acquisition's files, the channel and plane count."""
    row = fish_row(wildcards.fish)
    return {"files": scanimage_files(row), "channel": row.get("channel"), "n_planes": int(row["n_planes"])}


def neural_file_inputs(wildcards):
    """Suite2P plane folders of a fish: extracted by the pipeline from raw stacks (tiff or
    ScanImage), or the lab's existing folders (input_type suite2p); plus frame times (file
    or ScanImage headers), region mask, inventory."""
    row = fish_row(wildcards.fish)
    n_planes = int(row["n_planes"])
    if row["input_type"] in ("tiff", "scanimage") or nwb_raw(row):
        planes = [f"{RESULTS}/imaging/{wildcards.fish}/plane{p}/suite2p" for p in range(n_planes)]
    elif row["input_type"] == "nlp4neuro_dataverse":
        planes = [f"{row['dataverse_dir']}/plane_{p}" for p in range(n_planes)]
    elif row["input_type"] == "nwb":
        planes = [row["nwb"]] * n_planes  # read plane by plane from the one file
    else:
        planes = [f"{row['suite2p_dir']}/plane{p}" for p in range(n_planes)]
    timing = fish_timing_inputs(row)
    timing.pop("frame_trigger", None)  # the neural file keeps the frame times as acquired
    inputs = {
        "planes": planes,
        **timing,
        "inventory": f"{RESULTS}/inventory/fish/{wildcards.fish}.json",
    }
    if "region_table" in row:
        inputs["region_table"] = row["region_table"]
    return inputs


def registered_planes(wildcards):
    """The registered-plane files of a fish the pipeline registers (raw stacks: tiff,
    scanimage, raw NWB)."""
    row = fish_row(wildcards.fish)
    return [f"{RESULTS}/imaging/{wildcards.fish}/plane{p}/registered.h5" for p in range(int(row["n_planes"]))]


def zstack_planes(wildcards):
    """The reference z-stack of each plane when the fish table names one (else none)."""
    row = fish_row(wildcards.fish)
    return plane_paths(row["zstack"], int(row["n_planes"])) if "zstack" in row else []


def imaging_quality_targets():
    """One quality page per fish the pipeline registers (raw stacks: tiff, scanimage, raw NWB)."""
    fish = [f for f in FISH.index
            if fish_row(f)["input_type"] in ("tiff", "scanimage") or nwb_raw(fish_row(f))]
    return expand(f"{RESULTS}/qc/{{fish}}/imaging_quality.png", fish=fish)


# ---- job groups: short CPU jobs batched into one SLURM submission --------------------------
# A group's jobs are submitted together; profiles/slurm's `group-components` sets how many
# independent jobs (DAG components) share one sbatch. Groups are inactive in local runs.
# No GPU job is ever in a group, so a group job always goes to a CPU partition.

#: Synthesis, inventory, behaviour alignment and spike binning: the short CPU jobs upstream
#: of registration (nothing in it depends on a job outside it that depends on it).
INPUTS_GROUP = "cpu_inputs"


def cpu_training_group(wildcards):
    """The group of a training or salience job of a CPU model ("cpu_training"); None (its own
    submission) for a model that asks for GPUs."""
    return None if DESIGN.models[wildcards.model].gpus else "cpu_training"


# ---- NLP4Neuro training jobs ----------------------------------------------------------

#: A training run's path under {RESULTS}/nlp4neuro/. The fold wildcard ("" or "-fold<f>") is
#: left out when no experiment uses blocked cross-validation (every fold is then "": the same
#: paths): a chunk rule's outputs then end in the constant "run<r>/<file>", which Snakemake's
#: output index matches before any pattern, instead of every chunk rule's pattern being tried
#: on every requested training file (bench/README.md).
DECODER_RUN = "{experiment}/{fish}/{model}/{weights}-{embedding}/L{seq_len}/run{run}" + (
    "{fold}" if DESIGN.cross_validated else "")
DECODER_JOBS = DESIGN.jobs(list(FISH.index))


@per_job
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
        # blocked cross-validation only: single-split jobs keep the params they had
        **({"cv_folds": experiment.cv_folds, "fold": parse_fold_wildcard(wildcards.fold)}
           if experiment.cv_folds else {}),
    }


# The three functions below are called for every training job (thousands at paper scale)
# but depend on a model / experiment / strategy only: computed once each (read-only dicts).


@functools.cache
def _embedding_params(embedding):
    if embedding not in ("relative", "relative_control", "laplacian", "sparse_ae"):
        return {}
    return EmbeddingParams.from_mapping(DESIGN.embedding).result_params()


@functools.cache
def _model_spec_params(model):
    return DESIGN.models[model].result_params(only=("kind", "architecture"))


@functools.cache
def _training_params(experiment, model):
    return TrainingParams.from_mapping(DESIGN.training(experiment, model)).result_params()


@per_job
def decoder_embedding_params(wildcards):
    """Embedding parameters that differ from their defaults, only for the strategies that
    have any (so changing them does not rerun linear/sinusoidal jobs or the reservoir and LSTM)."""
    return _embedding_params(wildcards.embedding)


@per_job
def decoder_model_spec(wildcards):
    """The catalog entry's kind and architecture (fields that differ from the kind's
    defaults); not its gpus, mem_mb and runtime_min (resources) nor its training overrides
    (merged into decoder_training)."""
    return _model_spec_params(wildcards.model)


@per_job
def decoder_training(wildcards):
    """The job's TrainingParams fields that differ from their defaults (experiment's, then
    the model's overrides)."""
    return _training_params(wildcards.experiment, wildcards.model)


@per_job
def decoder_params_hash(wildcards):
    """Hash of everything that defines a training job's result (stored in its metrics)."""
    return decoder_job_hash(decoder_job(wildcards), wildcards)


def decoder_job_hash(job, wildcards):
    """decoder_params_hash of the job whose decoder_job is ``job`` (``wildcards``: its
    experiment, model and embedding)."""
    return config_hash([job, decoder_model_spec(wildcards), decoder_training(wildcards),
                        decoder_embedding_params(wildcards)])


# ---- several runs per training job (runs_per_job R > 1 for some model) ------------------
# The functions below are called once per training rule at parse time and return its name,
# outputs, params and time limit (rules/train_runs.smk defines one rule per
# DESIGN.run_chunks() entry, in a loop).


def decoder_chunk_rules():
    """(name, runs, experiments, models) of every training rule. Names are
    ``train_decoder_runs<a>to<b>``, with ``_2``, ``_3``, ... for further rules of the same
    runs (other experiments x models)."""
    rules, names = [], set()
    for runs, experiments, models in DESIGN.run_chunks():
        name = base = decoder_chunk_rule(runs)
        copy = 1
        while name in names:
            copy += 1
            name = f"{base}_{copy}"
        names.add(name)
        rules.append((name, runs, experiments, models))
    return rules


def decoder_chunk_path(runs):
    """DECODER_RUN of a job of the runs ``runs`` (a range): ``.../runs<a>-<b>{fold}`` (logs,
    benchmarks, checkpoint directory)."""
    return DECODER_RUN.replace("run{run}", f"runs{runs.start}-{runs.stop - 1}")


def decoder_chunk_rule(runs):
    """``train_decoder_runs<a>to<b>``, the name given to the training rule of the runs ``runs``."""
    return f"train_decoder_runs{runs.start}to{runs.stop - 1}"


def decoder_chunk_outputs(runs, name):
    """Output ``name`` of each run in ``runs``: the paths its train_decoder job writes."""
    return [f"{RESULTS}/nlp4neuro/{DECODER_RUN.replace('{run}', str(run))}/{name}" for run in runs]


def decoder_run_wildcards(wildcards, run):
    """The wildcards of run ``run``'s train_decoder job: a chunk job's wildcards (a mapping)
    plus ``run``."""
    return SimpleNamespace(**wildcards, run=str(run))


@functools.cache
def _decoder_chunk_runs(runs, chunk_wildcards):
    """(each run's decoder_job, each run's params hash) of the job of the runs ``runs`` whose
    wildcards are ``chunk_wildcards`` ((name, value) pairs): computed once for its two params."""
    wildcards = dict(chunk_wildcards)
    jobs = [decoder_job(decoder_run_wildcards(wildcards, run)) for run in runs]
    return jobs, [decoder_job_hash(job, SimpleNamespace(**wildcards)) for job in jobs]


def decoder_chunk_params(runs):
    """Params of the job of the runs ``runs``: each run's ``decoder_job`` and params hash
    (lists, in run order; the same values as its train_decoder job's), the model spec,
    training and embedding params they share, and the checkpoint directory."""

    @per_job
    def jobs(wildcards):
        return list(_decoder_chunk_runs(runs, tuple(wildcards.items()))[0])

    @per_job
    def params_hashes(wildcards):
        return list(_decoder_chunk_runs(runs, tuple(wildcards.items()))[1])

    # checkpoint_dir: a pattern Snakemake fills with the job's wildcards (cheaper than a function)
    return dict(jobs=jobs, model_spec=decoder_model_spec, training=decoder_training,
                embedding=decoder_embedding_params, params_hashes=params_hashes,
                checkpoint_dir=f"{RESULTS}/nlp4neuro/checkpoints/{decoder_chunk_path(runs)}")


def decoder_chunk_gpus(models):
    """The ``gpu`` resource of the training rule of ``models``. It is the number when they all
    ask for the same, else a function of the job's model (every function is called per job)."""
    gpus = {DESIGN.models[model].gpus for model in models}
    return gpus.pop() if len(gpus) == 1 else (lambda wildcards: DESIGN.models[wildcards.model].gpus)


def decoder_chunk_group(models):
    """The job group of the training rule of ``models`` (see cpu_training_group), fixed
    when they all ask for GPUs or none does."""
    gpus = {bool(DESIGN.models[model].gpus) for model in models}
    return (None if gpus.pop() else "cpu_training") if len(gpus) == 1 else cpu_training_group


def decoder_chunk_runtime(runs):
    """The time limit (min) of the job of the runs ``runs``: the model's runtime_min per run,
    times the runs, times the attempt."""
    return lambda wildcards, attempt: DESIGN.models[wildcards.model].runtime_min * len(runs) * attempt


def decoder_outputs(name):
    """Paths of one output kind (metrics.json, predictions.h5, model.pt) of every job."""
    return [f"{RESULTS}/nlp4neuro/{DECODER_RUN.format(**job)}/{name}" for job in DECODER_JOBS]


# ---- salience --------------------------------------------------------------------------

SALIENCE = SECTIONS["salience"]
#: SalienceParams fields each salience rule reads (experiment, models and seq_len choose
#: which jobs exist: they are the jobs' wildcards, not params).
SALIENCE_JOB_FIELDS = ("split", "top_k", "match_distance_px")
SALIENCE_SUMMARY_FIELDS = ("top_k", "example_frame")
try:
    SALIENCE_JOBS = salience_jobs(SALIENCE, DESIGN, list(FISH.index))
except ValueError as err:
    raise WorkflowError(str(err)) from None


def synthetic_truth(wildcards):
    """The ground-truth file of a synthetic fish (its logs come from the synth rules), else
    nothing: salience is then reported without precision@k."""
    row = fish_row(wildcards.fish)
    if str(row.get("tail_log", "")).startswith(f"{SYNTH}/zebrafish/"):
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


def unevaluated_decoder_metrics():
    """metrics.json of the training jobs that no evaluation table reads (rules/evaluate.smk
    requests the others). Each file a rule lists costs the dry run a lookup of its producer
    (thousands at paper scale), so the default target does not list them twice."""
    evaluated = {path for role in EVALUATION.experiments for path in evaluation_metrics(role)}
    return [path for path in decoder_outputs("metrics.json") if path not in evaluated]


def all_targets():
    """Targets of the default target: one neural and one behaviour file per fish, one
    binned file per IBL session, every NLP4Neuro training job's metrics (through the
    evaluation tables that read them, or directly), the NEDS tables and figure. Synthetic
    recordings (table paths under {results_dir}/synth/) are generated first; every recording
    is inventoried first."""
    return (
        expand(f"{RESULTS}/neural/{{fish}}.h5", fish=FISH.index)
        + expand(f"{RESULTS}/behavior/{{fish}}.h5", fish=FISH.index)
        + expand(f"{RESULTS}/ibl/binned/{{session}}.h5", session=SESSIONS.index)
        + unevaluated_decoder_metrics()
        + neds_targets()  # rules/neds.smk: NEDS tables and figure
        + evaluation_targets()  # rules/evaluate.smk: NLP4Neuro tables 1-3, figures 2a-c, 3
        + salience_targets()  # rules/salience.smk: salience table and figures 4-6 per model
        + imaging_quality_targets()  # rules/imaging.smk: quality page per registered fish
    )
