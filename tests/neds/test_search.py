"""Hyperparameter search as DAG jobs: draws are a function of (seed, draw) alone and stay in
the configured ranges; the best validation draw is chosen; a configuration with 3 draws plans
3 draw jobs + 1 selection, and raising it to 5 on a finished run plans exactly the 2 new
draws + the selection (Snakemake's params trigger sees the old draws unchanged). With
``draws_per_job`` K = 2 the draws are chunks [2c, 2c + 2): 3 draws plan 2 chunk jobs, and 5
plan only the grown last chunk, the new one and the selection; the chunks' selection is the
K = 1 selection (same draws, same model, same metrics), and a resumed chunk reads back the
draws an earlier attempt finished instead of retraining them."""

import json
import math
from collections import Counter
from pathlib import Path

import pytest
import torch
import yaml

from helpers import run_snakemake
from pipeline.neds import stages
from pipeline.neds.config import MaskingParams, ModelParams, SearchParams, TrainingParams
from pipeline.chunks import chunk_items, n_chunks
from pipeline.neds.search import best_draw, draw_hyperparameters, draw_sections, draw_values
from pipeline.neds.train import load_model
from pipeline.seeding import rng_for

SELECTED = "results/neds/single/multimodal/sesA/metrics.json"


def test_draws_depend_on_seed_and_draw_only_and_stay_in_range():
    search = SearchParams(draws=3)
    base = (ModelParams(n_heads=2), MaskingParams(), TrainingParams())
    first = [draw_hyperparameters(search, *base, seed=7, draw=d) for d in range(3)]
    assert [draw_hyperparameters(SearchParams(draws=5), *base, seed=7, draw=d) for d in range(3)] == first
    assert len({(m.embed_dim, t.learning_rate) for m, _, t in first}) == 3
    for model, masking, training in first:
        assert 1e-4 <= training.learning_rate <= 1e-3 and 1e-3 <= training.weight_decay <= 0.1
        assert 0.1 <= masking.mask_ratio <= 0.4 and model.embed_dim in (128, 256, 512) and model.n_layers in (5, 6)
        assert training.epochs == TrainingParams().epochs and model.n_heads == 2  # the rest stays configured
    for d in range(3):  # the draw jobs' params: the same dicts, key order included (Snakemake's params trigger)
        sections = draw_sections(search, *base, seed=7, draw=d)
        assert repr(sections) == repr(dict(zip(("model", "masking", "training"), (s.to_dict() for s in first[d]))))
    with pytest.raises(ValueError):  # a drawn width that the heads do not divide is refused, as by ModelParams
        draw_sections(SearchParams(draws=1, embed_dim=(30,)), ModelParams(n_heads=4), *base[1:], seed=7, draw=0)
    records = [{"training": {"best_val_score": s}} for s in (0.1, 0.7, 0.7, 0.2)]
    assert best_draw(records) == 1


def test_draws_keep_the_values_generator_choice_drew():
    """Finished search jobs' params hold these values: each draw equals the one drawn with
    ``Generator.choice`` (before ``draw_values`` indexed the options itself)."""
    search = SearchParams(draws=300, embed_dim=(128, 256, 512, 1024))
    for draw in range(300):
        rng = rng_for(11, "neds_search", draw)
        rates = [float(math.exp(rng.uniform(math.log(low), math.log(high))))
                 for low, high in (search.learning_rate, search.weight_decay)]
        expected = {"learning_rate": rates[0], "weight_decay": rates[1], "mask_ratio": float(rng.uniform(*search.mask_ratio)),
                    **{name: int(rng.choice(getattr(search, name))) for name in ("embed_dim", "mlp_dim", "n_layers")}}
        assert draw_values(search, 11, draw) == expected


def test_draws_per_job_must_be_positive():
    with pytest.raises(ValueError):
        SearchParams(draws=3, draws_per_job=0)


