"""The model catalog: one config entry per decoder name, built through one interface.

Every decoder maps windows (batch, seq_len, neurons) float32 to tail angles
(batch, seq_len, 6) in rad, and says how it is fitted with ``closed_form`` (reservoir: ridge
readout in closed form; others: gradient descent in :mod:`pipeline.train.loop`).

A catalog entry (config ``nlp4neuro.models.<name>``)::

    kind: transformer              # reservoir | lstm | transformer
    architecture: {family: bert, source: bert-base-uncased}   # ReservoirParams / LstmParams / LanguageModelParams
    training: {learning_rate: 2.0e-5}   # overrides of the experiment's training section
    gpus: 1                        # GPUs the training job requests on a cluster
    mem_mb: 32000                  # job memory (MB)
    runtime_min: 240               # time limit of one run (min)
    runs_per_job: 2                # runs one training job trains (default: nlp4neuro.runs_per_job)

Reservoir and LSTM decoders have no pretrained weights and no input-embedding choice: their
jobs always run with ``weights=untrained`` and ``embedding=linear`` (the raw neural vector).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipeline.models.config import EmbeddingParams, LanguageModelParams, LstmParams, ReservoirParams
from pipeline.params import Params
from pipeline.train.config import TrainingParams

if TYPE_CHECKING:  # torch is imported by the decoders only: the Snakefile reads ModelSpec at parse time
    import torch
    from torch import nn

KINDS = ("reservoir", "lstm", "transformer")


def architecture_class(kind: str):
    """The parameter dataclass of a catalog entry's ``architecture`` (pipeline.models.config)."""
    return {"reservoir": ReservoirParams, "lstm": LstmParams, "transformer": LanguageModelParams}[kind]


@dataclass(frozen=True)
class ModelSpec(Params):
    kind: str = "lstm"  # reservoir | lstm | transformer
    architecture: dict = field(default_factory=dict)  # fields of the kind's parameter dataclass
    training: dict = field(default_factory=dict)  # TrainingParams fields overriding the experiment's
    gpus: int = 0  # GPUs requested by this model's training jobs on a cluster
    mem_mb: int = 4000  # memory of a training job (MB)
    runtime_min: int = 60  # time limit of one run (min); a job of R runs asks R x this
    runs_per_job: int = 0  # runs (seeds) per training job; 0 = the section's nlp4neuro.runs_per_job

    RUNTIME_FIELDS = ("gpus", "mem_mb", "runtime_min", "runs_per_job")  # scheduling: never params

    def __post_init__(self) -> None:
        self._coerce_field_types()
        if self.kind not in KINDS:
            raise ValueError(f"model kind must be one of {KINDS}, got {self.kind!r}")
        if self.gpus < 0 or self.mem_mb < 1 or self.runtime_min < 1 or self.runs_per_job < 0:
            raise ValueError("ModelSpec: gpus >= 0, mem_mb >= 1, runtime_min >= 1 and runs_per_job >= 0 "
                             "(0: nlp4neuro.runs_per_job) are required")
        object.__setattr__(self, "architecture", architecture_class(self.kind).from_mapping(self.architecture).to_dict())
        TrainingParams.from_mapping(self.training)  # validates the overrides early
        object.__setattr__(self, "training", dict(self.training))

    def defaults(self) -> dict[str, Any]:
        """Declared defaults, with the default architecture of this entry's kind."""
        return {**self.default_values(), "architecture": architecture_class(self.kind).default_values()}

    @property
    def has_pretrained_weights(self) -> bool:
        return self.kind == "transformer" and bool(self.architecture["source"])

    def supports_weights(self, weights: str) -> bool:
        """Whether this model trains under the ``weights`` option (experiment grids keep only
        those): ``untrained`` always; ``pretrained`` with a weight source; ``scratch_full``
        (random init, every weight trained; :mod:`pipeline.models.language`) for transformers
        whose untrained twin trains LoRA adapters only (without LoRA, ``untrained`` already
        trains every weight from scratch)."""
        if weights == "pretrained":
            return self.has_pretrained_weights
        if weights == "scratch_full":
            return self.kind == "transformer" and self.architecture["lora_rank"] > 0
        return weights == "untrained"

    @property
    def has_embedding_choice(self) -> bool:
        return self.kind == "transformer"


def build_decoder(
    spec: ModelSpec,
    n_neurons: int,
    weights: str,
    embedding: str,
    embedding_params: dict,
    seed: int,
    device: torch.device | str = "cpu",
) -> nn.Module:
    """A fresh decoder of ``spec`` for ``n_neurons`` inputs (seeded)."""
    architecture = architecture_class(spec.kind).from_mapping(spec.architecture)
    if spec.kind != "transformer":
        if weights != "untrained" or embedding != "linear":
            raise ValueError(f"{spec.kind} decoders only run with weights=untrained and embedding=linear")
        if spec.kind == "reservoir":
            from pipeline.models.reservoir import ReservoirDecoder

            return ReservoirDecoder(n_neurons, architecture, seed)
        from pipeline.models.lstm import LstmDecoder

        return LstmDecoder(n_neurons, architecture, seed)
    from pipeline.models.language import LanguageModelDecoder

    return LanguageModelDecoder(
        n_neurons, architecture, weights, embedding, EmbeddingParams.from_mapping(embedding_params), seed, device
    )


def parameter_counts(model: nn.Module) -> dict[str, int]:
    """Total and trainable parameter counts. bitsandbytes 4-bit weights pack two values per
    stored element, so they count double."""
    total = trainable = 0
    for p in model.parameters():
        n = p.numel() * (2 if type(p).__name__ == "Params4bit" else 1)
        total += n
        trainable += n if p.requires_grad else 0
    return {"n_parameters_total": total, "n_parameters_trainable": trainable}
