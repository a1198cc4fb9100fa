"""Language-model decoders (NLP4Neuro paper seed 000, Sec. 3.2 and App. A Eq. 8-14).

A window of neural vectors becomes a sequence of token embeddings through one of the five
input-embedding strategies (:mod:`pipeline.models.embeddings`; ``linear`` is the paper's
default), goes through a transformers backbone as ``inputs_embeds``, and a linear head maps
every output token to the six tail angles:

    windows (batch, L, neurons) -> embedding (batch, L, d_model) -> backbone
        -> last hidden state (batch, L, d_model) -> head -> (batch, L, 6)

Backbones (``family``):

- ``bert``: bidirectional encoder (BERT-base-uncased in the paper; the offline demo uses
  all-MiniLM-L6-v2, a 6-layer BERT);
- ``gpt2``: causal decoder;
- ``llama``: LLaMA-family causal decoder. DeepSeek-Coder-6.7B-base, the paper's
  "DeepSeek-c7b", has exactly this architecture (``LlamaForCausalLM``), i.e. it is a dense
  model, not a mixture of experts; the offline demo uses SmolLM2-135M (GGUF);
- ``moe``: a true mixture-of-experts decoder (Mixtral / DeepSeek-V2 classes of transformers,
  top-k routing over experts, Eq. 13-14) for the MoE arm the paper intended.

Weights: ``pretrained`` loads with ``from_pretrained`` (hub id or local directory; a
``package:<module>[/subdir]`` source points into an installed Python package that ships
weights, for offline use); ``untrained`` builds the same architecture from its config with
random weights (the paper's AutoConfig arm) and is trained with the same budget. Fair twins:
both arms train exactly the same parameter set (every backbone weight, or the same LoRA
adapters on the same kind of base, quantised alike), the embedding and head start from the
same values (seeded), and batch order follows (seed, epoch), so only the backbone's initial
weights differ. For a LoRA model this compares a pretrained base with a frozen *random* base,
so a third arm, ``scratch_full`` ("from scratch, all weights"), builds the same architecture
with random (seeded) weights, unquantised and without LoRA, and trains every backbone weight
(but the never-used vocabulary embedding, see below): on CUDA in bf16 with bitsandbytes'
8-bit AdamW (``bnb.optim.AdamW8bit``; pure bf16 weights, no fp32 master copy), elsewhere in
fp32 with torch's AdamW (:func:`scratch_full_precision`; the job's metrics record which).
Its memory for the 6.7B model (:func:`pipeline.memory.training_memory_bytes` on the
parameter list of DeepSeek-Coder-6.7B built on the meta device; bench/README.md): about
39 GB of weights, gradients and 8-bit Adam states, activations excluded; it fits one
141 GB GPU. Remote code is never trusted. For large models, ``quantization: 8bit | 4bit`` loads the backbone through
bitsandbytes (4-bit = NF4 with bf16 compute) and trains LoRA adapters (peft) on it; the
embedding and head are always fully trained.

Experiment 3 isolated (paper Sec. 4.3): when the input-embedding strategy supplies the
token order (``sinusoidal``, ``relative``) and for the two controls (``linear_no_position``,
``relative_control``; :data:`pipeline.models.embeddings.WITHOUT_BACKBONE_POSITION`), the
backbone adds no position of its own: every token gets position id 0, so BERT and GPT-2
add the same learned position vector to every token (a constant shift that carries no
order) and LLaMA / Mixtral rotary embeddings rotate every query and key by angle 0 (the
identity). ``linear``, ``laplacian`` and ``sparse_ae`` keep the backbone's positions
(``linear`` is the paper's default decoder). The backbone is then equivariant to permutations of its input tokens
(bidirectional BERT) and, on a constant sequence, gives the same output at every step
(causal models keep only what the causal mask implies).

Quantised mixtures of experts are refused. transformers 5 stores Mixtral-style experts as
fused 3-D parameters (``experts.gate_up_proj`` (experts, 2 ffn, d), ``experts.down_proj``),
and bitsandbytes quantises only ``nn.Linear`` layers: a tiny Mixtral loaded in 4-bit NF4
(transformers 5.23, bitsandbytes 0.50.2, CPU backend) keeps both as full-precision
Parameters, and peft's ``all-linear`` LoRA does not adapt them, so a "4-bit MoE" would hold
its experts in full precision (~90 GB in bf16 for Mixtral-8x7B) with frozen experts. Hence
``family: moe`` with ``quantization`` is a config error, and any quantised backbone that
still holds a floating-point parameter of 3 or more dimensions after loading is an error
naming its source, never a silent full-precision MoE.
"""

