"""The five NLP4Neuro input embeddings are the methods they are named after (issue 5)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from scipy.spatial.distance import cdist
from sklearn.decomposition import PCA

from pipeline.models.embeddings import (
    LaplacianEigenmap,
    SparseAutoencoder,
    build_embedding,
    sinusoidal_position_table,
)
from pipeline.models.config import EmbeddingParams, STRATEGIES

N_NEURONS = 50
D_MODEL = 8
SMALL = EmbeddingParams(n_components=4, n_neighbors=10, sparse_ae_epochs=5, sparse_ae_lr=1e-2,
                        sparse_ae_batch_size=100, max_relative_distance=3, n_heads=2)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


def circle_frames(n_frames: int, seed: int, angles: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Frames on a closed curve in 50-D: (cos a, sin a, 2 cos 3a, 2 sin 3a) rotated into 50
    dimensions plus noise (SD 0.02), and the angles a. The third harmonic carries 4x the
    variance of the first, so the top two principal components trace 3a, not a; the curve
    has constant speed, so its arc length is proportional to a."""
    rng = np.random.default_rng(seed)
    if angles is None:
        angles = np.linspace(0, 2 * np.pi, n_frames, endpoint=False) + rng.uniform(-0.005, 0.005, n_frames)
    curve = np.stack([np.cos(angles), np.sin(angles), 2 * np.cos(3 * angles), 2 * np.sin(3 * angles)], 1)
    rotation = np.linalg.qr(np.random.default_rng(1234).normal(size=(N_NEURONS, 4)))[0]
    frames = curve @ rotation.T + 0.02 * rng.normal(size=(angles.size, N_NEURONS))
    return frames.astype(np.float32), angles


def two_cluster_frames(seed: int) -> np.ndarray:
    """Two Gaussian blobs of 60 frames, 40 SD apart: a kNN graph with two components."""
    rng = np.random.default_rng(seed)
    frames = rng.normal(size=(120, N_NEURONS))
    frames[60:, 0] += 40
    return frames.astype(np.float32)


def explained_fraction(features: np.ndarray, targets: np.ndarray) -> float:
    """R^2 of the least-squares affine fit of targets (n, t) from features (n, f)."""
    design = np.c_[features, np.ones(len(features))]
    coef = np.linalg.lstsq(design, targets, rcond=None)[0]
    return 1 - (targets - design @ coef).var(0).sum() / targets.var(0).sum()


def reference_graph(frames: np.ndarray, n_neighbors: int) -> np.ndarray:
    """The documented graph, built independently: union of each frame's n_neighbors + 1
    nearest frames (itself included), heat kernel with t = median squared distance to the
    n_neighbors-th nearest other frame."""
    squared = cdist(frames, frames, "sqeuclidean")
    nearest = np.argsort(squared, axis=1)[:, : n_neighbors + 1]
    edges = np.zeros(squared.shape, bool)
    edges[np.arange(len(frames))[:, None], nearest] = True
    edges |= edges.T
    bandwidth = np.median(np.sort(squared, axis=1)[:, n_neighbors])
    return np.where(edges, np.exp(-squared / bandwidth), 0.0)


def test_params_defaults_and_validation():
    assert EmbeddingParams.from_mapping(None) == EmbeddingParams()
    assert EmbeddingParams.from_mapping({"n_components": 8.0}).n_components == 8
    with pytest.raises(ValueError, match="n_component"):
        EmbeddingParams.from_mapping({"n_component": 8})
    for bad, named in [({"n_components": 0}, "n_components"), ({"n_heads": 0}, "n_heads"),
                       ({"sparse_ae_l1": -1.0}, "sparse_ae_l1"), ({"sparse_ae_lr": 0.0}, "sparse_ae_lr"),
                       ({"sparse_ae_epochs": 2.5}, "sparse_ae_epochs"),
                       ({"n_neighbors": 10, "max_reference_frames": 11}, "max_reference_frames")]:
        with pytest.raises(ValueError, match=named):
            EmbeddingParams(**bad)


def test_unknown_strategy_is_named():
    with pytest.raises(ValueError, match="'rotary'"):
        build_embedding("rotary", N_NEURONS, D_MODEL, SMALL)


