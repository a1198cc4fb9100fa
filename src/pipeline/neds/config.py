"""Parameters of the NEDS stages (config key ``neds``; paper seed 002, Sec. 3 and App. C).

The section has one sub-section per concern, each a frozen :class:`~pipeline.params.Params`
dataclass: ``model`` (architecture of the single-session models) and ``multi_session_model``
(of the pretrained model, inherited by fine-tuning: App. C Table 4 is larger and deeper than
the single-session models of Table 3 / App. D), ``masking`` (multi-task masking), ``training``,
``pretraining`` and ``finetuning`` (optimisation of the single-session, multi-session and
fine-tuning jobs), ``baselines`` (ridge / reduced-rank regression), ``ndt2`` and
``ndt2_multi_session`` (the NDT2 baseline), ``poyo`` and ``poyo_multi_session`` (the POYO+
baseline) and ``region`` (brain
region classification from neuron embeddings). Top-level keys choose which models exist:
``variants`` (single-session model variants), ``masking_ablation`` (schemes removed one at a
time), ``heldout_sessions`` (fine-tuned after pretraining on every other session) and
``transformer_baselines`` (which of the NDT2 / POYO+ models are trained).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Mapping

from pipeline.params import Params

#: Masking schemes of Sec. 3.2, in the paper's order.
MASKING_SCHEMES: tuple[str, ...] = ("neural", "behavior", "within_modality", "cross_modal")

#: Single-session variants: the multimodal model trains with every configured scheme; the
#: unimodal ones use the same architecture with one scheme (Sec. 5.1: encoding-only = neural
#: masking, decoding-only = behaviour masking).
VARIANT_SCHEMES: dict[str, tuple[str, ...] | None] = {
    "multimodal": None,  # None: masking.schemes
    "encoding": ("neural",),
    "decoding": ("behavior",),
}


@dataclass(frozen=True)
class ModelParams(Params):
    """Transformer size (paper App. C: single-session Table 3, embedding 128-512, depth 5-6,
    about 3M parameters (App. D); multi-session Table 4, embedding 256, depth 22, 8 heads, 12M)."""

    embed_dim: int = 64  # D: width of every token (paper 256)
    n_heads: int = 4  # attention heads; embed_dim / n_heads must be even (rotary embeddings)
    n_layers: int = 2  # pre-norm transformer blocks (paper 5-6 single-session, 22 multi-session)
    mlp_dim: int = 128  # hidden width of each block's feed-forward layer (paper "head dimension" 512)
    dropout: float = 0.1  # dropout on token embeddings, attention output and feed-forward (paper 0.2)
    attention_dropout: float = 0.1  # dropout on attention weights (paper 0.4)

    def __post_init__(self) -> None:
        self._coerce_field_types()
        if min(self.embed_dim, self.n_heads, self.n_layers, self.mlp_dim) < 1:
            raise ValueError("ModelParams: embed_dim, n_heads, n_layers and mlp_dim must be >= 1")
        if self.embed_dim % self.n_heads or (self.embed_dim // self.n_heads) % 2:
            raise ValueError("ModelParams: embed_dim / n_heads must be an even integer (rotary embeddings)")
        if not (0 <= self.dropout < 1 and 0 <= self.attention_dropout < 1):
            raise ValueError("ModelParams: dropout rates must be in [0, 1)")


@dataclass(frozen=True)
class MaskingParams(Params):
    """Multi-task masking (Sec. 3.2): one scheme drawn per sample from ``schemes``."""

    schemes: tuple[str, ...] = MASKING_SCHEMES  # schemes of the multimodal model
    mask_ratio: float = 0.3  # fraction of tokens masked by the two random schemes (paper 0.1-0.4)
    single_behavior_probability: float = 0.5  # neural masking: chance that only one behaviour is visible

    def __post_init__(self) -> None:
        self._coerce_field_types()
        object.__setattr__(self, "schemes", tuple(str(s) for s in self.schemes))
        unknown = sorted(set(self.schemes) - set(MASKING_SCHEMES))
        if unknown or not self.schemes or len(set(self.schemes)) != len(self.schemes):
            raise ValueError(f"MaskingParams.schemes must be distinct names from {list(MASKING_SCHEMES)}, "
                             f"got {list(self.schemes)}")
        if not 0 < self.mask_ratio < 1:
            raise ValueError("MaskingParams.mask_ratio must be in (0, 1)")
        if not 0 <= self.single_behavior_probability <= 1:
            raise ValueError("MaskingParams.single_behavior_probability must be in [0, 1]")


@dataclass(frozen=True)
class TrainingParams(Params):
    """AdamW with linear warm-up and cosine decay; best epoch chosen on validation scores
    (:func:`pipeline.neds.evaluate.selection_score`) averaged over the last ``selection_window``
    epochs (:func:`pipeline.neds.train.windowed_score`). ``adapter_only_epochs`` > 0 (fine-tuning):
    the first epochs update only the session adapters (stitchers, session embedding, neural
    and behaviour decoders) while the pretrained shared transformer stays frozen, so that the
    randomly initialised adapter of a new session does not send large gradients through
    the pretrained weights (the unit-identification step of POYO, Azabou et al. 2023, before
    full fine-tuning)."""

    epochs: int = 60  # passes over the training trials (paper 2000)
    batch_size: int = 16  # trials per batch (paper 1024)
    learning_rate: float = 0.002  # peak learning rate (paper 1e-4 - 3e-3)
    weight_decay: float = 0.01  # AdamW weight decay (paper 0.001 - 0.1)
    warmup_fraction: float = 0.1  # fraction of the steps with a linear warm-up
    grad_clip_norm: float = 1.0  # gradient norm clip (0: none)
    adapter_only_epochs: int = 0  # first epochs in which only the session adapters train, shared weights frozen (fine-tuning)
    selection_window: int = 5  # epochs whose validation scores are averaged for the best-epoch rule (1: the epoch's own score)
    spike_gradient_ratio: float = 1.0  # norm of the spike loss's gradient on the shared transformer's last linear layer / mean norm of the behaviours' (pipeline.neds.model.balanced_objective); dimensionless, 1: the spikes push the shared model as much as an average behaviour

    def __post_init__(self) -> None:
        self._coerce_field_types()
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError("TrainingParams: epochs and batch_size must be >= 1")
        if self.selection_window < 1:
            raise ValueError("TrainingParams.selection_window must be >= 1")
        if self.spike_gradient_ratio <= 0:
            raise ValueError("TrainingParams.spike_gradient_ratio must be > 0")
        if not 0 <= self.adapter_only_epochs < self.epochs:
            raise ValueError("TrainingParams.adapter_only_epochs must be in [0, epochs)")
        if self.learning_rate <= 0 or self.weight_decay < 0 or self.grad_clip_norm < 0:
            raise ValueError("TrainingParams: learning_rate must be > 0, weight_decay and grad_clip_norm >= 0")
        if not 0 <= self.warmup_fraction < 1:
            raise ValueError("TrainingParams.warmup_fraction must be in [0, 1)")


@dataclass(frozen=True)
class BaselineParams(Params):
    """Linear (ridge, per session) and multi-session reduced-rank regression baselines (App. C;
    :mod:`pipeline.neds.rrr`)."""

    ridge_alphas: tuple[float, ...] = (1e-4, 1e-3, 1e-2, 0.1, 1.0, 100.0, 1000.0, 10000.0)  # paper's GridSearchCV grid
    cv_folds: int = 5  # folds of the regularisation search (training trials)
    encoder_rank: int = 4  # RRR encoder rank R (paper multi-session 4; single-session 2-50)
    decoder_rank: int = 4  # RRR decoder rank R
    rrr_l2: float = 0.001  # RRR L2 penalty on the mean squared neuron weights and basis (dimensionless)
    rrr_iterations: int = 300  # L-BFGS iterations of each RRR fit
    rate_floor: float = 0.001  # spikes/bin; linear / RRR encoders' predicted rates are clipped to this for bps

    def __post_init__(self) -> None:
        self._coerce_field_types()
        if not self.ridge_alphas or min(self.ridge_alphas) <= 0:
            raise ValueError("BaselineParams.ridge_alphas must be a non-empty list of positive numbers")
        if self.cv_folds < 2 or self.encoder_rank < 1 or self.decoder_rank < 1 or self.rrr_iterations < 1:
            raise ValueError("BaselineParams: cv_folds must be >= 2, ranks and rrr_iterations >= 1")
        if self.rrr_l2 < 0:
            raise ValueError("BaselineParams.rrr_l2 must be >= 0")
        if self.rate_floor <= 0:
            raise ValueError("BaselineParams.rate_floor must be > 0")


@dataclass(frozen=True)
class RegionParams(Params):
    """Brain-region classification from neuron embeddings (Sec. 5.3)."""

    regions: tuple[str, ...] = ("PO", "LP", "DG", "CA1", "VISa")  # classes: exact acronyms at ibl_binning.region_level (Beryl by default)
    cv_folds: int = 5  # stratified folds across neurons (paper 5)
    classifier: str = "svc"  # "svc": the paper's linear SVC (C from svc_c); "lda": shrinkage LDA (Ledoit-Wolf, equal priors)
    svc_c: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0)  # LinearSVC C candidates, chosen by inner CV per fold (classifier svc)
    inner_cv_folds: int = 3  # stratified folds of the inner C search (within each outer training fold)
    cv_repeats: int = 10  # stratified k-fold repeated with this many fold shufflings (scores: mean over repeats)

    def __post_init__(self) -> None:
        self._coerce_field_types()
        object.__setattr__(self, "regions", tuple(str(r) for r in self.regions))
        if len(self.regions) < 2 or self.cv_folds < 2 or self.inner_cv_folds < 2 or not self.svc_c \
                or min(self.svc_c) <= 0 or self.cv_repeats < 1 or self.classifier not in ("lda", "svc"):
            raise ValueError("RegionParams: need >= 2 regions, cv_folds and inner_cv_folds >= 2, svc_c values > 0, "
                             f"cv_repeats >= 1, classifier 'lda' or 'svc' (got {self.classifier!r})")


@dataclass(frozen=True)
class SearchParams(Params):
    """Random hyperparameter search of the single-session models (App. C Table 3: 50 draws
    per session; :mod:`pipeline.neds.search`). ``draws`` = 0: no search, the configured
    ``model`` / ``masking`` / ``training`` values are trained once."""

    draws: int = 0  # random draws per (session, variant)
    draws_per_job: int = 1  # K: job c trains draws [c K, (c + 1) K); 1 = each draw is one job
    learning_rate: tuple[float, ...] = (0.0001, 0.001)  # [low, high], log-uniform (1/epoch-step units of AdamW)
    weight_decay: tuple[float, ...] = (0.001, 0.1)  # [low, high], log-uniform
    mask_ratio: tuple[float, ...] = (0.1, 0.4)  # [low, high], uniform (fraction of tokens)
    embed_dim: tuple[float, ...] = (128, 256, 512)  # choices (token width D)
    mlp_dim: tuple[float, ...] = (256, 512, 1024)  # choices (the paper's "head dimension")
    n_layers: tuple[float, ...] = (5, 6)  # choices (depth)

    def __post_init__(self) -> None:
        self._coerce_field_types()
        if self.draws < 0:
            raise ValueError("SearchParams.draws must be >= 0")
        if self.draws_per_job < 1:
            raise ValueError("SearchParams.draws_per_job must be >= 1")
        for name in ("learning_rate", "weight_decay", "mask_ratio"):
            low_high = getattr(self, name)
            if len(low_high) != 2 or not 0 < low_high[0] <= low_high[1]:
                raise ValueError(f"SearchParams.{name} must be [low, high] with 0 < low <= high, got {list(low_high)}")
        if self.mask_ratio[1] >= 1:
            raise ValueError("SearchParams.mask_ratio must stay below 1")
        for name in ("embed_dim", "mlp_dim", "n_layers"):
            choices = getattr(self, name)
            if not choices or any(c < 1 or not float(c).is_integer() for c in choices):
                raise ValueError(f"SearchParams.{name} must be a list of positive integers, got {list(choices)}")
            object.__setattr__(self, name, tuple(int(c) for c in choices))


@dataclass(frozen=True)
class Ndt2Params(Params):
    """NDT2 baseline (:mod:`pipeline.neds.ndt2`; paper seed 002 App. C: search ranges Table 5,
    74-session model Table 6: embedding 512, patch 64, encoder depth 6, decoder depth 2, head
    dimension 1024, 4 heads, dropout 0.1, mask ratio 0.11, weight decay 0.001, learning rate
    0.0005, batch 1024; epoch counts of the single-session phases are not given)."""

    patch_size: int = 16  # neurons per space-time patch (paper 32-64)
    embed_dim: int = 64  # token width D (paper 128-512)
    n_heads: int = 4  # attention heads of encoder and decoder (paper 4)
    n_layers: int = 2  # encoder depth (paper 3 in the search, 6 multi-session)
    decoder_layers: int = 1  # supervised decoder depth (paper 2)
    mlp_dim: int = 128  # feed-forward width (paper "head dimension" 1024)
    dropout: float = 0.1  # dropout of tokens, attention and feed-forward (paper 0.1)
    mask_ratio: float = 0.25  # fraction of patches masked in pretraining (paper 0.1-0.5)
    pretrain_epochs: int = 40  # self-supervised epochs over the training trials (paper 600 multi-session)
    decode_epochs: int = 40  # epochs of the supervised decoder on the frozen encoder
    batch_size: int = 16  # trials per batch (paper 1024)
    learning_rate: float = 0.001  # peak AdamW learning rate of both phases (paper 1e-4 - 1e-2)
    weight_decay: float = 0.01  # AdamW weight decay (paper 0.001 - 0.1)
    warmup_fraction: float = 0.1  # fraction of each phase's steps with a linear warm-up

    def __post_init__(self) -> None:
        self._coerce_field_types()
        if min(self.patch_size, self.embed_dim, self.n_heads, self.n_layers, self.decoder_layers, self.mlp_dim,
               self.pretrain_epochs, self.decode_epochs, self.batch_size) < 1:
            raise ValueError("Ndt2Params: sizes, epochs and batch_size must be >= 1")
        if self.embed_dim % self.n_heads:
            raise ValueError("Ndt2Params: embed_dim must be a multiple of n_heads")
        if not 0 < self.mask_ratio < 1 or not 0 <= self.dropout < 1 or not 0 <= self.warmup_fraction < 1:
            raise ValueError("Ndt2Params: mask_ratio must be in (0, 1), dropout and warmup_fraction in [0, 1)")
        if self.learning_rate <= 0 or self.weight_decay < 0:
            raise ValueError("Ndt2Params: learning_rate must be > 0 and weight_decay >= 0")


@dataclass(frozen=True)
class Ndt2MultiSessionParams(Ndt2Params):
    """Multi-session NDT2 (:func:`pipeline.neds.ndt2.pretrain_ndt2` / ``finetune_ndt2``):
    the pretrained model's size and optimisation (``pretrain_epochs``: self-supervised
    epochs over the pretraining sessions), then per held-out session ``finetune_epochs`` of
    self-supervised fine-tuning and ``decode_epochs`` of the decoder (App. C "NDT2")."""

    #: Fields only the fine-tuning jobs use (not params of the pretraining job).
    FINETUNING_FIELDS: ClassVar[tuple[str, ...]] = ("finetune_epochs", "decode_epochs")

    finetune_epochs: int = 20  # self-supervised epochs on a held-out session's training trials

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.finetune_epochs < 1:
            raise ValueError("Ndt2MultiSessionParams: finetune_epochs must be >= 1")


@dataclass(frozen=True)
class PoyoParams(Params):
    """POYO+ baseline (:mod:`pipeline.neds.poyo`; Azabou et al. 2025 as trained for NEDS, paper
    seed 002 App. C Table 7 (74 sessions, 3.2M parameters): embedding 128, head dimension 64,
    32 latents, depth 4, 8 heads, FFN / linear / attention dropout 0.3, weight decay 1e-3,
    learning rate 1e-3, batch 128; App. F: 100 epochs, regression weighted x20, learning
    rate constant then cosine-decayed over the last 25 % of the epochs, unit dropout)."""

    embed_dim: int = 32  # token width D (paper 128)
    head_dim: int = 16  # width of each attention head (paper 64); a multiple of 4 (half of it is rotated)
    n_heads: int = 2  # heads of the self-attention blocks (paper 8); the cross-attentions have 1 (torch_brain's default)
    n_layers: int = 1  # self-attention blocks over the latents (paper depth 4)
    latent_step_s: float = 0.25  # seconds between latent time steps (trial of 2 s -> 8 steps)
    latents_per_step: int = 2  # learned latent tokens repeated at every step (paper 32 latents in all)
    ffn_dropout: float = 0.1  # feed-forward dropout (paper 0.3)
    linear_dropout: float = 0.1  # dropout on the self-attention blocks' residual branches (paper 0.3)
    attention_dropout: float = 0.1  # dropout on attention weights (paper 0.3)
    unit_dropout: float = 0.1  # probability that a unit's tokens are hidden in a training trial (augmentation)
    max_spikes: int = 4096  # spike tokens per trial at most (a random subset beyond; memory bound)
    regression_weight: float = 1.0  # weight of the z-scored wheel / whisker MSE against the cross-entropies (paper 20 on [-1, 1]-scaled targets)
    epochs: int = 30  # passes over the training trials (paper 100)
    batch_size: int = 16  # trials per batch (paper 128)
    learning_rate: float = 0.002  # AdamW learning rate before the decay (paper 1e-3, LAMB)
    weight_decay: float = 0.001  # AdamW weight decay (paper 1e-3)
    decay_fraction: float = 0.25  # final fraction of the steps with cosine decay of the learning rate (paper 0.25)

    def __post_init__(self) -> None:
        self._coerce_field_types()
        if min(self.embed_dim, self.head_dim, self.n_heads, self.n_layers, self.latents_per_step, self.max_spikes,
               self.epochs, self.batch_size) < 1:
            raise ValueError("PoyoParams: sizes, epochs and batch_size must be >= 1")
        if self.head_dim % 4:
            raise ValueError("PoyoParams: head_dim must be a multiple of 4 (rotary embedding of half of it)")
        if self.latent_step_s <= 0 or self.regression_weight <= 0:
            raise ValueError("PoyoParams: latent_step_s and regression_weight must be > 0")
        if not all(0 <= p < 1 for p in (self.ffn_dropout, self.linear_dropout, self.attention_dropout,
                                          self.unit_dropout)) or not 0 < self.decay_fraction <= 1:
            raise ValueError("PoyoParams: dropout rates in [0, 1), decay_fraction in (0, 1]")
        if self.learning_rate <= 0 or self.weight_decay < 0:
            raise ValueError("PoyoParams: learning_rate must be > 0 and weight_decay >= 0")


@dataclass(frozen=True)
class PoyoMultiSessionParams(PoyoParams):
    """Multi-session POYO+ (:func:`pipeline.neds.poyo.pretrain_poyo` / ``finetune_poyo``):
    ``epochs`` of supervised pretraining on the pretraining sessions, then per held-out
    session ``identify_epochs`` of unit identification (only its new unit and session
    embeddings train; POYO, Azabou et al. 2023, Sec. 3.4) and ``finetune_epochs`` of every weight."""

    #: Fields only the fine-tuning jobs use (not params of the pretraining job).
    FINETUNING_FIELDS: ClassVar[tuple[str, ...]] = ("identify_epochs", "finetune_epochs")

    identify_epochs: int = 10  # epochs training only the held-out session's unit and session embeddings
    finetune_epochs: int = 10  # epochs training every weight on the held-out session

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.identify_epochs < 1 or self.finetune_epochs < 0:
            raise ValueError("PoyoMultiSessionParams: identify_epochs must be >= 1, finetune_epochs >= 0")


def check_pretrained_params(path, saved: Mapping[str, Any], params: Params) -> None:
    """A fine-tuning job's ``params`` against those a pretrained model file ``path`` was
    trained with (``saved``): every field but the class's ``FINETUNING_FIELDS`` must agree."""
    current = params.to_dict()
    differing = sorted(k for k in current if k not in type(params).FINETUNING_FIELDS and saved.get(k) != current[k])
    if differing:
        raise ValueError(f"{path}: pretrained with other {', '.join(differing)} than the fine-tuning job's "
                         f"({', '.join(f'{k}={saved.get(k)!r} vs {current[k]!r}' for k in differing)})")


