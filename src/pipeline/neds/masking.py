"""Multi-task masking (paper seed 002, Sec. 3.2), sampled independently for EVERY sample.

Tokens are indexed (modality, time bin): modality order :data:`MODALITIES` (spikes first,
then the behaviours), one token per 20 ms bin each, so a trial has ``M x T`` tokens. A mask
is a pair of boolean tensors of shape (batch, M, T):

- ``hidden``: the token's input is replaced by the learned mask token;
- ``target``: the token's prediction enters the loss (always a subset of ``hidden``).

Schemes (one drawn uniformly per sample from the configured list):

- ``neural``: every spike token hidden and predicted (encoding). With probability
  ``single_behavior_probability`` only ONE behaviour, drawn uniformly, stays visible (the
  others are hidden without being predicted), otherwise all behaviours are visible;
- ``behavior``: every behaviour token hidden and predicted (decoding);
- ``within_modality``: one group (spikes or behaviours, 50/50) is kept and the other hidden
  without loss; ``round(mask_ratio x units of the group)`` random units of the kept group
  are hidden and predicted;
- ``cross_modal``: ``round(mask_ratio x units of all modalities)`` random units are hidden
  and predicted.

Units of the two random schemes: a token of a time-varying modality (spikes, wheel speed,
whisker motion energy: T units each), or a WHOLE discrete behaviour (choice, block: one unit
each, its T tokens hidden and predicted together). A discrete behaviour is one value per trial
replicated over the T bins (Sec. 3.3), so hiding some of its copies while others stay visible
asks only for a copy of a visible token: the loss of those tokens falls to ~0 without the model
learning anything about the conditional (choice given spikes and the other behaviours) that
decoding needs, and the random schemes would train the discrete decoders to copy instead. With
whole-variable units a hidden choice is predicted from the other modalities only. (A trial has
3 x T + 2 units; with mask_ratio 0.3 a discrete behaviour is hidden in ~30 % of the
cross-modal samples.)

The released NEDS code drew one scheme and applied the first sample's mask to the whole
batch; here every sample has its own scheme and its own random tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from pipeline.neds.config import MASKING_SCHEMES
from pipeline.neds.data import BEHAVIORS, DISCRETE

#: Token modalities in sequence order: spikes, then the behaviours.
MODALITIES: tuple[str, ...] = ("spikes",) + BEHAVIORS
SPIKES = 0
BEHAVIOR_ROWS = list(range(1, len(MODALITIES)))
#: Rows of the discrete (one value per trial) behaviours: masked as one unit by the random schemes.
DISCRETE_ROWS = [MODALITIES.index(name) for name in DISCRETE]


@dataclass(frozen=True)
class Mask:
    """``hidden``, ``target``: (batch, modalities, bins) bool; ``scheme``: (batch,) index into
    :data:`~pipeline.neds.config.MASKING_SCHEMES` (-1 for the fixed evaluation masks)."""

    hidden: torch.Tensor
    target: torch.Tensor
    scheme: torch.Tensor


def _random_tokens(n_tokens: int, ratio: float, generator: torch.Generator) -> torch.Tensor:
    """Boolean (n_tokens,) with exactly max(1, round(ratio x n_tokens)) random True entries."""
    n_masked = max(1, int(round(ratio * n_tokens)))
    chosen = torch.randperm(n_tokens, generator=generator)[:n_masked]
    selected = torch.zeros(n_tokens, dtype=torch.bool)
    selected[chosen] = True
    return selected


def _random_units(rows: list[int], n_bins: int, ratio: float, generator: torch.Generator) -> torch.Tensor:
    """Boolean (len(rows), n_bins): exactly max(1, round(ratio x units)) random units of the
    modality ``rows`` chosen (module docstring: a time-varying modality's row has ``n_bins``
    units, a discrete behaviour's row is one unit whose chosen state fills all its bins)."""
    discrete = [row in DISCRETE_ROWS for row in rows]
    n_units = sum(1 if d else n_bins for d in discrete)
    chosen_units = _random_tokens(n_units, ratio, generator)
    chosen, start = torch.zeros(len(rows), n_bins, dtype=torch.bool), 0
    for index, is_discrete in enumerate(discrete):
        width = 1 if is_discrete else n_bins
        chosen[index] = chosen_units[start:start + width]  # one unit broadcasts over the bins
        start += width
    return chosen


def sample_masks(
    batch_size: int,
    n_bins: int,
    schemes: tuple[str, ...],
    mask_ratio: float,
    single_behavior_probability: float,
    generator: torch.Generator,
) -> Mask:
    """Draw one scheme and one mask per sample (see the module docstring), on the CPU."""
    n_modalities = len(MODALITIES)
    hidden = torch.zeros(batch_size, n_modalities, n_bins, dtype=torch.bool)
    target = torch.zeros_like(hidden)
    scheme_index = torch.tensor([MASKING_SCHEMES.index(s) for s in schemes])
    drawn = scheme_index[torch.randint(len(schemes), (batch_size,), generator=generator)]
    for sample in range(batch_size):
        scheme = MASKING_SCHEMES[int(drawn[sample])]
        if scheme == "neural":
            hidden[sample, SPIKES] = target[sample, SPIKES] = True
            if torch.rand((), generator=generator) < single_behavior_probability:
                visible = BEHAVIOR_ROWS[int(torch.randint(len(BEHAVIOR_ROWS), (), generator=generator))]
                hidden[sample, [row for row in BEHAVIOR_ROWS if row != visible]] = True
        elif scheme == "behavior":
            hidden[sample, BEHAVIOR_ROWS] = target[sample, BEHAVIOR_ROWS] = True
        elif scheme == "within_modality":
            kept = [SPIKES] if torch.rand((), generator=generator) < 0.5 else BEHAVIOR_ROWS
            dropped = BEHAVIOR_ROWS if kept == [SPIKES] else [SPIKES]
            hidden[sample, dropped] = True
            chosen = _random_units(kept, n_bins, mask_ratio, generator)
            hidden[sample, kept] |= chosen
            target[sample, kept] = chosen
        else:  # cross_modal
            chosen = _random_units(list(range(n_modalities)), n_bins, mask_ratio, generator)
            hidden[sample] = target[sample] = chosen
    return Mask(hidden, target, drawn)


def encoding_mask(batch_size: int, n_bins: int, visible_behavior: str | None = None) -> Mask:
    """Evaluation mask for encoding: every spike token hidden and predicted; all behaviours
    visible (``visible_behavior=None``) or only the named one (paper Table 1)."""
    hidden = torch.zeros(batch_size, len(MODALITIES), n_bins, dtype=torch.bool)
    target = torch.zeros_like(hidden)
    hidden[:, SPIKES] = target[:, SPIKES] = True
    if visible_behavior is not None:
        hidden[:, [MODALITIES.index(b) for b in BEHAVIORS if b != visible_behavior]] = True
    return Mask(hidden, target, torch.full((batch_size,), -1))


def decoding_mask(batch_size: int, n_bins: int) -> Mask:
    """Evaluation mask for decoding: every behaviour token hidden and predicted, spikes visible."""
    hidden = torch.zeros(batch_size, len(MODALITIES), n_bins, dtype=torch.bool)
    hidden[:, BEHAVIOR_ROWS] = True
    return Mask(hidden, hidden.clone(), torch.full((batch_size,), -1))