from __future__ import annotations

import importlib.util
import logging
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pipeline.data.windows import N_TAIL_SEGMENTS
from pipeline.models.config import EmbeddingParams, LanguageModelParams, STRATEGIES
from pipeline.models.embeddings import build_embedding
from pipeline.torch_compat import import_transformers

log = logging.getLogger(__name__)

#: Weight options of a backbone (the `weights` wildcard).
WEIGHTS = ("pretrained", "untrained", "scratch_full")


def resolve_source(source: str) -> str:
    """Turn ``package:<module>[/subdir]`` into the directory of the installed package (its
    weights ship inside it; the package itself is never imported); other sources (hub ids,
    local directories) are returned unchanged."""
    if not source.startswith("package:"):
        return source
    module, _, subdir = source[len("package:") :].partition("/")
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"model source {source!r}: Python package {module!r} is not installed")
    directory = Path(list(spec.submodule_search_locations)[0]) / subdir
    if not directory.is_dir():
        raise FileNotFoundError(f"model source {source!r}: {directory} does not exist")
    return str(directory)


def _base_config_class(family: str):
    transformers = import_transformers()
    return {
        "bert": transformers.BertConfig,
        "gpt2": transformers.GPT2Config,
        "llama": transformers.LlamaConfig,
        "moe": transformers.MixtralConfig,
    }[family]


def backbone_config(params: LanguageModelParams):
    """The backbone's transformers config: from ``source`` (+ overrides) or, without a
    source, the family's config class built from ``config_overrides`` alone."""
    transformers = import_transformers()
    if params.source:
        kwargs: dict[str, Any] = {"trust_remote_code": False}
        if params.gguf_file:
            kwargs["gguf_file"] = params.gguf_file
        config = transformers.AutoConfig.from_pretrained(resolve_source(params.source), **kwargs)
        for key, value in params.config_overrides.items():
            setattr(config, key, value)
    else:
        config = _base_config_class(params.family)(**params.config_overrides)
    if getattr(config, "quantization_config", None) is not None and params.gguf_file:
        del config.quantization_config  # the GGUF marker; the untrained twin is a plain fp32 model
    return config


def _quantization_config(params: LanguageModelParams):
    transformers = import_transformers()
    if params.quantization == "8bit":
        return transformers.BitsAndBytesConfig(load_in_8bit=True)
    return transformers.BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


def scratch_full_precision(device: torch.device) -> tuple[torch.dtype, str]:
    """(backbone dtype, optimiser) of the ``scratch_full`` arm on ``device``: bf16 weights and
    bitsandbytes 8-bit AdamW (``"adamw8bit"``) on a CUDA GPU with bf16 support and
    bitsandbytes installed; fp32 and torch AdamW (``"adamw"``) elsewhere (CPU bf16 training
    is slow, and the small CPU models need no memory savings)."""
    if (device.type == "cuda" and torch.cuda.is_bf16_supported()
            and importlib.util.find_spec("bitsandbytes") is not None):
        return torch.bfloat16, "adamw8bit"
    return torch.float32, "adamw"


