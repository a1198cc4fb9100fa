"""Model structure: per-session behaviour decoders, and the neuron-embedding matrices each
variant uses for region classification are exactly the ones its training updates."""

import pytest
import torch

from pipeline.neds.config import MASKING_SCHEMES, ModelParams, NedsConfig
from pipeline.neds.data import CONTINUOUS, DISCRETE
from pipeline.neds.masking import sample_masks
from pipeline.neds.model import Neds, balanced_class_weights, masked_losses, training_loss
from pipeline.neds.region import embedding_matrices
from pipeline.neds.train import evaluated_tasks

N_BINS = 20
MICRO = ModelParams(embed_dim=8, n_heads=2, n_layers=1, mlp_dim=8, dropout=0.0, attention_dropout=0.0)


def _inputs(n_neurons, n_trials=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return {"spikes": torch.poisson(torch.full((n_trials, N_BINS, n_neurons), 0.5), generator=g),
            "wheel_speed": torch.randn(n_trials, N_BINS, generator=g),
            "whisker_motion_energy": torch.randn(n_trials, N_BINS, generator=g),
            "choice": torch.randint(2, (n_trials,), generator=g), "block": torch.randint(3, (n_trials,), generator=g)}


def test_every_session_has_its_own_behaviour_decoders():
    model = Neds(MICRO, {"a": 5, "b": 7}, N_BINS)
    for name in CONTINUOUS:
        assert model.adapters["a"].continuous_out[name] is not model.adapters["b"].continuous_out[name]
    for name, n_classes in DISCRETE.items():
        assert model.adapters["b"].discrete_out[name].out_features == n_classes
    shared = [name for name, _ in model.named_parameters() if not name.startswith("adapters.")]
    assert not any("_out" in name for name in shared), shared  # no behaviour decoder outside the adapters
    # a decoder of session a does not move session b's behaviour prediction
    inputs = _inputs(7)
    mask = sample_masks(8, N_BINS, ("behavior",), 0.3, 0.5, torch.Generator().manual_seed(0))
    before = model("b", inputs, mask)["wheel_speed"].detach()
    with torch.no_grad():
        model.adapters["a"].continuous_out["wheel_speed"].bias += 10
    assert torch.equal(model("b", inputs, mask)["wheel_speed"], before)


@pytest.mark.parametrize("variant", ["multimodal", "encoding", "decoding"])
def test_region_embedding_matrices_are_the_ones_training_updates(variant):
    schemes = NedsConfig().variant_schemes(variant)
    chosen = embedding_matrices(evaluated_tasks(schemes))
    assert chosen == {"multimodal": ("neural_in", "neural_out"), "encoding": ("neural_out",),
                      "decoding": ("neural_in",)}[variant]
    torch.manual_seed(0)
    model = Neds(MICRO, {"s": 6}, N_BINS)
    inputs = _inputs(6)
    mask = sample_masks(8, N_BINS, schemes, 0.3, 0.5, torch.Generator().manual_seed(1))
    sum(masked_losses(model("s", inputs, mask), inputs, mask).values()).backward()
    adapter = model.adapters["s"]
    for name in ("neural_in", "neural_out"):
        grad = getattr(adapter, name).weight.grad
        received = grad is not None and bool(grad.abs().sum() > 0)
        assert received == (name in chosen), (variant, name)  # chosen matrices train, the others never do


def test_every_scheme_set_has_an_embedding():
    for scheme in MASKING_SCHEMES:
        assert embedding_matrices(evaluated_tasks((scheme,)))
    with pytest.raises(ValueError, match="no neuron embedding"):
        embedding_matrices(())


def test_every_modality_loss_is_the_mean_negative_log_likelihood_of_one_target_token():
    """masked_losses (documented units): a spike token's Poisson NLL is averaged over its N
    neurons (per dimension, as the released code), then every modality averages over its own
    target tokens."""
    n_trials, n_neurons = 3, 4
    inputs = _inputs(n_neurons, n_trials=n_trials, seed=2)
    g = torch.Generator().manual_seed(3)
    outputs = {"spikes": torch.randn(n_trials, N_BINS, n_neurons, generator=g),
               **{name: torch.randn(n_trials, N_BINS, generator=g) for name in CONTINUOUS},
               **{name: torch.randn(n_trials, N_BINS, k, generator=g) for name, k in DISCRETE.items()}}
    mask = sample_masks(n_trials, N_BINS, MASKING_SCHEMES, 0.3, 0.5, torch.Generator().manual_seed(4))
    losses = masked_losses(outputs, inputs, mask)
    for row, name in enumerate(("spikes",) + CONTINUOUS + tuple(DISCRETE)):
        per_token = []
        for trial, t in mask.target[:, row].nonzero().tolist():
            if name == "spikes":
                log_rate, counts = outputs[name][trial, t], inputs[name][trial, t]
                per_token.append(float((log_rate.exp() - counts * log_rate).mean()))
            elif name in CONTINUOUS:
                per_token.append(float((outputs[name][trial, t] - inputs[name][trial, t]) ** 2))
            else:
                logits = outputs[name][trial, t]
                per_token.append(float(torch.logsumexp(logits, 0) - logits[inputs[name][trial]]))
        if per_token:
            assert losses[name].item() == pytest.approx(sum(per_token) / len(per_token), rel=1e-5), name
        else:
            assert name not in losses


def _shared_gradient_norms(model: Neds, inputs, mask, spike_loss_weight: float) -> dict[str, float]:
    """Norm of the gradient on the shared weights (outside the session adapters) of the
    weighted spike loss and of the behaviours' losses, each alone."""
    norms = {}
    for part in ("spikes", "behaviours"):
        model.zero_grad()
        losses = masked_losses(model("s", inputs, mask), inputs, mask)
        chosen = {k: v for k, v in losses.items() if (k == "spikes") == (part == "spikes")}
        training_loss(chosen, spike_loss_weight).backward()
        norms[part] = float(torch.sqrt(sum((p.grad ** 2).sum() for name, p in model.named_parameters()
                                           if not name.startswith("adapters.") and p.grad is not None)))
    return norms


def test_spike_to_behaviour_gradient_ratio_does_not_depend_on_the_neuron_count():
    """The same session with every neuron copied 5 times (5N neurons; the neuron matrices
    copied so that every copy gets the same prediction) must weigh spikes against behaviours
    exactly as with N: the gradient ratio on the shared transformer is unchanged. (With the
    NLL summed over a token's neurons it grew 5x: real IBL sessions have ~10x the neurons of
    the sessions the balance was tuned on.)"""
    n_neurons, copies = 6, 5
    torch.manual_seed(0)
    model = Neds(MICRO, {"s": n_neurons}, N_BINS)
    copied = Neds(MICRO, {"s": copies * n_neurons}, N_BINS)
    state = model.state_dict()
    state["adapters.s.neural_in.weight"] = state["adapters.s.neural_in.weight"].repeat(1, copies) / copies
    for name in ("adapters.s.neural_out.weight", "adapters.s.neural_out.bias"):
        state[name] = state[name].repeat(copies, *([1] * (state[name].dim() - 1)))
    copied.load_state_dict(state)
    inputs = _inputs(n_neurons)
    copied_inputs = {**inputs, "spikes": inputs["spikes"].repeat(1, 1, copies)}
    mask = sample_masks(8, N_BINS, MASKING_SCHEMES, 0.3, 0.5, torch.Generator().manual_seed(5))
    assert mask.target.any(dim=(0, 2)).all()  # every modality has target tokens
    original = _shared_gradient_norms(model, inputs, mask, spike_loss_weight=50.0)
    more_neurons = _shared_gradient_norms(copied, copied_inputs, mask, spike_loss_weight=50.0)
    assert more_neurons["behaviours"] == pytest.approx(original["behaviours"], rel=1e-4)
    assert more_neurons["spikes"] / more_neurons["behaviours"] == pytest.approx(
        original["spikes"] / original["behaviours"], rel=1e-4)


def test_spike_loss_weight_scales_only_the_spike_term():
    losses = {"spikes": torch.tensor(0.3), "wheel_speed": torch.tensor(0.8), "choice": torch.tensor(0.6)}
    assert training_loss(losses, 50.0).item() == pytest.approx(50 * 0.3 + 0.8 + 0.6)


def test_balanced_class_weights_make_every_present_class_weigh_the_same():
    labels = {"choice": torch.tensor([0, 0, 0, 1]), "block": torch.tensor([0, 1, 1, 1, 1, 1])}
    weights = balanced_class_weights(labels)
    assert weights["choice"].tolist() == pytest.approx([4 / (2 * 3), 4 / (2 * 1)])
    assert weights["block"].tolist() == pytest.approx([6 / (2 * 1), 6 / (2 * 5), 0.0])  # class 2 absent


def test_balanced_cross_entropy_of_an_uninformed_decoder_is_minimal_at_the_uniform_prediction():
    """Labels 3:1 and one logit vector shared by every trial (a decoder without evidence): the
    plain cross-entropy is minimal at the class prior (then balanced accuracy = chance for
    every trial whose evidence is weak); with :func:`balanced_class_weights` at the uniform
    prediction, and the loss of that prediction is log(classes), a cross-entropy in size."""
    n_trials = 8
    inputs = _inputs(3, n_trials=n_trials)
    inputs["choice"] = torch.tensor([0] * 6 + [1] * 2)
    mask = sample_masks(n_trials, N_BINS, ("behavior",), 0.3, 0.5, torch.Generator().manual_seed(0))
    logits = torch.zeros(2, requires_grad=True)
    outputs = {"spikes": torch.zeros(n_trials, N_BINS, 3), **{n: torch.zeros(n_trials, N_BINS) for n in CONTINUOUS},
               "choice": logits.expand(n_trials, N_BINS, 2), "block": torch.zeros(n_trials, N_BINS, 3)}
    weights = balanced_class_weights({"choice": inputs["choice"], "block": inputs["block"]})
    balanced = masked_losses(outputs, inputs, mask, weights)["choice"]
    (gradient,) = torch.autograd.grad(balanced, logits)
    assert gradient.abs().max() < 1e-6
    assert balanced.item() == pytest.approx(float(torch.log(torch.tensor(2.0))))
    (plain_gradient,) = torch.autograd.grad(masked_losses(outputs, inputs, mask)["choice"], logits)
    assert plain_gradient.abs().max() > 0.1  # pulled towards the 3:1 prior
