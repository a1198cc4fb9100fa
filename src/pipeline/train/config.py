"""Training-loop hyperparameters (config ``nlp4neuro.experiments.<name>.training`` and the
catalog's per-model ``training`` overrides), read by :mod:`pipeline.train.loop`.

Torch-free: the Snakefile builds them at parse time to make each training job's params.
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.params import Params


@dataclass(frozen=True)
class TrainingParams(Params):
    epochs: int = 10  # passes over the training windows (paper: 5-10)
    batch_size: int = 16  # windows per step (paper: 16 in Exp. 1/4, 32 in Exp. 2-3)
    learning_rate: float = 1e-4  # Adam / AdamW step size
    weight_decay: float = 0.01  # AdamW decoupled weight decay (language models only)
    max_grad_norm: float = 1.0  # gradient-norm clipping; 0 disables it
    eval_batch_size: int = 64  # windows per evaluation batch

    def __post_init__(self) -> None:
        self._coerce_field_types()
        if self.epochs < 1 or self.batch_size < 1 or self.eval_batch_size < 1:
            raise ValueError("TrainingParams: epochs, batch_size and eval_batch_size must be >= 1")
        if self.learning_rate <= 0 or self.weight_decay < 0 or self.max_grad_norm < 0:
            raise ValueError("TrainingParams: learning_rate > 0, weight_decay >= 0, max_grad_norm >= 0")