def test_linear_is_an_affine_map_of_each_frame_alone():
    embedding = build_embedding("linear", N_NEURONS, D_MODEL, SMALL)
    windows = torch.randn(3, 7, N_NEURONS)
    expected = windows @ embedding.projection.weight.T + embedding.projection.bias
    torch.testing.assert_close(embedding(windows), expected)
    repeated = embedding(windows[:, :1].expand(3, 7, N_NEURONS))
    torch.testing.assert_close(repeated, repeated[:, :1].expand_as(repeated))


def test_sinusoidal_adds_the_vaswani_table_to_the_projection():
    d_model, seq_len = 7, 12  # odd d_model: the last column is a sine
    embedding = build_embedding("sinusoidal", N_NEURONS, d_model, SMALL)
    windows = torch.randn(2, seq_len, N_NEURONS)
    added = (embedding(windows) - embedding.projection(windows)).detach().numpy()
    position, column = np.arange(seq_len)[:, None], np.arange(d_model)[None, :]
    angle = position / 10000 ** ((column - column % 2) / d_model)
    table = np.where(column % 2 == 0, np.sin(angle), np.cos(angle))
    np.testing.assert_allclose(added, np.broadcast_to(table, added.shape), atol=1e-5)


def test_relative_attention_sees_positions_only_as_clipped_offsets():
    """A block of content inside constant padding, moved by 3 frames, gives exactly the same
    block outputs: each block token sees the same content at the same clipped offsets. (The
    clipped end tables w[-k] and w[+k] are tied so that the padding frames that move from
    beyond +k to beyond -k look the same.) Adding absolute positions before the attention
    -- an absolute embedding renamed -- breaks this."""
    torch.manual_seed(0)
    embedding = build_embedding("relative", N_NEURONS, D_MODEL, SMALL)  # k = 3
    attention = embedding.relative_attention
    with torch.no_grad():
        attention.relative_key[-1] = attention.relative_key[0]
        attention.relative_value[-1] = attention.relative_value[0]
    padding, block = torch.randn(N_NEURONS), torch.randn(4, N_NEURONS)
    first = torch.cat([padding.expand(4, -1), block, padding.expand(8, -1)])[None]  # block at 4..7
    moved = torch.cat([padding.expand(7, -1), block, padding.expand(5, -1)])[None]  # block at 7..10
    torch.testing.assert_close(embedding(moved)[:, 7:11], embedding(first)[:, 4:8], rtol=1e-5, atol=1e-5)

    def with_absolute_positions(windows: torch.Tensor) -> torch.Tensor:
        return attention(embedding.projection(windows) + sinusoidal_position_table(16, D_MODEL))

    assert not torch.allclose(with_absolute_positions(moved)[:, 7:11], with_absolute_positions(first)[:, 4:8],
                              atol=1e-3)