def _configure(workdir: Path, draws: int, draws_per_job: int = 1) -> None:
    path = workdir / "config" / "config.yaml"
    config = yaml.safe_load(path.read_text())
    search = {"draws": draws} if draws_per_job == 1 else {"draws": draws, "draws_per_job": draws_per_job}
    config["neds"].update(search=search, variants=["multimodal"], masking_ablation=[])
    path.write_text(yaml.safe_dump(config))


def _planned_jobs(stdout: str) -> dict[str, int]:
    table = stdout.split("Job stats:")[1].split("total")[0]
    return {line.split()[0]: int(line.split()[1]) for line in table.splitlines()[3:] if line.strip()}


def _finish(workdir: Path) -> Counter:
    """Plan SELECTED, create its jobs' outputs and record their metadata like a finished run;
    the number of outputs per rule."""
    summary = run_snakemake("--detailed-summary", SELECTED, workdir=workdir)
    assert summary.returncode == 0, summary.stdout
    rows = [line.split("\t") for line in summary.stdout.splitlines() if line.startswith("results/")]
    for output, *_ in rows:
        path = workdir / output
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch() if "." in path.name else path.mkdir(exist_ok=True)  # directory() outputs have no suffix
    # --forceall: every job's metadata (params, inputs) is recorded, not only those of jobs
    # whose outputs happen to be older than their inputs
    touched = run_snakemake("--touch", "--forceall", "--cores", "1", SELECTED, workdir=workdir)
    assert touched.returncode == 0, touched.stdout
    return Counter(row[2] for row in rows)


def test_three_draws_plan_three_jobs_and_a_selection_and_two_more_plan_only_those(test_workdir):
    _configure(test_workdir, 3)
    jobs = _finish(test_workdir)
    assert jobs["neds_search_draw"] == 2 * 3 and jobs["neds_search_select"] == 2  # two outputs per job
    _configure(test_workdir, 5)
    planned = run_snakemake("-n", SELECTED, workdir=test_workdir)
    assert _planned_jobs(planned.stdout) == {"neds_search_draw": 2, "neds_search_select": 1}


def test_chunks_of_two_draws_rerun_only_the_grown_and_new_chunks(test_workdir):
    _configure(test_workdir, 3, draws_per_job=2)
    jobs = _finish(test_workdir)
    assert jobs["neds_search_chunk"] == 2 * 2 and jobs["neds_search_select"] == 2 and not jobs["neds_search_draw"]
    _configure(test_workdir, 5, draws_per_job=2)  # chunk 1: [2] -> [2, 3]; chunk 2: [4] new; chunk 0 unchanged
    planned = run_snakemake("-n", SELECTED, workdir=test_workdir)
    assert _planned_jobs(planned.stdout) == {"neds_search_chunk": 2, "neds_search_select": 1}
    chunks = sorted(line.split("chunk=")[1].split(",")[0] for line in planned.stdout.splitlines()
                    if "wildcards:" in line and "chunk=" in line)
    assert chunks == ["1", "2"]
    _configure(test_workdir, 4, draws_per_job=2)  # chunk 1 back to [2, 3]: that is what it now holds
    assert _planned_jobs(run_snakemake("-n", SELECTED, workdir=test_workdir).stdout) == {
        "neds_search_chunk": 1, "neds_search_select": 1}


#: draws small enough to train in seconds on one core (the ranges' sizes, not the paper's)
TINY_MODEL = ModelParams(embed_dim=32, n_heads=2, n_layers=1, mlp_dim=64, dropout=0.1, attention_dropout=0.1)
TINY_TRAINING = TrainingParams(epochs=2, batch_size=8, learning_rate=0.003, weight_decay=0.01)
TINY_SEARCH = SearchParams(draws=3, embed_dim=(16, 32), mlp_dim=(32, 64), n_layers=(1,))
SEED = 7


def _draws(draws):
    masking = MaskingParams()
    return [(d, *draw_hyperparameters(TINY_SEARCH, TINY_MODEL, masking, TINY_TRAINING, SEED, d)) for d in draws]


def _untimed(record: dict) -> dict:
    """``record`` without its training's wall-clock figures (train_seconds, tokens_per_s)."""
    training = {k: v for k, v in record["training"].items() if k not in ("train_seconds", "tokens_per_s")}
    return {**record, "training": training}


