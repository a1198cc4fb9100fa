"""Random hyperparameter search of the single-session NEDS models as DAG jobs (paper seed
002, App. C: Ray Tune's 50 random draws per session over Table 3's ranges).

Draw d of (variant, session) takes learning rate and weight decay log-uniformly, the mask
ratio uniformly and embedding width, feed-forward width and depth uniformly from the
configured choices (``neds.search``), from a generator seeded by (job seed, d) alone: a
draw's hyperparameters never depend on how many draws are configured, so adding draws adds
only the new draw jobs (and reruns the selection). Every draw trains on the training trials
and is scored on the validation trials only (:func:`pipeline.neds.train.train_model`'s
selection score of its best epoch); the selection job evaluates only the best draw on the
test trials. Attention heads stay ``model.n_heads`` (the paper fixes 8).

``draws_per_job`` K > 1 groups the draws into jobs with fixed boundaries: job (chunk) c
holds draws [c K, (c + 1) K) ∩ [0, draws) (:func:`pipeline.chunks.chunk_items`), so adding draws reruns
only the last, partial chunk (its draw list grew) and the new chunks, plus the selection.
A chunk trains its draws one after another with the same per-draw seeds and values as
single-draw jobs, so the selected model and its metrics do not depend on K.
"""

from __future__ import annotations

import dataclasses
import functools
import math

from pipeline.neds.config import MaskingParams, ModelParams, SearchParams, TrainingParams
from pipeline.seeding import rng_for


def draw_values(search: SearchParams, seed: int, draw: int) -> dict:
    """Draw ``draw``'s learning rate, weight decay, mask ratio, embedding width, feed-forward
    width and depth (module docstring): a function of (``seed``, ``draw``) and the ranges."""
    rng = rng_for(seed, "neds_search", draw)

    def log_uniform(low_high):
        return float(math.exp(rng.uniform(math.log(low_high[0]), math.log(low_high[1]))))

    learning_rate, weight_decay = log_uniform(search.learning_rate), log_uniform(search.weight_decay)
    mask_ratio = float(rng.uniform(*search.mask_ratio))

    def choice(options):
        # the element at rng.integers(0, len(options)): the number Generator.choice(options)
        # draws for one element, without converting the options to an array (4x faster; the
        # dry run draws 3,000 of these at paper scale)
        return int(options[rng.integers(0, len(options))])

    embed_dim, mlp_dim, n_layers = choice(search.embed_dim), choice(search.mlp_dim), choice(search.n_layers)
    return {"learning_rate": learning_rate, "weight_decay": weight_decay, "mask_ratio": mask_ratio,
            "embed_dim": embed_dim, "mlp_dim": mlp_dim, "n_layers": n_layers}


def draw_hyperparameters(search: SearchParams, model: ModelParams, masking: MaskingParams, training: TrainingParams,
                         seed: int, draw: int) -> tuple[ModelParams, MaskingParams, TrainingParams]:
    """The configured sub-sections with draw ``draw``'s values (module docstring)."""
    values = draw_values(search, seed, draw)
    return (dataclasses.replace(model, embed_dim=values["embed_dim"], mlp_dim=values["mlp_dim"],
                                n_layers=values["n_layers"]),
            dataclasses.replace(masking, mask_ratio=values["mask_ratio"]),
            dataclasses.replace(training, learning_rate=values["learning_rate"],
                                weight_decay=values["weight_decay"]))


@functools.lru_cache(maxsize=None)
def _section_dict(section) -> dict:
    return section.to_dict()


@functools.lru_cache(maxsize=None)
def _checked_architecture(model: ModelParams, embed_dim: int, mlp_dim: int, n_layers: int) -> None:
    dataclasses.replace(model, embed_dim=embed_dim, mlp_dim=mlp_dim, n_layers=n_layers)  # raises if invalid


def draw_sections(search: SearchParams, model: ModelParams, masking: MaskingParams, training: TrainingParams,
                  seed: int, draw: int) -> dict[str, dict]:
    """:func:`draw_hyperparameters` as the sections' ``to_dict()`` (what a draw job's params
    hold; same keys, order and values) without building three dataclasses per draw: the
    sections' dicts updated with the drawn values. Each distinct drawn architecture is still
    checked by :class:`ModelParams` (once); the drawn rates and ratio lie in ranges
    :class:`SearchParams` validated."""
    values = draw_values(search, seed, draw)
    architecture = {name: values[name] for name in ("embed_dim", "mlp_dim", "n_layers")}
    _checked_architecture(model, **architecture)
    return {"model": {**_section_dict(model), **architecture},
            "masking": {**_section_dict(masking), "mask_ratio": values["mask_ratio"]},
            "training": {**_section_dict(training), "learning_rate": values["learning_rate"],
                         "weight_decay": values["weight_decay"]}}


def best_draw(validation_records: list[dict]) -> int:
    """Position of the record with the highest ``best_val_score`` (the first on ties)."""
    scores = [record["training"]["best_val_score"] for record in validation_records]
    return max(range(len(scores)), key=lambda i: (scores[i], -i))