#: The transformer baselines a config can ask for (``neds.transformer_baselines``): each name
#: is the model's name in the comparison table and the config section of its parameters.
TRANSFORMER_BASELINES: dict[str, type[Params]] = {
    "ndt2": Ndt2Params,
    "ndt2_multi_session": Ndt2MultiSessionParams,
    "poyo": PoyoParams,
    "poyo_multi_session": PoyoMultiSessionParams,
}


@dataclass(frozen=True)
class NedsConfig(Params):
    """The ``neds`` config section (sub-sections above)."""

    variants: tuple[str, ...] = ("multimodal", "encoding", "decoding")  # single-session models per session
    masking_ablation: tuple[str, ...] = ()  # schemes removed one at a time from the multimodal model
    heldout_sessions: tuple[str, ...] = ()  # fine-tuned after pretraining on all other sessions ([]: no multi-session)
    transformer_baselines: tuple[str, ...] = tuple(TRANSFORMER_BASELINES)  # NDT2 / POYO+ models trained (*_multi_session: only with heldout_sessions)
    device: str = "auto"  # torch device of the training jobs: auto (CUDA when available), cpu, cuda
    gpus_per_training_job: int = 0  # GPUs a training job requests from the scheduler (paper scale: 1)
    threads: int = 2  # CPU threads of each training job
    model: ModelParams = field(default_factory=ModelParams)
    multi_session_model: ModelParams = field(default_factory=ModelParams)
    masking: MaskingParams = field(default_factory=MaskingParams)
    training: TrainingParams = field(default_factory=TrainingParams)
    pretraining: TrainingParams = field(default_factory=TrainingParams)
    finetuning: TrainingParams = field(default_factory=TrainingParams)
    baselines: BaselineParams = field(default_factory=BaselineParams)
    region: RegionParams = field(default_factory=RegionParams)
    search: SearchParams = field(default_factory=SearchParams)
    ndt2: Ndt2Params = field(default_factory=Ndt2Params)
    ndt2_multi_session: Ndt2MultiSessionParams = field(default_factory=Ndt2MultiSessionParams)
    poyo: PoyoParams = field(default_factory=PoyoParams)
    poyo_multi_session: PoyoMultiSessionParams = field(default_factory=PoyoMultiSessionParams)

    def __post_init__(self) -> None:
        self._coerce_field_types()
        for name in ("variants", "masking_ablation", "heldout_sessions", "transformer_baselines"):
            object.__setattr__(self, name, tuple(str(v) for v in getattr(self, name)))
        unknown = sorted(set(self.variants) - set(VARIANT_SCHEMES))
        if unknown or not self.variants:
            raise ValueError(f"NedsConfig.variants must be names from {list(VARIANT_SCHEMES)}, got {list(self.variants)}")
        unknown = sorted(set(self.transformer_baselines) - set(TRANSFORMER_BASELINES))
        if unknown or len(set(self.transformer_baselines)) != len(self.transformer_baselines):
            raise ValueError(f"NedsConfig.transformer_baselines must be distinct names from "
                             f"{list(TRANSFORMER_BASELINES)}, got {list(self.transformer_baselines)}")
        unknown = sorted(set(self.masking_ablation) - set(self.masking.schemes))
        if unknown:
            raise ValueError(f"NedsConfig.masking_ablation {unknown}: not in masking.schemes {list(self.masking.schemes)}")
        if len(self.masking.schemes) < 2 and self.masking_ablation:
            raise ValueError("NedsConfig.masking_ablation needs at least two masking schemes")
        if self.device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"NedsConfig.device must be auto, cpu or cuda, got {self.device!r}")
        if self.gpus_per_training_job < 0 or self.threads < 1:
            raise ValueError("NedsConfig: gpus_per_training_job must be >= 0 and threads >= 1")

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any] | None) -> "NedsConfig":
        """From the (YAML) ``neds`` section; unknown keys (also in sub-sections) raise ValueError naming them."""
        values = dict(mapping or {})
        unknown = sorted(set(values) - {f.name for f in fields(cls)})
        if unknown:
            raise ValueError(f"unknown neds key(s): {', '.join(map(repr, unknown))}")
        for f in fields(cls):
            if f.name in values and isinstance(f.default_factory, type) and issubclass(f.default_factory, Params):
                try:
                    values[f.name] = f.default_factory.from_mapping(values[f.name])
                except (TypeError, ValueError) as err:
                    raise ValueError(f"neds.{f.name}: {err}") from None
        return cls(**values)

    def variant_schemes(self, variant: str) -> tuple[str, ...]:
        """Masking schemes a single-session variant trains with: ``multimodal``, ``encoding``,
        ``decoding`` or ``no_<scheme>`` (the multimodal schemes without one, the ablation)."""
        if variant.startswith("no_") and variant[3:] in self.masking_ablation:
            return tuple(s for s in self.masking.schemes if s != variant[3:])
        if variant not in VARIANT_SCHEMES:
            raise ValueError(f"unknown NEDS variant {variant!r}")
        return VARIANT_SCHEMES[variant] or self.masking.schemes

    @property
    def all_variants(self) -> tuple[str, ...]:
        """Configured variants plus one ``no_<scheme>`` variant per ablated scheme."""
        return self.variants + tuple(f"no_{s}" for s in self.masking_ablation)
