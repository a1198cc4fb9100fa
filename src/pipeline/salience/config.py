"""Salience settings (config ``salience``) and which training jobs are explained
(paper seed 000, Sec. 4.4, Eq. 21); the stage itself is :mod:`pipeline.salience.job`.

Torch-free: the Snakefile reads it at parse time to plan the salience jobs.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.params import Params


SPLITS = ("train", "val", "test", "all")  # "all": every frame of the recording (paper Eq. 21)


@dataclass(frozen=True)
class SalienceParams(Params):
    experiment: str = "model_comparison"  # experiment whose trained decoders are explained
    models: tuple = ()  # catalog names to explain (empty: no salience jobs)
    seq_len: int = 10  # window length of the explained decoders (one of the experiment's seq_lens)
    split: str = "all"  # frames of Eq. 21: all (the paper: whole recording), train, val or test
    top_k: int = 20  # neurons reported / drawn as the most salient
    example_frame: int = 30  # frame (index within the split) of the moment-to-moment figure (Fig. 6)
    match_distance_px: float = 3.0  # synthetic fish: ROI-to-true-neuron centroid distance for driver labels (px)

    def __post_init__(self) -> None:
        self._coerce_field_types()
        object.__setattr__(self, "models", tuple(self.models))
        if self.split not in SPLITS:
            raise ValueError(f"SalienceParams.split must be one of {SPLITS}, got {self.split!r}")
        if self.top_k < 1 or self.seq_len < 1 or self.example_frame < 0 or self.match_distance_px <= 0:
            raise ValueError("SalienceParams: top_k, seq_len >= 1, example_frame >= 0, match_distance_px > 0")


def salience_jobs(params: SalienceParams, design, fish_ids: list[str]) -> list[dict]:
    """The training jobs to explain: every fish and run of ``params.experiment`` for each
    model at ``params.seq_len``, with the model's first weights option of the experiment
    (pretrained where it has one) and its first embedding. Errors name the bad key."""
    if not params.models:
        return []
    if params.experiment not in design.experiments:
        raise ValueError(f"salience.experiment: {params.experiment!r} is not in nlp4neuro.experiments")
    if params.seq_len not in design.experiments[params.experiment].seq_lens:
        raise ValueError(f"salience.seq_len: {params.seq_len} is not a seq_len of experiment {params.experiment!r}")
    if design.experiments[params.experiment].cv_folds:
        raise ValueError(f"salience.experiment: {params.experiment!r} uses blocked cross-validation (cv_folds "
                         f"{design.experiments[params.experiment].cv_folds}); salience explains single-split decoders, "
                         "choose an experiment with cv_folds: 0")
    jobs = [j for j in design.jobs(fish_ids) if j["experiment"] == params.experiment and j["seq_len"] == params.seq_len]
    chosen = []
    for model in params.models:
        candidates = [j for j in jobs if j["model"] == model]
        if not candidates:
            raise ValueError(f"salience.models: {model!r} is not trained in experiment {params.experiment!r}")
        first = candidates[0]
        chosen += [j for j in candidates if (j["weights"], j["embedding"]) == (first["weights"], first["embedding"])]
    return chosen