def test_relative_attention_depends_on_order():
    """Reversing the window does not just reverse the output (it would for attention
    without positions, which is permutation-equivariant: checked with the tables zeroed)."""
    torch.manual_seed(0)
    embedding = build_embedding("relative", N_NEURONS, D_MODEL, SMALL)
    windows = torch.randn(2, 10, N_NEURONS)
    assert not torch.allclose(embedding(windows.flip(1)), embedding(windows).flip(1), atol=1e-3)
    with torch.no_grad():
        embedding.relative_attention.relative_key.zero_()
        embedding.relative_attention.relative_value.zero_()
    torch.testing.assert_close(embedding(windows.flip(1)), embedding(windows).flip(1), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("dataset", ["circle", "two_clusters"])
def test_laplacian_components_are_smallest_nonzero_laplacian_eigenvectors(dataset):
    frames = circle_frames(300, seed=0)[0] if dataset == "circle" else two_cluster_frames(seed=0)
    n_zero = 1 if dataset == "circle" else 2  # one zero eigenvalue per connected component
    eigenmap = LaplacianEigenmap(N_NEURONS, n_components=4, n_neighbors=10, max_reference_frames=3000)
    eigenmap.fit(frames, seed=0)
    weights = reference_graph(frames.astype(np.float64), n_neighbors=10)
    degrees = weights.sum(1)
    normalised = np.eye(len(frames)) - weights / np.sqrt(np.outer(degrees, degrees))
    eigenvalues = eigenmap.eigenvalues.numpy()
    np.testing.assert_allclose(eigenvalues, np.linalg.eigvalsh(normalised)[n_zero:n_zero + 4], atol=1e-6)
    assert eigenvalues.min() > 1e-6
    f = eigenmap.reference_embedding.numpy().astype(np.float64)
    # Belkin & Niyogi's generalised problem (D - W) f = lambda D f ...
    residual = (np.diag(degrees) - weights) @ f - degrees[:, None] * f * eigenvalues
    assert np.abs(residual).max() < 1e-5 * np.abs(degrees[:, None] * f).max()
    # ... equivalently L u = lambda u for u = D^1/2 f, the normalised Laplacian's eigenvectors
    u = np.sqrt(degrees)[:, None] * f
    np.testing.assert_allclose(normalised @ u, u * eigenvalues, atol=1e-5 * np.abs(u).max())
    assert np.abs(f.T @ degrees).max() < 1e-4 * np.abs(f).sum(0).max() * degrees.max()  # not the trivial one


def test_laplacian_recovers_the_angle_of_a_closed_curve_and_extends_to_new_frames():
    frames, angles = circle_frames(300, seed=0)
    embedding = build_embedding("laplacian", N_NEURONS, D_MODEL, SMALL)
    embedding.fit(frames, seed=0)
    eigenmap = embedding.reduction
    target = np.stack([np.cos(angles), np.sin(angles)], 1)
    assert explained_fraction(eigenmap.reference_embedding.numpy()[:, :2], target) > 0.99
    assert explained_fraction(PCA(2).fit_transform(frames), target) < 0.05  # PCA sees the 3rd harmonic
    # the extension reproduces the graph embedding at the training frames ...
    extended = eigenmap(torch.from_numpy(frames)).numpy()
    np.testing.assert_allclose(extended, eigenmap.reference_embedding.numpy(), atol=1e-4)
    # ... and maps new frames of the same curve to the angle through the same affine map
    new_frames, new_angles = circle_frames(0, seed=1, angles=np.random.default_rng(2).uniform(0, 2 * np.pi, 100))
    design = np.c_[eigenmap.reference_embedding.numpy()[:, :2], np.ones(len(frames))]
    coef = np.linalg.lstsq(design, target, rcond=None)[0]
    predicted = np.c_[eigenmap(torch.from_numpy(new_frames)).numpy()[:, :2], np.ones(100)] @ coef
    new_target = np.stack([np.cos(new_angles), np.sin(new_angles)], 1)
    assert ((predicted - new_target) ** 2).sum(1).mean() < 0.01


def test_laplacian_subsamples_reference_frames_by_seed():
    frames = circle_frames(300, seed=0)[0]

    def reference_rows(seed: int) -> np.ndarray:
        eigenmap = LaplacianEigenmap(N_NEURONS, n_components=4, n_neighbors=10, max_reference_frames=120)
        eigenmap.fit(frames, seed=seed)
        reference = eigenmap.reference_frames.numpy()
        rows = np.flatnonzero((frames[:, None, :] == reference[None]).all(-1).any(1))
        assert reference.shape == (120, N_NEURONS) and rows.size == 120
        return rows

    assert np.array_equal(reference_rows(0), reference_rows(0))
    assert not np.array_equal(reference_rows(0), reference_rows(1))


def sparse_code_frames() -> np.ndarray:
    """512 z-scored frames of 40 neurons, each a sum of ~2 of 16 unit atoms with exponential
    amplitudes, plus noise."""
    rng = np.random.default_rng(1)
    atoms = rng.normal(size=(16, 40))
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)
    codes = rng.exponential(1.0, size=(512, 16)) * (rng.uniform(size=(512, 16)) < 0.15)
    frames = codes @ atoms + 0.05 * rng.normal(size=(512, 40))
    return ((frames - frames.mean(0)) / frames.std(0)).astype(np.float32)


def test_sparse_autoencoder_codes_are_sparse_and_reconstruct():
    frames = sparse_code_frames()
    tensor = torch.from_numpy(frames)

    def fitted(l1: float) -> SparseAutoencoder:
        autoencoder = SparseAutoencoder(40, 16, l1=l1, epochs=40, lr=1e-2, batch_size=128)
        autoencoder.fit(frames, seed=0)
        return autoencoder

    sparse, dense = fitted(0.3), fitted(0.0)
    zeros_sparse, zeros_dense = ((ae(tensor) == 0).float().mean().item() for ae in (sparse, dense))
    assert zeros_sparse > 0.6 and zeros_sparse > zeros_dense + 0.3
    mean_predictor_mse = frames.var(0).mean()  # 1 (z-scored)
    mse = ((sparse.reconstruct(sparse(tensor)) - tensor) ** 2).mean().item()
    assert mse < 0.2 * mean_predictor_mse
    np.testing.assert_allclose(sparse.decoder_weight.norm(dim=0).numpy(), 1, rtol=1e-5)