def load_backbone(params: LanguageModelParams, weights: str, seed: int, device: torch.device) -> nn.Module:
    """The bare backbone (no LM head): pretrained weights from ``source`` or the same
    architecture with random weights (seeded), quantised and LoRA-wrapped as configured;
    ``scratch_full``: random weights in the dtype of :func:`scratch_full_precision`, never
    quantised nor LoRA-wrapped (every weight trains)."""
    if weights not in WEIGHTS:
        raise ValueError(f"weights must be one of {WEIGHTS}, got {weights!r}")
    transformers = import_transformers()
    config = backbone_config(params)
    if weights == "scratch_full":
        torch.manual_seed(seed)
        backbone = transformers.AutoModel.from_config(config, dtype=scratch_full_precision(device)[0])
        backbone.get_input_embeddings().requires_grad_(False)  # never used: tokens enter as inputs_embeds
        if params.gradient_checkpointing:
            backbone.gradient_checkpointing_enable()
        return backbone
    quantised = params.quantization != "none"
    load_kwargs: dict[str, Any] = {"config": config, "trust_remote_code": False}
    if quantised:
        load_kwargs["quantization_config"] = _quantization_config(params)
        load_kwargs["device_map"] = {"": device.index or 0} if device.type == "cuda" else {"": "cpu"}
    if weights == "pretrained":
        if not params.source:
            raise ValueError("pretrained weights need a model source (hub id or directory)")
        if params.gguf_file:
            load_kwargs["gguf_file"] = params.gguf_file
        backbone = transformers.AutoModel.from_pretrained(resolve_source(params.source), **load_kwargs)
    elif quantised:
        # The untrained twin of a quantised model: random weights (seeded) quantised exactly like
        # the pretrained ones, so both arms train the same LoRA adapters on the same kind of
        # base. bitsandbytes quantises on load, hence the round trip through a bf16 checkpoint
        # in a temporary directory ($TMPDIR; ~2 bytes per parameter).
        with tempfile.TemporaryDirectory(prefix="untrained-backbone-") as directory:
            torch.manual_seed(seed)
            transformers.AutoModel.from_config(config, dtype=torch.bfloat16).save_pretrained(directory)
            backbone = transformers.AutoModel.from_pretrained(directory, **load_kwargs)
    else:
        torch.manual_seed(seed)
        backbone = transformers.AutoModel.from_config(config)
    if quantised:
        unquantised = [name for name, p in backbone.named_parameters() if p.is_floating_point() and p.dim() >= 3]
        if unquantised:
            raise ValueError(f"model {params.source!r} loaded with {params.quantization} quantisation keeps "
                             f"{len(unquantised)} fused multi-dimensional weight(s) in full precision (e.g. "
                             f"{unquantised[0]}): bitsandbytes quantises nn.Linear only; refusing a silently "
                             "unquantised mixture of experts")
    # Neural tokens enter as inputs_embeds: the vocabulary embedding is never used, so it is
    # frozen (no gradients, no optimiser state: 131M values for a 7B LLaMA).
    backbone.get_input_embeddings().requires_grad_(False)
    if params.gradient_checkpointing:
        backbone.gradient_checkpointing_enable()
    if params.lora_rank > 0:
        import peft

        if quantised:
            backbone = peft.prepare_model_for_kbit_training(
                backbone, use_gradient_checkpointing=params.gradient_checkpointing
            )
        lora = peft.LoraConfig(
            r=params.lora_rank,
            lora_alpha=params.lora_alpha,
            lora_dropout=params.lora_dropout,
            target_modules="all-linear",
            bias="none",
        )
        backbone = peft.get_peft_model(backbone, lora)
    return backbone


def hidden_size(config) -> int:
    return int(getattr(config, "hidden_size", None) or config.n_embd)


class LanguageModelDecoder(nn.Module):
    """windows (batch, seq_len, neurons) -> tail angles (batch, seq_len, 6) through a
    transformers backbone fed with ``inputs_embeds``."""

    closed_form = False

    def __init__(
        self,
        n_neurons: int,
        params: LanguageModelParams,
        weights: str,
        embedding: str,
        embedding_params: EmbeddingParams,
        seed: int,
        device: torch.device | str = "cpu",
    ) -> None:
        super().__init__()
        if embedding not in STRATEGIES:
            raise ValueError(f"embedding must be one of {STRATEGIES}, got {embedding!r}")
        self.params = params
        self.backbone = load_backbone(params, weights, seed, torch.device(device))
        #: optimiser :func:`pipeline.train.loop.train_decoder` uses ("adamw" or "adamw8bit")
        self.optimizer_name = scratch_full_precision(torch.device(device))[1] if weights == "scratch_full" else "adamw"
        d_model = hidden_size(self.backbone.config)
        torch.manual_seed(seed)
        self.embedding = build_embedding(embedding, n_neurons, d_model, embedding_params)
        self.head = nn.Linear(d_model, N_TAIL_SEGMENTS)
        self.backbone_positions = not self.embedding.without_backbone_position  # module docstring, Exp. 3

    @property
    def precision(self) -> dict[str, str]:
        """What the job records about its numerics: backbone dtype and optimiser."""
        dtype = next(p.dtype for p in self.backbone.parameters() if p.is_floating_point())
        return {"backbone_dtype": str(dtype).removeprefix("torch."), "optimizer": self.optimizer_name}

    def backbone_hidden(self, tokens: torch.Tensor) -> torch.Tensor:
        """Backbone output (batch, L, d_model) for token embeddings (batch, L, d_model);
        without backbone positions every token has position id 0."""
        kwargs = {}
        if not self.backbone_positions:
            kwargs["position_ids"] = torch.zeros(tokens.shape[:2], dtype=torch.long, device=tokens.device)
        return self.backbone(inputs_embeds=tokens, **kwargs).last_hidden_state

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        hidden = self.backbone_hidden(self.embedding(windows))
        return self.head(hidden.to(self.head.weight.dtype))
