"""NLP4Neuro experiment design (paper seed 000, Sec. 4): the config's ``nlp4neuro`` section
resolved into a model catalog, experiments, and the list of training jobs.

An experiment is a grid over the job wildcards::

    model_comparison:            # Exp. 1 (Fig. 2a, Table 1)
      models: [reservoir, lstm, bert, gpt2, deepseek-coder-7b]
      seq_lens: [5, 10, 15, 20]
      n_runs: 10
      weights: [pretrained]      # Exp. 2 uses [pretrained, untrained]
      embeddings: [linear]       # Exp. 3 uses all five strategies
      split_fractions: [0.7, 0.15, 0.15]   # Exp. 2-3: [0.7, 0.1, 0.2]
      training: {epochs: 10, batch_size: 16, learning_rate: 1.0e-4}
      fish: []                   # empty: every fish of the fish table
      cv_folds: 0                # 0: one chronological split; k >= 2: blocked k-fold CV

Blocked cross-validation (``cv_folds: k``; :func:`pipeline.data.windows.blocked_fold_split`):
fold f tests on the f-th of k contiguous blocks tiling the recording, validates on
``split_fractions[1]`` of the recording just before it (fold 0: just after), trains on the
rest, with ``seq_len`` volumes left out between blocks (``split_fractions[0]`` and ``[2]``
are then unused). Folds are a DAG wildcard: each fold is its own job (path suffix
``-fold{f}`` after ``run{run}``; :func:`fold_wildcard`), so the k folds of a run train in
parallel on a cluster at the cost (GPU, time limit) of one single-split job, a failed or
preempted fold reruns alone, and changing ``cv_folds`` reruns every fold of the experiment
(the blocks move). With ``cv_folds: 0`` the paths and params of every job are those of the
single split. The evaluation averages each (fish, run)'s folds before any statistic
(:func:`pipeline.stats.records.average_over_folds`).

Jobs: for every fish x model x seq_len x run, every weights option the model supports
(reservoir/LSTM and transformers without a weight source only have ``untrained``) and every
embedding it supports (reservoir/LSTM: ``linear`` only). Per-model ``training`` entries of
the catalog override the experiment's ``training``; the merged values are the job's params,
so changing one model's hyperparameter reruns only that model's jobs.

``runs_per_job`` R (section key, default 1; a catalog entry's own ``runs_per_job`` overrides
it for that model) is scheduling only: with R > 1 one DAG job trains the runs of a chunk
(:meth:`Nlp4NeuroDesign.run_chunks`) one after another, each exactly as its own job would
(:func:`pipeline.train.job.run_decoding_runs`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

from pipeline.chunks import chunk_items, n_chunks
from pipeline.models.catalog import ModelSpec
from pipeline.models.config import EmbeddingParams, STRATEGIES
from pipeline.params import Params
from pipeline.train.config import TrainingParams

WEIGHT_OPTIONS = ("pretrained", "untrained", "scratch_full")  # pipeline.models.language.WEIGHTS
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.]*$")  # no "-" or "/": they delimit path wildcards


@dataclass(frozen=True)
class ExperimentParams(Params):
    models: tuple = ()  # catalog names to train
    seq_lens: tuple = (5, 10)  # window lengths (imaging volumes)
    n_runs: int = 1  # repetitions (seeds) per fish x model x seq_len x weights x embedding
    weights: tuple = ("pretrained",)  # pretrained and/or untrained (transformers with a weight source)
    embeddings: tuple = ("linear",)  # input-embedding strategies (transformers)
    split_fractions: tuple[float, ...] = (0.7, 0.15, 0.15)  # chronological train:val:test
    training: dict = field(default_factory=dict)  # TrainingParams fields
    fish: tuple = ()  # fish ids to use; empty = every fish
    cv_folds: int = 0  # 0 = one chronological split; k >= 2 = blocked k-fold cross-validation (k jobs per run)

    def __post_init__(self) -> None:
        self._coerce_field_types()
        for name in ("models", "seq_lens", "weights", "embeddings", "fish"):
            values = tuple(getattr(self, name))
            if len(set(values)) != len(values):
                raise ValueError(f"{name} has duplicates: {list(values)}")
            object.__setattr__(self, name, values)
        if not self.models:
            raise ValueError("models must name at least one catalog entry")
        if not self.seq_lens or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in self.seq_lens):
            raise ValueError(f"seq_lens must be positive integers, got {list(self.seq_lens)}")
        if self.n_runs < 1:
            raise ValueError("n_runs must be >= 1")
        if not self.weights or set(self.weights) - set(WEIGHT_OPTIONS):
            raise ValueError(f"weights must be a non-empty subset of {WEIGHT_OPTIONS}")
        if not self.embeddings or set(self.embeddings) - set(STRATEGIES):
            raise ValueError(f"embeddings must be a non-empty subset of {STRATEGIES}")
        if len(self.split_fractions) != 3:
            raise ValueError("split_fractions must have three entries (train, val, test)")
        if self.cv_folds == 1 or self.cv_folds < 0:
            raise ValueError(f"cv_folds must be 0 (one split) or >= 2 (blocked k-fold), got {self.cv_folds}")
        TrainingParams.from_mapping(self.training)
        object.__setattr__(self, "training", dict(self.training))


@dataclass(frozen=True)
class Nlp4NeuroDesign:
    """The resolved ``nlp4neuro`` section."""

    signal: str
    device: str
    embedding: dict  # EmbeddingParams fields
    models: dict[str, ModelSpec]
    experiments: dict[str, ExperimentParams]
    runs_per_job: int = 1  # R: one job trains runs [c R, (c + 1) R) (scheduling only; :meth:`run_chunks`)

    def training(self, experiment: str, model: str) -> dict:
        """The job's TrainingParams: experiment defaults, then the model's overrides."""
        merged = {**self.experiments[experiment].training, **self.models[model].training}
        return TrainingParams.from_mapping(merged).to_dict()

    def model_runs_per_job(self, model: str) -> int:
        """R of ``model``'s training jobs: its catalog entry's ``runs_per_job``, else the section's."""
        return self.models[model].runs_per_job or self.runs_per_job

    @property
    def chunked(self) -> bool:
        """Whether any model trains several runs per job (rules ``train_decoder_runs<a>to<b>``)."""
        return any(self.model_runs_per_job(model) > 1 for design in self.experiments.values()
                   for model in design.models)

    @property
    def cross_validated(self) -> bool:
        """Whether any experiment uses blocked cross-validation (a ``fold`` wildcard)."""
        return any(design.cv_folds for design in self.experiments.values())

    def run_chunks(self) -> list[tuple[range, tuple[str, ...], tuple[str, ...]]]:
        """The training rules when :attr:`chunked`: (runs, experiments, models), one rule each.
        Chunk c of an (experiment, model) holds runs [c R, (c + 1) R) ∩ [0, n_runs), R = the
        model's :meth:`model_runs_per_job` (:func:`pipeline.chunks.chunk_items`), so raising
        ``n_runs`` changes only its last chunk and adds new ones. A rule's experiments x models
        holds every (experiment, model) pair with that range and no pair of the catalog that has
        another range for these runs (Snakemake constrains each wildcard on its own), so every
        run's outputs have exactly one rule. Ranges in order of first appearance (experiments,
        then models, in config order); one rule per range unless that rule would cover a pair
        chunked differently."""
        pairs: dict[range, dict[tuple[str, str], None]] = {}  # an ordered set per range
        for name, design in self.experiments.items():
            for model in design.models:
                per_job = self.model_runs_per_job(model)
                for chunk in range(n_chunks(design.n_runs, per_job)):
                    pairs.setdefault(chunk_items(design.n_runs, per_job, chunk), {})[(name, model)] = None
        rules = []
        for runs, range_pairs in pairs.items():
            groups: list[tuple[list[str], list[str]]] = []  # (experiments, models) of each rule

            def exact(experiments, models, others):
                # every pair of the product is a job of these runs no other rule covers, or no job
                return all(m not in self.experiments[e].models
                           or ((e, m) in range_pairs and not any(e in oe and m in om for oe, om in others))
                           for e in experiments for m in models)

            for experiment, model in range_pairs:
                if any(experiment in experiments and model in models for experiments, models in groups):
                    continue
                for index, (experiments, models) in enumerate(groups):
                    merged = (experiments + [experiment] * (experiment not in experiments),
                              models + [model] * (model not in models))
                    if exact(*merged, groups[:index] + groups[index + 1:]):
                        groups[index] = merged
                        break
                else:
                    groups.append(([experiment], [model]))
            rules += [(runs, tuple(experiments), tuple(models)) for experiments, models in groups]
        return rules

    def jobs(self, fish_ids: list[str]) -> list[dict[str, Any]]:
        """Every training job as a dict of wildcard values (``seq_len`` and ``run`` as int,
        ``fold`` as the wildcard string of :func:`fold_wildcard`)."""
        jobs = []
        for experiment, design in self.experiments.items():
            unknown = set(design.fish) - set(fish_ids)
            if unknown:
                raise ValueError(f"nlp4neuro.experiments.{experiment}.fish names unknown fish {sorted(unknown)}")
            for fish in design.fish or fish_ids:
                for model in design.models:
                    spec = self.models[model]
                    weights = [w for w in design.weights if spec.supports_weights(w)]
                    embeddings = list(design.embeddings) if spec.has_embedding_choice else ["linear"]
                    folds = [fold_wildcard(f) for f in range(design.cv_folds)] or [fold_wildcard(None)]
                    for weight in weights or ["untrained"]:
                        for embedding in embeddings:
                            for seq_len in design.seq_lens:
                                for run in range(design.n_runs):
                                    for fold in folds:
                                        jobs.append(dict(experiment=experiment, fish=fish, model=model,
                                                         weights=weight, embedding=embedding, seq_len=seq_len,
                                                         run=run, fold=fold))
        return jobs


