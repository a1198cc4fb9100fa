"""A job imports only the libraries its own work needs (issue 17: start-up is most of a small
demo job's CPU; `import torch` costs ~3 CPU-s, torch + transformers ~8 s on a 2-core VM).
Each probe runs in a fresh interpreter and lists the heavy modules loaded afterwards."""

from __future__ import annotations

from helpers import modules_loaded_by

HEAVY = ("torch", "transformers", "torchvision", "suite2p", "cellpose", "peft")


def loaded_heavy_modules(code: str) -> list[str]:
    """The HEAVY modules loaded after running ``code`` in a new interpreter."""
    return modules_loaded_by(code, HEAVY)


def test_the_salience_summary_does_not_import_torch():
    """The summary ranks stored maps (pipeline.salience.ranking, NumPy) and draws figures."""
    assert loaded_heavy_modules("import pipeline.salience.summary, pipeline.salience.figures") == []


def test_an_lstm_training_job_loads_torch_but_not_transformers():
    """Reservoir and LSTM jobs (most of Exp. 1) build their decoder without the transformer stack;
    torch being reported shows the probe sees what a job imports."""
    code = ("from pipeline.models.catalog import ModelSpec, build_decoder\nimport pipeline.train.job\n"
            "build_decoder(ModelSpec.from_mapping({'kind': 'lstm'}), n_neurons=4, weights='untrained', "
            "embedding='linear', embedding_params=None, seed=0)")
    assert loaded_heavy_modules(code) == ["torch"]
