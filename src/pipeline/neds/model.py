"""NEDS: a multimodal transformer over neural and behavioural tokens (paper seed 002, Sec. 3).

Read top to bottom: rotary position embeddings -> attention -> transformer block ->
session adapter (stitchers, session embedding, neural decoder) -> :class:`Neds`.

Shapes: B trials, T time bins (20 ms each; 100 per 2 s trial), N neurons of the session,
M = 5 modalities (:data:`~pipeline.neds.masking.MODALITIES`: spikes, wheel speed, whisker
motion energy, choice, block), D = ``embed_dim``. Inputs (a dict, never modified):

- ``spikes`` (B, T, N) float spike counts per bin (raw, App. C);
- ``wheel_speed``, ``whisker_motion_energy`` (B, T) float scaled to [-1, 1];
- ``choice`` (B,) int in {0, 1}, ``block`` (B,) int in {0, 1, 2}.

Tokenisation (Sec. 3.3): every modality gives one token per bin. Spikes: the session's
neural input matrix (N -> D, a "stitcher"); continuous behaviours: a session-specific
1 -> D matrix per behaviour; discrete behaviours: a session-specific class embedding,
replicated over the T bins. (The released code's stitcher is N -> 2N, softsign, -> D; here it
is one N -> D matrix, as Sec. 3.4 and 5.3 describe it: a neuron's input embedding must be a
row of fixed width D to be pooled across sessions for region classification, and the 2N²
weights per session of the two-layer stitcher dominate the parameter count for the IBL's
several hundred neurons per session.) Hidden tokens are replaced by one learned mask token; then the
modality embedding, a learned embedding of the time bin (PE_t of Sec. 3.4) and the session
embedding are added, and rotary embeddings of the time bin (Sec. 3.3) enter every attention
layer. (With rotary embeddings alone a fully masked modality's tokens differ only in relative
phase, so the trial-averaged time course is hard to learn from a few hundred trials.) Outputs (Eq. 1): neural log-rates (B, T, N) from the
session's neural output matrix (D -> N); each continuous behaviour (B, T) and each discrete
behaviour's logits (B, T, classes) from the session's own linear behaviour decoders
(Sec. 3.3: "session- and modality-specific decoders for each animal").
"""

from __future__ import annotations

from dataclasses import asdict

import torch
import torch.nn.functional as F
from torch import nn

from pipeline.neds.config import ModelParams
from pipeline.neds.data import CONTINUOUS, DISCRETE
from pipeline.neds.masking import MODALITIES, Mask