#: regular expression of the ``fold`` wildcard: "" (single split) or "-fold<f>"
FOLD_WILDCARD = r"(-fold\d+)?"


def fold_wildcard(fold: int | None) -> str:
    """The ``fold`` wildcard (suffix of ``run{run}`` in a job's path) of a blocked
    cross-validation fold; ``None`` (single split) is "" so those paths stay ``run{run}``."""
    return "" if fold is None else f"-fold{fold}"


def parse_fold_wildcard(value: str) -> int | None:
    """Inverse of :func:`fold_wildcard`."""
    if not re.fullmatch(FOLD_WILDCARD, value):
        raise ValueError(f"fold wildcard must be '' or '-fold<int>', got {value!r}")
    return int(value.removeprefix("-fold")) if value else None


def resolve_design(section: Mapping[str, Any]) -> Nlp4NeuroDesign:
    """Check the ``nlp4neuro`` config section and fill defaults; errors name the key."""
    section = dict(section)
    models = {}
    for name, entry in (section.get("models") or {}).items():
        if not NAME_PATTERN.match(name):
            raise ValueError(f"nlp4neuro.models: model name {name!r} must match {NAME_PATTERN.pattern}")
        try:
            models[name] = ModelSpec.from_mapping(entry)
        except (TypeError, ValueError) as err:
            raise ValueError(f"nlp4neuro.models.{name}: {err}") from None
    experiments = {}
    for name, entry in (section.get("experiments") or {}).items():
        if not NAME_PATTERN.match(name):
            raise ValueError(f"nlp4neuro.experiments: name {name!r} must match {NAME_PATTERN.pattern}")
        try:
            experiments[name] = ExperimentParams.from_mapping(entry)
        except (TypeError, ValueError) as err:
            raise ValueError(f"nlp4neuro.experiments.{name}: {err}") from None
        missing = [m for m in experiments[name].models if m not in models]
        if missing:
            raise ValueError(f"nlp4neuro.experiments.{name}.models: {missing} not in nlp4neuro.models")
    if not experiments:
        raise ValueError("nlp4neuro.experiments must define at least one experiment")
    signal = section.get("signal", "dff")
    if signal not in ("dff", "spks"):
        raise ValueError(f"nlp4neuro.signal must be dff or spks, got {signal!r}")
    device = section.get("device", "auto")
    if not re.match(r"^(auto|cpu|cuda(:\d+)?)$", str(device)):
        raise ValueError(f"nlp4neuro.device must be auto, cpu or cuda[:N], got {device!r}")
    try:
        embedding = EmbeddingParams.from_mapping(section.get("embedding")).to_dict()
    except (TypeError, ValueError) as err:
        raise ValueError(f"nlp4neuro.embedding: {err}") from None
    runs_per_job = section.get("runs_per_job", 1)
    if not isinstance(runs_per_job, int) or isinstance(runs_per_job, bool) or runs_per_job < 1:
        raise ValueError(f"nlp4neuro.runs_per_job must be an integer >= 1, got {runs_per_job!r}")
    return Nlp4NeuroDesign(signal, device, embedding, models, experiments, runs_per_job)
