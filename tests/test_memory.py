"""The training-memory estimator against the bytes torch and bitsandbytes really allocate
for a small model on CPU (weights, gradients, AdamW states)."""

from __future__ import annotations

import pytest
import torch

from pipeline.memory import BNB_MIN_8BIT_SIZE, adam_state_bytes, training_memory_bytes


def _model() -> torch.nn.Module:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(96, 128), torch.nn.ReLU(), torch.nn.Linear(128, 6),
                                torch.nn.Embedding(50, 96))
    model[3].requires_grad_(False)  # a frozen tensor: weights only
    return model


def _state_bytes(optimizer: torch.optim.Optimizer) -> int:
    """Bytes of the per-parameter state tensors (bitsandbytes' shared 256-entry maps excluded)."""
    return sum(t.numel() * t.element_size() for state in optimizer.state.values()
               for name, t in state.items() if torch.is_tensor(t) and t.dim() > 0 and not name.startswith("qmap"))


@pytest.mark.parametrize("optimizer_name", ["adamw", "adamw8bit"])
def test_estimate_matches_the_allocated_bytes_of_a_small_model(optimizer_name):
    model = _model()
    sizes = [(p.numel(), p.element_size(), p.requires_grad) for p in model.parameters()]
    estimate = training_memory_bytes(sizes, optimizer_name)
    trainable = [p for p in model.parameters() if p.requires_grad]
    if optimizer_name == "adamw":
        optimizer = torch.optim.AdamW(trainable, lr=1e-3)
    else:
        bnb = pytest.importorskip("bitsandbytes")
        optimizer = bnb.optim.AdamW8bit(trainable, lr=1e-3)
    model[2](model[0](torch.randn(4, 96))).sum().backward()
    optimizer.step()
    assert estimate.weights == sum(p.numel() * p.element_size() for p in model.parameters())
    assert estimate.gradients == sum(p.grad.numel() * p.grad.element_size() for p in trainable)
    assert estimate.optimizer_states == _state_bytes(optimizer)
    assert estimate.n_trainable == sum(p.numel() for p in trainable) < estimate.n_parameters
    assert estimate.total == estimate.weights + estimate.gradients + estimate.optimizer_states
    assert estimate.to_dict()["activations"] == "excluded"


def test_8bit_states_are_a_quarter_of_fp32_for_large_tensors():
    n = 1 << 20
    assert adam_state_bytes(n, 4, "adamw") == 8 * n
    assert adam_state_bytes(n, 2, "adamw8bit") == 2 * n + 2 * 4 * (n // 256)  # + fp32 absmax per 256 values
    assert adam_state_bytes(BNB_MIN_8BIT_SIZE - 1, 2, "adamw8bit") == 8 * (BNB_MIN_8BIT_SIZE - 1)  # small: fp32
    with pytest.raises(ValueError, match="optimizer"):
        adam_state_bytes(10, 4, "sgd")
