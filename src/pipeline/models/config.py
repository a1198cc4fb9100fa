"""Parameter dataclasses of the decoders and their input embeddings (config
``nlp4neuro.models.<name>.architecture`` and ``nlp4neuro.embedding``).

Torch-free: the Snakefile builds them at parse time (pipeline.train.experiments), so reading it
imports neither torch nor transformers. The networks they configure live in
:mod:`pipeline.models.reservoir` (echo-state network, paper seed 000 Eq. 1-3),
:mod:`pipeline.models.lstm`, :mod:`pipeline.models.language` (BERT / GPT-2 / LLaMA / MoE
backbones) and :mod:`pipeline.models.embeddings`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pipeline.params import Params


@dataclass(frozen=True)
class ReservoirParams(Params):
    reservoir_size: int = 500  # reservoir units N_r
    spectral_radius: float = 0.9  # largest |eigenvalue| of A after rescaling (< 1: echo-state property)
    input_scaling: float = 1.0  # W_in entries are U(-1, 1) * input_scaling / sqrt(neurons)
    leak_rate: float = 0.3  # a in Eq. 2, in (0, 1]
    connectivity: float = 0.1  # fraction of non-zero entries of A
    ridge: tuple[float, ...] = (1e-2, 1e-1, 1.0, 1e1, 1e2, 1e3, 1e4)  # β grid (Eq. 3); chosen on validation
    washout: int = 1  # leading steps of each window: not fitted, predicted as the training mean (< seq_len)

    def __post_init__(self) -> None:
        if isinstance(self.ridge, (int, float)):  # a single β is a grid of one
            object.__setattr__(self, "ridge", (self.ridge,))
        self._coerce_field_types()
        if not self.ridge:
            raise ValueError("ReservoirParams.ridge must hold at least one β")
        if self.reservoir_size < 1:
            raise ValueError("ReservoirParams.reservoir_size must be >= 1")
        if not 0 < self.spectral_radius:
            raise ValueError("ReservoirParams.spectral_radius must be > 0")
        if not 0 < self.leak_rate <= 1:
            raise ValueError("ReservoirParams.leak_rate must be in (0, 1]")
        if not 0 < self.connectivity <= 1:
            raise ValueError("ReservoirParams.connectivity must be in (0, 1]")
        if min(self.ridge) < 0 or self.input_scaling <= 0 or self.washout < 0:
            raise ValueError("ReservoirParams: ridge >= 0, input_scaling > 0 and washout >= 0 are required")


@dataclass(frozen=True)
class LstmParams(Params):
    hidden_size: int = 128  # LSTM units (paper: PyTorch default single layer)
    dropout: float = 0.0  # dropout on the hidden states before the head

    def __post_init__(self) -> None:
        self._coerce_field_types()
        if self.hidden_size < 1:
            raise ValueError("LstmParams.hidden_size must be >= 1")
        if not 0 <= self.dropout < 1:
            raise ValueError("LstmParams.dropout must be in [0, 1)")


#: ``LanguageModelParams.family`` choices (pipeline.models.language builds each).
FAMILIES = ("bert", "gpt2", "llama", "moe")
#: ``LanguageModelParams.quantization`` choices (bitsandbytes).
QUANTIZATION = ("none", "8bit", "4bit")


@dataclass(frozen=True)
class LanguageModelParams(Params):
    family: str = "bert"  # backbone architecture: bert | gpt2 | llama | moe
    source: str = ""  # hub id, local directory, or package:<module>[/subdir]; "" = config_overrides only
    gguf_file: str = ""  # GGUF weight file inside `source` (dequantised on load), if the weights are GGUF
    config_overrides: dict = field(default_factory=dict)  # architecture fields (e.g. a tiny untrained MoE)
    quantization: str = "none"  # none | 8bit | 4bit (bitsandbytes; needs lora_rank > 0)
    lora_rank: int = 0  # 0 = train every backbone weight; > 0 = LoRA adapters of this rank (peft)
    lora_alpha: float = 16.0  # LoRA scaling numerator
    lora_dropout: float = 0.05
    gradient_checkpointing: bool = False  # trade compute for activation memory (large models)

    def __post_init__(self) -> None:
        self._coerce_field_types()
        if self.family not in FAMILIES:
            raise ValueError(f"LanguageModelParams.family must be one of {FAMILIES}, got {self.family!r}")
        if self.quantization not in QUANTIZATION:
            raise ValueError(f"LanguageModelParams.quantization must be one of {QUANTIZATION}")
        if self.quantization != "none" and self.lora_rank < 1:
            raise ValueError("quantised backbones cannot be fully fine-tuned: set lora_rank > 0")
        if self.quantization != "none" and self.family == "moe":
            raise ValueError(f"quantised mixture of experts refused ({self.source or 'moe from config_overrides'}, "
                             f"{self.quantization}): transformers 5 fuses the experts into 3-D parameters that "
                             "bitsandbytes does not quantise and LoRA does not adapt, so they would stay in full "
                             "precision and frozen (pipeline.models.language); use quantization: none")
        if self.lora_rank < 0:
            raise ValueError("LanguageModelParams.lora_rank must be >= 0")
        if not self.source and not self.config_overrides:
            raise ValueError("LanguageModelParams needs a source or config_overrides (a from-scratch architecture)")
        object.__setattr__(self, "config_overrides", dict(self.config_overrides))


#: Input-embedding strategies (paper seed 000, Exp. 3; pipeline.models.embeddings builds each).
STRATEGIES = ("linear", "sinusoidal", "relative", "laplacian", "sparse_ae",  # the paper's five
              "linear_no_position", "relative_control")  # Exp. 3 controls


@dataclass(frozen=True)
class EmbeddingParams(Params):
    """Parameters of the input embeddings (config section ``nlp4neuro.embedding``)."""

    n_components: int = 64  # laplacian / sparse_ae: reduced dimension before the projection
    n_neighbors: int = 10  # laplacian: k of the symmetric kNN graph over training frames
    max_reference_frames: int = 3000  # laplacian: graph nodes; more training frames are subsampled (seeded)
    sparse_ae_l1: float = 1e-3  # sparse_ae: weight of the L1 penalty on codes (mean |code|)
    sparse_ae_epochs: int = 50  # sparse_ae: Adam epochs over the training frames
    sparse_ae_lr: float = 1e-3  # sparse_ae: Adam learning rate
    sparse_ae_batch_size: int = 256  # sparse_ae: frames per Adam step (all frames if fewer)
    max_relative_distance: int = 16  # relative: Shaw et al. clipping distance k (frames)
    n_heads: int = 4  # relative: heads of the relative-position attention layer

    def __post_init__(self) -> None:
        self._coerce_field_types()
        for name in ("n_components", "n_neighbors", "sparse_ae_epochs", "sparse_ae_batch_size",
                     "max_relative_distance", "n_heads"):
            if getattr(self, name) < 1:
                raise ValueError(f"EmbeddingParams.{name} must be >= 1, got {getattr(self, name)}")
        if self.max_reference_frames < self.n_neighbors + 2:
            raise ValueError(f"EmbeddingParams.max_reference_frames ({self.max_reference_frames}) must be "
                             f">= n_neighbors + 2 ({self.n_neighbors + 2})")
        if self.sparse_ae_l1 < 0:
            raise ValueError(f"EmbeddingParams.sparse_ae_l1 must be >= 0, got {self.sparse_ae_l1}")
        if self.sparse_ae_lr <= 0:
            raise ValueError(f"EmbeddingParams.sparse_ae_lr must be > 0, got {self.sparse_ae_lr}")
