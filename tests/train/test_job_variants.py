"""Training jobs under the variants of issue 15: one fold of blocked cross-validation, and
the 'from scratch, all weights' arm on CPU."""

from __future__ import annotations

import json

import h5py
import numpy as np
import torch

from pipeline.data.windows import blocked_fold_split
from pipeline.models.catalog import ModelSpec
from pipeline.train.job import DecodingJob, run_decoding_job
from pipeline.train.config import TrainingParams

TINY_LLAMA = {"family": "llama", "lora_rank": 2,
              "config_overrides": {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 1,
                                   "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 4,
                                   "max_position_embeddings": 32}}


def run(decoding_fish, tmp_path, spec, weights="untrained", **job_fields):
    neural, behavior, _ = decoding_fish
    job = DecodingJob(experiment="test", fish="synthetic", model="m", weights=weights, embedding="linear", seq_len=5,
                      run=0, seed=3, split_fractions=(0.7, 0.1, 0.2), **job_fields)
    out = tmp_path / "job"
    summary = run_decoding_job(neural, behavior, job, spec, TrainingParams(epochs=1, batch_size=32), {},
                               checkpoint_dir=out / "ckpt", model_path=out / "model.pt",
                               predictions_path=out / "predictions.h5", metrics_path=out / "metrics.json", device="cpu")
    return summary, out


def test_a_cross_validation_fold_trains_and_tests_on_its_blocks(decoding_fish, tmp_path):
    torch.set_num_threads(1)
    summary, out = run(decoding_fish, tmp_path, ModelSpec(kind="lstm", architecture={"hidden_size": 8}),
                       cv_folds=3, fold=1)
    frame_ranges = json.loads((out / "metrics.json").read_text())["frame_ranges"]
    layout = blocked_fold_split(800, 3, 1, 0.1, 5)
    assert frame_ranges == {name: [[r.start, r.stop] for r in segments] for name, segments in layout.items()}
    assert summary["job"]["cv_folds"] == 3 and summary["job"]["fold"] == 1
    (test,) = layout["test"]
    with h5py.File(out / "predictions.h5", "r") as f:
        np.testing.assert_array_equal(f["test/frame_index"][()], np.arange(test.start, test.stop))
        assert np.isfinite(f["test/frame_predictions"][()]).all()
    assert summary["n_windows"]["train"] == sum(len(r) - 4 for r in layout["train"])


def test_scratch_full_arm_runs_on_cpu_in_fp32_training_every_weight(decoding_fish, tmp_path):
    torch.set_num_threads(1)
    summary, _ = run(decoding_fish, tmp_path, ModelSpec(kind="transformer", architecture=TINY_LLAMA),
                     weights="scratch_full")
    assert summary["precision"] == {"backbone_dtype": "float32", "optimizer": "adamw"}
    performance = summary["performance"]
    vocabulary = 4 * 32  # the frozen, never-used vocabulary embedding
    assert performance["n_parameters_trainable"] == performance["n_parameters_total"] - vocabulary
    assert np.isfinite(summary["test"]["rmse"])
