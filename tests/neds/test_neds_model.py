"""Model structure: per-session behaviour decoders, and the neuron-embedding matrices each
variant uses for region classification are exactly the ones its training updates."""

import pytest
import torch

from pipeline.neds.config import MASKING_SCHEMES, ModelParams, NedsConfig
from pipeline.neds.data import CONTINUOUS, DISCRETE
from pipeline.neds.masking import sample_masks
from pipeline.neds.model import Neds, balanced_class_weights, balanced_objective, masked_losses
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


def _task_gradients(model: Neds, inputs, mask, spike_gradient_ratio: float):
    """Gradients of the training objective on the last shared layer and on the spike decoder,
    the same two of each modality's own loss, and the spike weight w."""
    hidden = model.hidden_states("s", inputs, mask)
    losses = masked_losses(model.readout("s", hidden), inputs, mask)
    shared, head = model.last_shared_weight(), model.adapters["s"].neural_out.weight
    per_task = {name: torch.autograd.grad(loss, [shared, head], retain_graph=True, allow_unused=True)
                for name, loss in losses.items()}
    objective, weight = balanced_objective(losses, hidden, shared, spike_gradient_ratio)
    return torch.autograd.grad(objective, [shared, head]), per_task, float(weight)


@pytest.mark.parametrize("n_neurons, behaviour_scale", [(6, 1.0), (60, 1.0), (6, 4.0)])
def test_spike_share_of_the_shared_gradient_is_the_configured_ratio_for_any_size(n_neurons, behaviour_scale):
    """The objective's gradient on the shared model is the behaviours' gradients plus w x the
    spike loss's, with |w dL_spikes/dW| = ratio x mean_b |dL_b/dW| on the last shared layer for
    6 or 60 independent neurons and behaviours 4x larger (a fixed spike weight gives each its
    own share); the spike decoder gets its own loss's gradient, unweighted."""
    torch.manual_seed(0)
    model = Neds(MICRO, {"s": n_neurons}, N_BINS)
    inputs = _inputs(n_neurons)
    for name in CONTINUOUS:
        inputs[name] = inputs[name] * behaviour_scale
    mask = sample_masks(8, N_BINS, MASKING_SCHEMES, 0.3, 0.5, torch.Generator().manual_seed(5))
    assert mask.target.any(dim=(0, 2)).all()  # every modality has target tokens
    (shared, head), per_task, weight = _task_gradients(model, inputs, mask, spike_gradient_ratio=1.5)
    behaviours = [name for name in per_task if name != "spikes"]
    behaviour_sum = sum(per_task[name][0] for name in behaviours)
    spike_part = shared - behaviour_sum
    torch.testing.assert_close(spike_part, weight * per_task["spikes"][0], rtol=1e-4, atol=1e-7)
    mean_behaviour_norm = sum(float(per_task[name][0].norm()) for name in behaviours) / len(behaviours)
    assert float(spike_part.norm()) == pytest.approx(1.5 * mean_behaviour_norm, rel=1e-4)
    torch.testing.assert_close(head, per_task["spikes"][1])  # behaviours do not reach the spike decoder
    assert weight != pytest.approx(1.0, rel=0.1)  # the balance did act


def test_spike_weight_is_one_without_behaviour_targets_and_a_nan_loss_stays_visible():
    """Neural-only batches have nothing to balance against (w = 1); a NaN loss gives a NaN
    objective (the training loop skips that batch) and a finite w, never a NaN weight."""
    torch.manual_seed(0)
    model = Neds(MICRO, {"s": 6}, N_BINS)
    inputs = _inputs(6)
    mask = sample_masks(8, N_BINS, ("neural",), 0.3, 0.5, torch.Generator().manual_seed(1))
    hidden = model.hidden_states("s", inputs, mask)
    losses = masked_losses(model.readout("s", hidden), inputs, mask)
    assert set(losses) == {"spikes"}
    objective, weight = balanced_objective(losses, hidden, model.last_shared_weight(), 1.0)
    assert float(weight) == 1.0 and torch.equal(objective, losses["spikes"])
    mask = sample_masks(8, N_BINS, MASKING_SCHEMES, 0.3, 0.5, torch.Generator().manual_seed(5))
    inputs["wheel_speed"][0, 0] = float("nan")
    hidden = model.hidden_states("s", inputs, mask)
    losses = masked_losses(model.readout("s", hidden), inputs, mask)
    objective, weight = balanced_objective(losses, hidden, model.last_shared_weight(), 1.0)
    assert not torch.isfinite(objective) and float(weight) == 1.0


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
