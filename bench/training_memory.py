"""Memory of training DeepSeek-Coder-6.7B-base (the paper's "DeepSeek-c7b") in each weights
arm, from its exact parameter list (built on the meta device: nothing is allocated) through
:func:`pipeline.memory.training_memory_bytes`. Activations are excluded (they depend on the
batch, window length and gradient checkpointing). Peer: full fine-tuning in fp32 with torch
AdamW, the configuration without any memory saving.

The architecture is the model's published config.json (LlamaForCausalLM; no hub access
here, so its sizes are written out below). The decoder uses the bare backbone
(``AutoModel``: no LM head); the vocabulary embedding is frozen in every arm (neural tokens
enter as ``inputs_embeds``).

Run: ``PYTHONPATH=src .venv/bin/python bench/training_memory.py``
"""

from __future__ import annotations

import torch

from pipeline.memory import training_memory_bytes
from pipeline.torch_compat import import_transformers

#: deepseek-ai/deepseek-coder-6.7b-base config.json (architecture fields)
DEEPSEEK_CODER_6_7B = dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32,
                           num_key_value_heads=32, vocab_size=32256, max_position_embeddings=16384)
GPU_BYTES = 141e9  # one H200 (141 GB)


def parameters(dtype: torch.dtype, lora_rank: int = 0) -> list[tuple[int, int, bool]]:
    """(numel, bytes per value, trainable) of the backbone on the meta device in ``dtype``;
    ``lora_rank`` > 0: the 8-bit LoRA arms instead: every linear weight frozen as int8
    (1 byte; bitsandbytes LLM.int8, its per-row scales left out), other tensors frozen in
    ``dtype``, adapters of that rank on every linear layer trainable in fp32 (peft)."""
    transformers = import_transformers()
    with torch.device("meta"):
        backbone = transformers.AutoModel.from_config(transformers.LlamaConfig(**DEEPSEEK_CODER_6_7B), dtype=dtype)
    vocabulary = backbone.get_input_embeddings().weight
    if not lora_rank:
        return [(p.numel(), p.element_size(), p is not vocabulary) for p in backbone.parameters()]
    linears = [m for m in backbone.modules() if isinstance(m, torch.nn.Linear)]
    linear_weights = {id(m.weight) for m in linears}
    rows = [(p.numel(), 1 if id(p) in linear_weights else p.element_size(), False) for p in backbone.parameters()]
    return rows + [(lora_rank * (m.in_features + m.out_features), 4, True) for m in linears]


def main() -> None:
    arms = {
        "peer: all weights, fp32 + torch AdamW": (parameters(torch.float32), "adamw"),
        "scratch_full on CUDA: all weights, bf16 + bnb AdamW8bit": (parameters(torch.bfloat16), "adamw8bit"),
        "scratch_full + fp32 master copy (not built; for reference)": (parameters(torch.bfloat16), "adamw8bit"),
        "pretrained/untrained: 8-bit base + LoRA r=16 (fp32 adapters, AdamW)": (parameters(torch.bfloat16, 16), "adamw"),
    }
    peer = None
    print(f"{'arm':70s} {'params':>8s} {'trainable':>9s} {'weights':>8s} {'grads':>7s} {'Adam':>7s} {'total':>8s}"
          f"  fits 141 GB  peer/arm")
    for name, (rows, optimizer) in arms.items():
        memory = training_memory_bytes(rows, optimizer)
        total = memory.total + (4 * memory.n_trainable if "master" in name else 0)
        peer = peer or total
        print(f"{name:70s} {memory.n_parameters / 1e9:7.2f}B {memory.n_trainable / 1e9:8.2f}B "
              f"{memory.weights / 1e9:7.1f}G {memory.gradients / 1e9:6.1f}G {memory.optimizer_states / 1e9:6.1f}G "
              f"{total / 1e9:7.1f}G  {'yes' if total < GPU_BYTES else 'no':>11s}  {peer / total:7.2f}x")
    print("activations excluded; GB = 1e9 bytes")


if __name__ == "__main__":
    main()
