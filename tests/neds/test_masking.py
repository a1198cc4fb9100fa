"""Multi-task masks: drawn per sample, the configured ratio applied exactly, the schemes'
structure, and a forward pass that never touches its inputs."""

import numpy as np
import torch

from pipeline.neds.config import MASKING_SCHEMES, ModelParams
from pipeline.neds.masking import MODALITIES, decoding_mask, encoding_mask, sample_masks
from pipeline.neds.model import Neds, masked_losses

N_BINS = 100
ALL = MASKING_SCHEMES


def draw(schemes, batch=64, ratio=0.3, single=0.5, seed=0):
    return sample_masks(batch, N_BINS, schemes, ratio, single, torch.Generator().manual_seed(seed))


def test_masks_differ_per_sample_and_every_scheme_occurs():
    mask = draw(ALL)
    assert set(mask.scheme.tolist()) == set(range(len(ALL)))
    patterns = {tuple(m.flatten().tolist()) for m in mask.hidden}
    assert len(patterns) > 10  # not one mask for the whole batch (the released code's defect)
    cross = draw(("cross_modal",))
    assert len({tuple(m.flatten().tolist()) for m in cross.hidden}) == 64
    assert bool((mask.target <= mask.hidden).all())


def _units(target):
    """Masked units of one sample's (M, T) target: tokens of the time-varying rows (spikes,
    wheel, whisker) plus one per discrete behaviour (choice, block) that is masked."""
    return int(target[:3].sum()) + int(target[3:].any(dim=1).sum())


def test_mask_ratio_is_applied_exactly():
    """round(ratio x units): 3 x T time-varying tokens + 2 discrete behaviours per trial."""
    for ratio in (0.1, 0.3):
        cross = draw(("cross_modal",), ratio=ratio)
        assert all(_units(t) == round(ratio * (3 * N_BINS + 2)) for t in cross.target)
        within = draw(("within_modality",), ratio=ratio)
        for hidden, target in zip(within.hidden, within.target):
            if target[0].any():  # spikes kept: behaviours hidden without loss
                assert target.sum() == round(ratio * N_BINS) and hidden[1:].all() and not target[1:].any()
            else:
                assert _units(target) == round(ratio * (2 * N_BINS + 2)) and hidden[0].all()


def test_neural_and_behaviour_masking():
    neural = draw(("neural",), batch=200)
    assert neural.hidden[:, 0].all() and neural.target[:, 0].all() and not neural.target[:, 1:].any()
    visible = (~neural.hidden[:, 1:]).all(dim=2).sum(dim=1)  # behaviours left visible per sample
    assert set(visible.tolist()) == {1, 4}  # one behaviour at a time, or all of them
    assert 60 < int((visible == 1).sum()) < 140  # single_behavior_probability 0.5
    behavior = draw(("behavior",))
    assert behavior.target[:, 1:].all() and not behavior.hidden[:, 0].any()


def test_masks_are_a_function_of_the_seed():
    assert torch.equal(draw(ALL, seed=4).hidden, draw(ALL, seed=4).hidden)
    assert not torch.equal(draw(ALL, seed=4).hidden, draw(ALL, seed=5).hidden)


def _inputs(n_trials=6, n_neurons=7):
    generator = torch.Generator().manual_seed(0)
    return {
        "spikes": torch.poisson(torch.full((n_trials, N_BINS, n_neurons), 0.3), generator=generator),
        "wheel_speed": torch.randn(n_trials, N_BINS, generator=generator),
        "whisker_motion_energy": torch.randn(n_trials, N_BINS, generator=generator),
        "choice": torch.randint(2, (n_trials,), generator=generator),
        "block": torch.randint(3, (n_trials,), generator=generator),
    }


def test_forward_pass_leaves_inputs_untouched_and_hidden_inputs_are_unused():
    model = Neds(ModelParams(embed_dim=16, n_heads=2, n_layers=1, mlp_dim=16), {"s": 7}, N_BINS)
    inputs = _inputs()
    original = {k: v.clone() for k, v in inputs.items()}
    mask = draw(ALL, batch=6)
    outputs = model("s", inputs, mask)
    sum(masked_losses(outputs, inputs, mask).values()).backward()
    assert all(torch.equal(inputs[k], original[k]) for k in inputs)
    assert outputs["spikes"].shape == (6, N_BINS, 7) and outputs["block"].shape == (6, N_BINS, 3)
    # encoding: every spike token is hidden, so the spike inputs cannot change the prediction
    model.eval()
    encoding = encoding_mask(6, N_BINS)
    changed = {**inputs, "spikes": inputs["spikes"] + 5}
    assert torch.allclose(model("s", inputs, encoding)["spikes"], model("s", changed, encoding)["spikes"])
    decoding = decoding_mask(6, N_BINS)
    assert not torch.allclose(model("s", inputs, decoding)["wheel_speed"], model("s", changed, decoding)["wheel_speed"])


def test_encoding_mask_with_one_visible_behaviour():
    mask = encoding_mask(2, N_BINS, visible_behavior="choice")
    visible = [name for row, name in enumerate(MODALITIES) if not mask.hidden[0, row].any()]
    assert visible == ["choice"] and np.array_equal(mask.target[:, 0].numpy(), np.ones((2, N_BINS), bool))


def test_random_schemes_hide_a_discrete_behaviour_whole_or_not_at_all():
    """Choice and block are one value per trial copied over the T bins: hiding some copies
    while others stay visible would only train copying. The random schemes hide all T tokens
    of a discrete behaviour or none, and still hide them in about mask_ratio of the samples."""
    for scheme in ("cross_modal", "within_modality"):
        mask = draw((scheme,), batch=400, ratio=0.3)
        for name in ("choice", "block"):
            row = MODALITIES.index(name)
            hidden, target = mask.hidden[:, row], mask.target[:, row]
            assert bool((hidden.all(dim=1) | ~hidden.any(dim=1)).all()), (scheme, name)
            assert bool((target.all(dim=1) | ~target.any(dim=1)).all()), (scheme, name)
        if scheme == "cross_modal":
            fraction = float(mask.target[:, MODALITIES.index("choice")].all(dim=1).float().mean())
            assert 0.2 < fraction < 0.4
