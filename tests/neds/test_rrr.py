"""Multi-session reduced-rank regression (Zhang et al. 2024): a shared temporal basis with
per-session neuron weights recovers a planted low-rank multi-session map better than
per-session ridge regression, for encoding and decoding."""

import numpy as np

from pipeline.neds.baselines import fit_ridge
from pipeline.neds.config import BaselineParams
from pipeline.neds.rrr import fit_rrr_decoder, fit_rrr_encoder

N_BINS, N_FEATURES, RANK = 10, 3, 2


def _planted(seed=0, n_sessions=6, n_train=30, n_test=100):
    """Sessions sharing a rank-2 temporal basis V; each has its own neurons U_i."""
    rng = np.random.default_rng(seed)
    basis = rng.standard_normal((RANK, N_FEATURES, N_BINS, N_BINS)) / np.sqrt(N_FEATURES * N_BINS)
    sessions = {}
    for i in range(n_sessions):
        n_neurons = int(rng.integers(15, 25))
        neurons = rng.standard_normal((n_neurons, RANK))
        x = rng.standard_normal((n_train + n_test, N_BINS, N_FEATURES))
        latent = np.einsum("ksf,rfsu->kru", x, basis)
        y = np.einsum("kru,nr->kun", latent, neurons) + rng.standard_normal((n_train + n_test, N_BINS, n_neurons))
        signal = np.einsum("kru,nr->kun", latent, neurons)
        sessions[f"s{i}"] = (x[:n_train], y[:n_train], x[n_train:], signal[n_train:], latent[n_train:])
    return sessions


def _r2(truth, predicted):
    return 1 - np.sum((truth - predicted) ** 2) / np.sum((truth - truth.mean(axis=0)) ** 2)


def test_rrr_encoder_recovers_a_planted_multi_session_map_better_than_per_session_ridge():
    sessions = _planted()
    rrr = fit_rrr_encoder({s: v[0] for s, v in sessions.items()}, {s: v[1] for s, v in sessions.items()},
                          rank=RANK, l2=1e-4, iterations=300, seed=0)
    rrr_r2, ridge_r2 = [], []
    for sid, (x, y, x_test, signal, _) in sessions.items():
        rrr_r2.append(_r2(signal, rrr.predict(sid, x_test)))
        ridge = fit_ridge(x.reshape(len(x), -1), y.reshape(len(y), -1), BaselineParams(cv_folds=3), seed=0)
        ridge_r2.append(_r2(signal, ridge.predict(x_test.reshape(len(x_test), -1)).reshape(signal.shape)))
    print("encoder R2 of the noiseless signal: rrr", np.round(rrr_r2, 3), "ridge", np.round(ridge_r2, 3))
    assert np.mean(rrr_r2) > 0.8 and np.mean(rrr_r2) > np.mean(ridge_r2) + 0.1
    assert all(r > g for r, g in zip(rrr_r2, ridge_r2))


def test_rrr_decoder_recovers_a_planted_shared_readout_better_than_per_session_ridge():
    rng = np.random.default_rng(1)
    readout = rng.standard_normal((RANK, N_BINS, N_BINS)) / np.sqrt(N_BINS)
    spikes, targets, tests = {}, {}, {}
    for i in range(6):
        n_neurons = int(rng.integers(20, 30))
        mixing = rng.standard_normal((n_neurons, RANK))
        latent = rng.standard_normal((130, RANK, N_BINS))  # what the neurons carry
        x = np.einsum("krt,nr->ktn", latent, mixing) + rng.standard_normal((130, N_BINS, n_neurons))
        behaviour = np.einsum("krt,rto->ko", latent, readout)
        spikes[f"s{i}"], targets[f"s{i}"] = x[:30], behaviour[:30] + 0.3 * rng.standard_normal((30, N_BINS))
        tests[f"s{i}"] = (x[30:], behaviour[30:])
    rrr = fit_rrr_decoder(spikes, targets, "wheel_speed", rank=RANK, l2=1e-4, iterations=300, seed=0)
    rrr_r2 = [_r2(y, rrr.predict(s, x)) for s, (x, y) in tests.items()]
    ridge_r2 = [_r2(y, fit_ridge(spikes[s].reshape(30, -1), targets[s], BaselineParams(cv_folds=3), seed=0)
                    .predict(x.reshape(len(x), -1))) for s, (x, y) in tests.items()]
    print("decoder R2: rrr", np.round(rrr_r2, 3), "ridge", np.round(ridge_r2, 3))
    assert np.mean(rrr_r2) > np.mean(ridge_r2) + 0.1


def test_multi_session_rrr_scores_every_session(sessions):
    from pipeline.neds.rrr import evaluate_multi_session_rrr

    metrics = evaluate_multi_session_rrr(sessions, BaselineParams(rrr_iterations=15), seed=0)
    assert set(metrics) == {"sesA", "sesB"}
    for sid, scores in metrics.items():
        assert len(scores["bps_per_neuron"]) == sessions[sid].n_neurons
        assert {"bps", "bps_choice", "wheel_speed_r2", "wheel_speed_psth_r2", "block_balanced_accuracy"} <= set(scores)
        assert all(np.isfinite(v) for k, v in scores.items() if k != "bps_per_neuron")
