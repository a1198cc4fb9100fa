"""The ``evaluation`` config section: which NLP4Neuro experiment plays which role in the
paper outputs, the significance level, and the example traces of Fig. 2c.

Roles (values are names of ``nlp4neuro.experiments``):

- ``model_comparison`` -> Fig. 2a, Fig. 2c (paper Exp. 1: 10 epochs, batch 16, 70:15:15): one
  weights option and one embedding (each model has one variant per seq_len);
- ``model_table`` -> Table 1, written with Fig. 2a. The paper builds Table 1 under the Exp. 2
  protocol (Sec. 3.4: "5 [epochs] for Fig. 2(b) and Table 1"; batch 32, 70:10:20) and its
  values equal the pretrained column of Table 2 (App. A.10), so the experiment may have
  weights [pretrained, untrained]: Table 1 then takes each model's pretrained jobs (a model
  without pretrained weights: its untrained jobs). Unset: the ``model_comparison`` experiment;
  needs ``model_comparison`` on;
- ``pretrained_vs_untrained`` -> Table 2, Fig. 2b: weights [pretrained, untrained] (plus
  ``scratch_full``: a third arm, "from scratch, all weights", in Table 2), one embedding;
- ``embeddings`` -> Table 3, Fig. 3: at least two embeddings, one weights option.

A role left out of the section defaults to the experiment of the same name when there is
one (the names of config/config.yaml), else it is off; ``""`` turns a role off; a name that
is not an experiment is an error. A renamed experiment keeps its outputs by naming it here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from pipeline.params import Params

ROLES = ("model_comparison", "model_table", "pretrained_vs_untrained", "embeddings")
_UNSET = None


@dataclass(frozen=True)
class EvaluationParams(Params):
    model_comparison: str | None = _UNSET  # experiment behind Fig. 2a, 2c ("" = off, Table 1 too)
    model_table: str | None = _UNSET  # experiment behind Table 1; unset = the model_comparison experiment
    pretrained_vs_untrained: str | None = _UNSET  # experiment behind Table 2, Fig. 2b
    embeddings: str | None = _UNSET  # experiment behind Table 3, Fig. 3
    alpha: float = 0.05  # significance level of the (adjusted) p-values: * marks
    bootstrap_resamples: int = 2000  # fish resampled with replacement for the fish-level 95 % CIs
    trace_fish: str = ""  # Fig. 2c fish; "" = the first fish of the model_comparison experiment
    trace_seq_len: int = 0  # Fig. 2c window length; 0 = the smallest of the experiment
    trace_frames: int = 200  # Fig. 2c shows the first this many test frames; 0 = all

    def __post_init__(self) -> None:
        self._coerce_field_types()
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if self.bootstrap_resamples < 100:
            raise ValueError(f"bootstrap_resamples must be >= 100, got {self.bootstrap_resamples}")
        if self.trace_seq_len < 0 or self.trace_frames < 0:
            raise ValueError("trace_seq_len and trace_frames must be >= 0")
        for role in ROLES:
            value = getattr(self, role)
            if value is not None and not isinstance(value, str):
                raise ValueError(f"{role} must be an experiment name (or \"\" for none), got {value!r}")


@dataclass(frozen=True)
class Evaluation:
    """The resolved section: role -> experiment name (roles that are off are absent)."""

    experiments: dict[str, str]
    alpha: float
    bootstrap_resamples: int
    trace_fish: str
    trace_seq_len: int
    trace_frames: int

    def to_dict(self) -> dict[str, Any]:
        return {"experiments": dict(self.experiments), "alpha": self.alpha,
                "bootstrap_resamples": self.bootstrap_resamples, "trace_fish": self.trace_fish,
                "trace_seq_len": self.trace_seq_len, "trace_frames": self.trace_frames}


def _check_role(role: str, name: str, experiment) -> None:
    where = f"evaluation.{role} ({name!r})"
    if role == "model_comparison" and (len(experiment.weights) != 1 or len(experiment.embeddings) != 1):
        raise ValueError(f"{where}: Fig. 2a compares one variant per model; the experiment needs exactly one "
                         f"weights option and one embedding, has {list(experiment.weights)} x "
                         f"{list(experiment.embeddings)}")
    if role == "model_table" and len(experiment.embeddings) != 1:
        raise ValueError(f"{where}: Table 1 compares one variant per model; the experiment needs one embedding, "
                         f"has {list(experiment.embeddings)}")
    if role == "pretrained_vs_untrained" and (not {"pretrained", "untrained"} <= set(experiment.weights)
                                              or len(experiment.embeddings) != 1):
        raise ValueError(f"{where}: the experiment needs weights [pretrained, untrained] (scratch_full optional) "
                         f"and one embedding, has "
                         f"{list(experiment.weights)} x {list(experiment.embeddings)}")
    if role == "embeddings" and (len(experiment.embeddings) < 2 or len(experiment.weights) != 1):
        raise ValueError(f"{where}: the experiment needs at least two embeddings and one weights option, has "
                         f"{list(experiment.weights)} x {list(experiment.embeddings)}")


def resolve_evaluation(section: Mapping[str, Any] | None, design, fish_ids: list[str]) -> Evaluation:
    """Check the section against the resolved ``nlp4neuro`` design (pipeline.train.experiments)
    and the fish table; errors name the key."""
    try:
        params = EvaluationParams.from_mapping(section)
    except (TypeError, ValueError) as err:
        raise ValueError(f"evaluation: {err}") from None
    experiments = {}
    for role in ROLES:
        name = getattr(params, role)
        if name is None and role == "model_table":  # not given: Table 1 from the Fig. 2a experiment
            name = experiments.get("model_comparison", "")
        elif name is None:  # not given: the experiment of the same name, if any
            name = role if role in design.experiments else ""
        elif name and name not in design.experiments:
            raise ValueError(f"evaluation.{role}: {name!r} is not in nlp4neuro.experiments "
                             f"({', '.join(design.experiments)})")
        if name and role == "model_table" and "model_comparison" not in experiments:
            raise ValueError(f"evaluation.model_table ({name!r}): Table 1 is written with Fig. 2a; set "
                             "evaluation.model_comparison too")
        if name:
            _check_role(role, name, design.experiments[name])
            experiments[role] = name
    trace_fish, trace_seq_len = params.trace_fish, params.trace_seq_len
    if "model_comparison" in experiments:
        experiment = design.experiments[experiments["model_comparison"]]
        experiment_fish = list(experiment.fish) or list(fish_ids)
        if trace_fish and trace_fish not in experiment_fish:
            raise ValueError(f"evaluation.trace_fish: {trace_fish!r} is not a fish of experiment "
                             f"{experiments['model_comparison']!r} ({', '.join(experiment_fish)})")
        if trace_seq_len and trace_seq_len not in experiment.seq_lens:
            raise ValueError(f"evaluation.trace_seq_len: {trace_seq_len} is not a seq_len of experiment "
                             f"{experiments['model_comparison']!r} {list(experiment.seq_lens)}")
        trace_fish = trace_fish or (experiment_fish[0] if experiment_fish else "")
        trace_seq_len = trace_seq_len or min(experiment.seq_lens)
    return Evaluation(experiments, params.alpha, params.bootstrap_resamples, trace_fish, trace_seq_len,
                      params.trace_frames)