def _records(validation: Path) -> list[dict]:
    loaded = json.loads(validation.read_text())
    return [_untimed(r) for r in (loaded if isinstance(loaded, list) else [loaded])]


def _select(binned, pairs, out: Path) -> dict:
    stages.run_search_selection(binned, pairs, model_path=out / "model.pt", metrics_path=out / "metrics.json")
    return _untimed(json.loads((out / "metrics.json").read_text()))


@pytest.mark.slow  # 7 tiny trainings + 2 evaluations: ~50 s CPU
def test_chunks_select_the_same_draw_model_and_metrics_as_single_draw_jobs(binned_sessions, tmp_path, monkeypatch):
    binned = binned_sessions["sesA"]
    singles = []
    for draw, model, masking, training in _draws(range(3)):
        out = tmp_path / "single" / f"draw{draw}"
        stages.run_search_draw(binned, "multimodal", draw, model, masking, training, SEED, device="cpu",
                               model_path=out / "model.pt", validation_path=out / "validation.json",
                               checkpoint_dir=tmp_path / "ckpt" / f"draw{draw}", progress=False)
        singles.append((out / "model.pt", out / "validation.json"))
    single = _select(binned, singles, tmp_path / "single")
    assert len({json.loads(v.read_text())["training"]["best_val_score"] for _, v in singles}) == 3

    chunks = []
    for chunk in range(n_chunks(3, 2)):
        out = tmp_path / "chunked" / f"chunk{chunk}"
        stages.run_search_chunk(binned, "multimodal", _draws(chunk_items(3, 2, chunk)), SEED, device="cpu",
                                model_path=out / "model.pt", validation_path=out / "validation.json",
                                checkpoint_dir=tmp_path / "ckpt" / f"chunk{chunk}", progress=False)
        chunks.append((out / "model.pt", out / "validation.json"))
        assert not (tmp_path / "ckpt" / f"chunk{chunk}").exists()  # removed once the chunk is written
    assert [r["draw"] for r in _records(chunks[0][1])] == [0, 1]
    assert _records(chunks[0][1]) + _records(chunks[1][1]) == [
        r for _, v in singles for r in _records(v)]  # same records, draw by draw
    chunked = _select(binned, chunks, tmp_path / "chunked")
    assert chunked == single  # same selected draw, hyperparameters, validation scores, test metrics
    single_state, chunked_state = (load_model(path)[0].state_dict() for path in
                                   (tmp_path / "single" / "model.pt", tmp_path / "chunked" / "model.pt"))
    assert single_state.keys() == chunked_state.keys()
    assert all(torch.equal(single_state[k], chunked_state[k]) for k in single_state)

    # a resumed chunk: draw 0 was finished by the interrupted attempt (same provenance), draw 1
    # left a record of other hyperparameters; only draw 1 is trained
    resumed = tmp_path / "ckpt" / "resumed"
    for draw, (model_path, validation_path) in zip((0, 1), singles[:2]):
        (resumed / f"draw{draw}").mkdir(parents=True)
        (resumed / f"draw{draw}" / "model.pt").write_bytes(model_path.read_bytes())
        record = json.loads(validation_path.read_text())
        if draw == 1:
            record["config_hash"] = "0" * 16
        (resumed / f"draw{draw}" / "validation.json").write_text(json.dumps(record))
    trained = []
    real_draw = stages.run_search_draw
    monkeypatch.setattr(stages, "run_search_draw", lambda binned, variant, draw, *a, **k: trained.append(draw)
                        or real_draw(binned, variant, draw, *a, **k))
    out = tmp_path / "resumed_out"
    stages.run_search_chunk(binned, "multimodal", _draws([0, 1]), SEED, device="cpu", model_path=out / "model.pt",
                            validation_path=out / "validation.json", checkpoint_dir=resumed, progress=False)
    assert trained == [1]
    assert _records(out / "validation.json") == _records(chunks[0][1])