def test_sparse_autoencoder_is_seeded_and_frozen():
    frames = sparse_code_frames()

    def encoder(seed: int) -> torch.Tensor:
        torch.manual_seed(seed + 100)  # the global RNG must not matter
        embedding = build_embedding("sparse_ae", 40, D_MODEL, SMALL)
        embedding.fit(frames, seed=seed)
        assert [name for name, _ in embedding.named_parameters()] == ["projection.weight", "projection.bias"]
        return embedding.reduction.encoder_weight

    assert torch.equal(encoder(0), encoder(0))
    assert not torch.allclose(encoder(0), encoder(1))


@pytest.mark.parametrize("strategy", ["laplacian", "sparse_ae"])
def test_unfitted_reduction_refuses_to_embed(strategy):
    with pytest.raises(RuntimeError, match="fit"):
        build_embedding(strategy, N_NEURONS, D_MODEL, SMALL)(torch.randn(1, 3, N_NEURONS))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_state_dict_round_trips_into_an_unfitted_module(strategy):
    frames = circle_frames(300, seed=0)[0]
    torch.manual_seed(0)
    trained = build_embedding(strategy, N_NEURONS, D_MODEL, SMALL)
    trained.fit(frames, seed=3)
    buffer = io.BytesIO()
    torch.save(trained.state_dict(), buffer)
    buffer.seek(0)
    torch.manual_seed(1)
    restored = build_embedding(strategy, N_NEURONS, D_MODEL, SMALL)
    restored.load_state_dict(torch.load(buffer, weights_only=True))
    restored_state = restored.state_dict()
    for name, value in trained.state_dict().items():
        assert torch.equal(restored_state[name], value), name
    windows = torch.from_numpy(frames[:60].reshape(4, 15, N_NEURONS))
    assert torch.equal(restored(windows), trained(windows))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_gradients_reach_the_input_windows(strategy):
    """d output / d input reaches every frame and is the true derivative: its product with a
    random direction matches a central finite difference (float64)."""
    frames = circle_frames(300, seed=0)[0]
    torch.manual_seed(0)
    embedding = build_embedding(strategy, N_NEURONS, D_MODEL, SMALL)
    embedding.fit(frames, seed=0)
    embedding.double()
    windows = torch.from_numpy(frames[[5, 80, 151, 230]].astype(np.float64))[None]
    windows = (windows + 0.01 * torch.randn_like(windows)).requires_grad_()
    output_weights, direction = torch.randn(1, 4, D_MODEL, dtype=torch.float64), torch.randn_like(windows)

    def objective(x: torch.Tensor) -> torch.Tensor:
        return (embedding(x) * output_weights).sum()

    objective(windows).backward()
    assert windows.grad.abs().sum(-1).min() > 0
    step = 1e-5
    with torch.no_grad():
        finite_difference = (objective(windows + step * direction) - objective(windows - step * direction)) / (2 * step)
    torch.testing.assert_close((windows.grad * direction).sum(), finite_difference, rtol=1e-5, atol=1e-7)


def test_relative_control_is_the_same_layer_without_relative_terms():
    """Capacity-matched control of Exp. 3: plain attention (permutation-equivariant) with the
    relative layer's parameters minus the two (2k + 1, d_z) tables."""
    from pipeline.models.embeddings import ShawRelativeSelfAttention

    torch.manual_seed(0)
    relative = ShawRelativeSelfAttention(16, 4, max_relative_distance=3)
    control = ShawRelativeSelfAttention(16, 4, max_relative_distance=3, relative=False)
    n_relative, n_control = (sum(p.numel() for p in m.parameters()) for m in (relative, control))
    assert n_relative - n_control == 2 * (2 * 3 + 1) * 4
    x, order = torch.randn(2, 6, 16), torch.tensor([5, 2, 0, 4, 1, 3])
    with torch.no_grad():
        torch.testing.assert_close(control(x[:, order]), control(x)[:, order])
        assert not torch.allclose(relative(x[:, order]), relative(x)[:, order], atol=1e-4)