def rotary_tables(n_bins: int, head_dim: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    """cos, sin (n_bins, head_dim / 2) of RoPE (Su et al. 2024) for time bins 0..n_bins-1."""
    inverse_frequency = 1.0 / (10000 ** (torch.arange(0, head_dim, 2, device=device).float() / head_dim))
    angles = torch.arange(n_bins, device=device).float()[:, None] * inverse_frequency[None, :]
    return angles.cos(), angles.sin()


def apply_rotary(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate (B, heads, L, head_dim) by each token's angles; cos/sin are (L, head_dim / 2)."""
    even, odd = x[..., 0::2], x[..., 1::2]
    return torch.stack([even * cos - odd * sin, even * sin + odd * cos], dim=-1).flatten(-2)


class SelfAttention(nn.Module):
    """Multi-head self-attention over all M x T tokens, rotary embeddings on queries and keys."""

    def __init__(self, params: ModelParams):
        super().__init__()
        self.n_heads = params.n_heads
        self.qkv = nn.Linear(params.embed_dim, 3 * params.embed_dim)
        self.out = nn.Linear(params.embed_dim, params.embed_dim)
        self.attention_dropout = params.attention_dropout
        self.dropout = nn.Dropout(params.dropout)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        batch, length, width = x.shape
        q, k, v = self.qkv(x).view(batch, length, 3, self.n_heads, width // self.n_heads).permute(2, 0, 3, 1, 4)
        q, k = apply_rotary(q, cos, sin), apply_rotary(k, cos, sin)
        y = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attention_dropout if self.training else 0.0)
        return self.dropout(self.out(y.transpose(1, 2).reshape(batch, length, width)))


class Block(nn.Module):
    """Pre-norm transformer block: x + attention(LN(x)), then x + MLP(LN(x))."""

    def __init__(self, params: ModelParams):
        super().__init__()
        self.norm_attention = nn.LayerNorm(params.embed_dim)
        self.attention = SelfAttention(params)
        self.norm_mlp = nn.LayerNorm(params.embed_dim)
        self.mlp = nn.Sequential(
            nn.Linear(params.embed_dim, params.mlp_dim), nn.GELU(), nn.Linear(params.mlp_dim, params.embed_dim),
            nn.Dropout(params.dropout),
        )

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        x = x + self.attention(self.norm_attention(x), cos, sin)
        return x + self.mlp(self.norm_mlp(x))


class SessionAdapter(nn.Module):
    """Everything specific to one session (Sec. 3.3, 3.4): input matrices ("stitchers") for
    the spikes (N -> D) and for each behaviour, the session embedding (D,), the neural output
    matrix (D -> N) and one linear decoder per behaviour (D -> 1 for continuous, D -> classes
    for discrete ones). Rows of ``neural_in.weight.T`` and ``neural_out.weight`` are the
    neuron embeddings of Sec. 5.3."""

    def __init__(self, n_neurons: int, embed_dim: int):
        super().__init__()
        self.neural_in = nn.Linear(n_neurons, embed_dim)
        self.continuous_in = nn.ModuleDict({name: nn.Linear(1, embed_dim) for name in CONTINUOUS})
        self.discrete_in = nn.ModuleDict({name: nn.Embedding(k, embed_dim) for name, k in DISCRETE.items()})
        self.session_embedding = nn.Parameter(torch.zeros(embed_dim))
        self.neural_out = nn.Linear(embed_dim, n_neurons)
        self.continuous_out = nn.ModuleDict({name: nn.Linear(embed_dim, 1) for name in CONTINUOUS})
        self.discrete_out = nn.ModuleDict({name: nn.Linear(embed_dim, k) for name, k in DISCRETE.items()})
        # Small initial neuron weights: after training, a neuron's rows (its embedding,
        # Sec. 5.3) are dominated by what was learned rather than by the random start.
        for weight in (self.neural_in.weight, self.neural_out.weight):
            nn.init.normal_(weight, std=0.01)

    def tokens(self, inputs: dict[str, torch.Tensor]) -> torch.Tensor:
        """Token embeddings (B, M, T, D) in :data:`MODALITIES` order."""
        spikes = inputs["spikes"]
        n_bins = spikes.shape[1]
        per_modality = [self.neural_in(spikes)]
        per_modality += [self.continuous_in[name](inputs[name].unsqueeze(-1)) for name in CONTINUOUS]
        per_modality += [self.discrete_in[name](inputs[name]).unsqueeze(1).expand(-1, n_bins, -1) for name in DISCRETE]
        return torch.stack(per_modality, dim=1)


class Neds(nn.Module):
    """The shared transformer plus one :class:`SessionAdapter` per session.

    ``sessions``: session id -> number of neurons. ``n_bins``: tokens per modality (T).
    """

    def __init__(self, params: ModelParams, sessions: dict[str, int], n_bins: int):
        super().__init__()
        self.params, self.n_bins = params, n_bins
        width = params.embed_dim
        self.adapters = nn.ModuleDict({sid: SessionAdapter(n, width) for sid, n in sessions.items()})
        self.mask_token = nn.Parameter(0.02 * torch.randn(width))
        self.modality_embedding = nn.Parameter(0.02 * torch.randn(len(MODALITIES), width))
        self.time_embedding = nn.Parameter(0.02 * torch.randn(n_bins, width))
        self.embedding_dropout = nn.Dropout(params.dropout)
        self.blocks = nn.ModuleList([Block(params) for _ in range(params.n_layers)])
        self.final_norm = nn.LayerNorm(width)
        cos, sin = rotary_tables(n_bins, width // params.n_heads, torch.device("cpu"))
        # every modality's token t sits at time bin t
        self.register_buffer("rotary_cos", cos.repeat(len(MODALITIES), 1), persistent=False)
        self.register_buffer("rotary_sin", sin.repeat(len(MODALITIES), 1), persistent=False)

    def architecture(self) -> dict:
        """What :meth:`from_architecture` needs to rebuild this model (stored in checkpoints)."""
        return {"params": asdict(self.params), "n_bins": self.n_bins,
                "sessions": {sid: adapter.neural_out.out_features for sid, adapter in self.adapters.items()}}

    @classmethod
    def from_architecture(cls, architecture: dict) -> "Neds":
        return cls(ModelParams.from_mapping(architecture["params"]), dict(architecture["sessions"]),
                   int(architecture["n_bins"]))

    def hidden_states(self, session_id: str, inputs: dict[str, torch.Tensor], mask: Mask) -> torch.Tensor:
        """The shared transformer's output (B, M, T, D) for ``session_id``'s trials under
        ``mask``: the representation every modality's decoder reads (its own row of M)."""
        adapter = self.adapters[session_id]
        tokens = adapter.tokens(inputs)  # (B, M, T, D)
        batch, n_modalities, n_bins, width = tokens.shape
        hidden = mask.hidden.to(tokens.device).unsqueeze(-1)
        x = torch.where(hidden, self.mask_token, tokens)  # new tensor: inputs are never modified
        x = x + self.modality_embedding[None, :, None, :] + self.time_embedding + adapter.session_embedding
        x = self.embedding_dropout(x.reshape(batch, n_modalities * n_bins, width))
        for block in self.blocks:
            x = block(x, self.rotary_cos, self.rotary_sin)
        return self.final_norm(x).view(batch, n_modalities, n_bins, width)

    def readout(self, session_id: str, h: torch.Tensor) -> dict[str, torch.Tensor]:
        """Each modality's predictions from its row of ``h`` (B, M, T, D), by the session's
        decoders: ``spikes`` (B, T, N) log-rates (log spikes/bin), each continuous behaviour
        (B, T) in scaled units and each discrete behaviour's logits (B, T, classes)."""
        adapter = self.adapters[session_id]
        outputs = {"spikes": adapter.neural_out(h[:, 0])}
        for row, name in enumerate(MODALITIES[1:], start=1):
            head = adapter.continuous_out[name] if name in CONTINUOUS else adapter.discrete_out[name]
            outputs[name] = head(h[:, row]).squeeze(-1) if name in CONTINUOUS else head(h[:, row])
        return outputs

    def last_shared_weight(self) -> nn.Parameter:
        """The weight (D, mlp_dim) of the last linear layer of the shared transformer, on which
        :func:`balanced_objective` compares the tasks' gradients."""
        return self.blocks[-1].mlp[2].weight

    def forward(self, session_id: str, inputs: dict[str, torch.Tensor], mask: Mask) -> dict[str, torch.Tensor]:
        """Predictions of every token of ``session_id``'s trials under ``mask`` (:meth:`readout`
        of :meth:`hidden_states`)."""
        return self.readout(session_id, self.hidden_states(session_id, inputs, mask))


def masked_losses(outputs: dict[str, torch.Tensor], inputs: dict[str, torch.Tensor], mask: Mask,
                  class_weights: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
    """Per-modality losses (Sec. 3.4, App. C), each the mean over the modality's target
    tokens of one token's negative log-likelihood PER DIMENSION: a spike token's Poisson NLL
    (without the log y! term) averaged over its N neurons, a continuous behaviour token's
    squared error (Gaussian, fixed variance), a discrete behaviour token's cross-entropy. This
    is the released code's reduction (``PoissonNLLLoss`` / ``MSELoss`` summed over the target
    entries and divided by their number, ``multi_modal/mm.py: forward_loss``), so no loss
    changes with the number of neurons or behaviour dimensions; :func:`balanced_objective`
    weighs them. A modality without target tokens in the batch is left out.

    ``class_weights`` (discrete behaviour -> (classes,) weights, :func:`balanced_class_weights`):
    each token's cross-entropy weighed by its class, the mean then taken with those weights
    (``F.cross_entropy(weight=...)``), so the loss stays a cross-entropy per token in size."""
    losses = {}
    target = mask.target.to(outputs["spikes"].device)
    for row, name in enumerate(MODALITIES):
        selected = target[:, row]  # (B, T)
        if not selected.any():
            continue
        if name == "spikes":
            log_rate, counts = outputs[name][selected], inputs[name][selected]  # (tokens, N)
            losses[name] = (log_rate.exp() - counts * log_rate).mean()
        elif name in CONTINUOUS:
            losses[name] = F.mse_loss(outputs[name][selected], inputs[name][selected])
        else:
            labels = inputs[name].unsqueeze(1).expand(-1, selected.shape[1])
            weight = None if class_weights is None else class_weights[name].to(outputs[name].device)
            losses[name] = F.cross_entropy(outputs[name][selected], labels[selected], weight=weight)
    return losses


def balanced_objective(losses: dict[str, torch.Tensor], hidden: torch.Tensor, shared_weight: nn.Parameter,
                       spike_gradient_ratio: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The training objective of one batch and the spike weight w (a 0-d tensor) it gave
    the shared model.

    ``losses`` from :func:`masked_losses` of ``model.readout(hidden)``; ``hidden`` (B, M, T, D)
    from :meth:`Neds.hidden_states`; ``shared_weight``: the last shared layer's weight matrix
    (:meth:`Neds.last_shared_weight`). Every decoder gets the gradient of its own loss,
    unweighted. The shared transformer and the input stitchers get the behaviours' gradients
    unweighted and the spike loss's gradient times a weight w chosen per batch so that, on
    ``shared_weight``, its norm is ``spike_gradient_ratio`` x the mean norm of the behaviours'
    gradients: w = ratio x mean_b |dL_b/dW| / |dL_spikes/dW|. This is gradient-norm balancing
    as GradNorm (Chen et al. 2018: norms on the last shared layer's weights; without its
    training-rate term), applied to the spike loss against the behaviours: the spike share of
    the shared gradient is the same for every number of neurons and every scale of the
    behaviours, where a fixed loss weight's share grows with N (trained models, bench/README
    neds_realistic: the per-neuron Poisson NLL's gradient on that layer against the
    behaviours' was 0.07-0.09 at 438 neurons and 0.03-0.035 at 40, because the spike tokens'
    Poisson residuals, summed over more neurons, cancel less across tokens). The weight enters
    the gradient only, through the first-order surrogate (w - 1) <dL_spikes/dh, h>, whose
    value is not a loss (log ``losses``); the spike decoder keeps the scale of its own loss,
    so the Adam statistics of the task-specific weights do not follow w, which falls 4- to
    40-fold over training (mean 120-500 in the first epoch, 11-30 in the 40th on the bench
    sessions: the spike decoder starts near zero). Without a spike or behaviour loss, without
    a gradient on ``shared_weight``, or when a gradient norm is zero or not finite, w = 1."""
    total = sum(losses.values())
    behaviours = [name for name in losses if name != "spikes"]
    if "spikes" not in losses or not behaviours or not total.requires_grad or not shared_weight.requires_grad:
        return total, torch.ones((), device=total.device)
    gradient = torch.autograd.grad(total, hidden, retain_graph=True)[0]  # (B, M, T, D): row i holds dL_i/dh

    def shared_norm(name: str) -> torch.Tensor:
        row = MODALITIES.index(name)
        only_row = torch.zeros_like(gradient)
        only_row[:, row] = gradient[:, row]
        return torch.autograd.grad(hidden, shared_weight, grad_outputs=only_row, retain_graph=True)[0].norm()

    behaviour_norm = torch.stack([shared_norm(name) for name in behaviours]).mean()
    weight = spike_gradient_ratio * behaviour_norm / shared_norm("spikes")
    weight = torch.where(torch.isfinite(weight) & (weight > 0), weight, torch.ones_like(weight))  # no device sync
    spike_row = MODALITIES.index("spikes")
    surrogate = (weight - 1.0) * (gradient[:, spike_row] * hidden[:, spike_row]).sum()
    return total + surrogate, weight


def balanced_class_weights(labels: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per discrete behaviour (``labels``: name -> (trials,) int classes of the training
    trials) the weights (classes,) = 1 / (classes present x frequency of the class), 0 for a
    class without training trials: with them every class present weighs the same in the
    cross-entropy, whose minimiser is then the classifier of the balanced error, the metric
    the decoders are scored and selected on (balanced accuracy)."""
    weights = {}
    for name, n_classes in DISCRETE.items():
        counts = torch.bincount(labels[name].cpu(), minlength=n_classes).double()
        present = counts > 0
        weight = torch.zeros(n_classes, dtype=torch.float64)
        weight[present] = counts.sum() / (present.sum() * counts[present])
        weights[name] = weight.float()
    return weights


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def init_log_rate_bias(model: Neds, session_id: str, mean_counts: torch.Tensor) -> None:
    """Start the session's neural decoder at each neuron's mean log-rate (spikes/bin), so
    training begins at the mean-rate null instead of rate 1."""
    with torch.no_grad():
        model.adapters[session_id].neural_out.bias.copy_(torch.log(mean_counts.clamp_min(1e-3)))
