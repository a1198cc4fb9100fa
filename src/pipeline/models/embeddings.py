"""The five input-embedding strategies of the NLP4Neuro decoders (paper Sec. 3.3, App. A.8)
and two controls that isolate them.

A window of neural activity (batch, seq_len, n_neurons), one normalised activity vector per
imaging frame, becomes a sequence of token embeddings (batch, seq_len, d_model) that a
transformer receives as ``inputs_embeds``. Every strategy ends in a trainable
``Linear(..., d_model)`` (:attr:`InputEmbedding.projection`) and is differentiable with
respect to the input windows (salience maps take d output / d input through it).

===============  ==========================================================================
strategy         tokens
===============  ==========================================================================
``linear``       ``projection(x)``: the paper's "no strategy" (a linear map to the first
                 transformer block).
``sinusoidal``   ``projection(x) + PE`` with the fixed sin/cos table of Vaswani et al.
                 (2017), absolute positions 0..seq_len-1.
``relative``     ``LayerNorm(h + RelAttn(h))``, ``h = projection(x)``: one multi-head
                 self-attention layer with the relative position representations of Shaw,
                 Uszkoreit & Vaswani (2018), eq. 3-5; no absolute position anywhere.
``laplacian``    ``projection(eigenmap(x))``: Laplacian eigenmaps (Belkin & Niyogi 2003) of
                 a heat-kernel kNN graph over training frames; frames outside the graph
                 (and all frames in ``forward``) go through the Nystrom out-of-sample
                 extension (Bengio et al. 2004).
``sparse_ae``    ``projection(relu(W_enc x + b_enc))``: the encoder of a sparse
                 autoencoder (Ng 2011; Cunningham et al. 2023) trained on training frames
                 with reconstruction + L1 sparsity, then frozen.
===============  ==========================================================================

Two controls isolate Experiment 3 (not strategies of the paper):
``linear_no_position`` is ``linear`` with the backbone's own positions removed, and
``relative_control`` is ``relative``'s extra attention layer without the relative terms
(capacity-matched: it lacks only the two (2k + 1, d_z) tables). With ``sinusoidal``,
``relative`` and both controls the backbone adds no position
(:data:`WITHOUT_BACKBONE_POSITION`, :mod:`pipeline.models.language`), so ``sinusoidal`` vs
``linear_no_position`` measures absolute position and ``relative`` vs ``relative_control``
the relative terms, each at equal capacity.

The ``laplacian`` and ``sparse_ae`` transforms are fitted once on the training frames
(:meth:`InputEmbedding.fit`) before the decoder is trained; everything they fit lives in
registered buffers, so ``state_dict()`` / ``load_state_dict()`` on a freshly built, unfitted
module round-trips exactly (``torch.load(..., weights_only=True)`` suffices).

References: Vaswani et al. (2017) Attention is all you need. Shaw, Uszkoreit & Vaswani (2018)
Self-attention with relative position representations, NAACL. Belkin & Niyogi (2003)
Laplacian eigenmaps for dimensionality reduction and data representation, Neural Comput.
15:1373. Bengio et al. (2004) Out-of-sample extensions for LLE, Isomap, MDS, Eigenmaps, and
Spectral Clustering, NIPS 16. Ng (2011) Sparse autoencoder, CS294A lecture notes. Cunningham
et al. (2023) Sparse autoencoders find highly interpretable features in language models.
"""

from __future__ import annotations

import logging
import math

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.csgraph
import torch
import torch.nn.functional as F
from torch import nn

from pipeline.models.config import EmbeddingParams, STRATEGIES
from pipeline.seeding import derive_seed

log = logging.getLogger(__name__)

#: strategies with which the backbone adds no position of its own (pipeline.models.language):
#: those that supply the token order themselves, and the two controls
WITHOUT_BACKBONE_POSITION = ("sinusoidal", "relative", "linear_no_position", "relative_control")


def _check_frames(frames: np.ndarray, n_neurons: int) -> np.ndarray:
    frames = np.asarray(frames)
    if frames.ndim != 2 or frames.shape[1] != n_neurons:
        raise ValueError(f"training frames must have shape (n_frames, {n_neurons}), got {frames.shape}")
    if not np.all(np.isfinite(frames)):
        raise ValueError("training frames contain NaN or infinite values")
    return frames


def sinusoidal_position_table(seq_len: int, d_model: int) -> torch.Tensor:
    """Vaswani et al. (2017) Sec. 3.5 / paper eq. 17-18, (seq_len, d_model) float32:
    ``PE[pos, 2i] = sin(pos / 10000^(2i/d_model))``, ``PE[pos, 2i+1] = cos(pos / 10000^(2i/d_model))``."""
    positions = torch.arange(seq_len, dtype=torch.float64)[:, None]
    even = torch.arange(0, d_model, 2, dtype=torch.float64)
    angles = positions / 10000.0 ** (even / d_model)  # (seq_len, ceil(d_model / 2))
    table = torch.zeros(seq_len, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.sin(angles)
    table[:, 1::2] = torch.cos(angles[:, : d_model // 2])
    return table.float()


class ShawRelativeSelfAttention(nn.Module):
    """Multi-head self-attention with relative position representations (Shaw et al. 2018),
    followed by a residual connection and layer norm: ``LayerNorm(h + W_O [z_1..z_H])``.

    Per head (d_z = d_model / n_heads), for query position i and key position j (eq. 3-5)::

        e_ij = (h_i W_Q) . (h_j W_K + a^K_ij) / sqrt(d_z)
        z_i  = sum_j softmax_j(e_ij) (h_j W_V + a^V_ij)
        a^K_ij = w^K[clip(j - i, -k, k)],  a^V_ij = w^V[clip(j - i, -k, k)]

    with learned tables w^K, w^V of shape (2k + 1, d_z) shared by the heads (as in Shaw et
    al.) and k = ``max_relative_distance``. Positions enter only through j - i, so the layer
    is equivariant to translations of the content except for the clipped counts at the
    sequence ends, and (unlike attention without positions) not to reversal. Every query
    attends to the whole window (no causal mask). With ``relative=False`` (the
    ``relative_control`` strategy) the tables and both relative terms are left out: plain
    multi-head self-attention, equivariant to any permutation of the tokens.
    """

    def __init__(self, d_model: int, n_heads: int, max_relative_distance: int, relative: bool = True) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.n_heads = n_heads
        self.head_dim = d_model // n_heads
        self.max_relative_distance = max_relative_distance
        self.query = nn.Linear(d_model, d_model, bias=False)
        self.key = nn.Linear(d_model, d_model, bias=False)
        self.value = nn.Linear(d_model, d_model, bias=False)
        self.output = nn.Linear(d_model, d_model)
        n_distances = 2 * max_relative_distance + 1
        self.relative = relative
        if relative:
            self.relative_key = nn.Parameter(torch.randn(n_distances, self.head_dim) * self.head_dim ** -0.5)
            self.relative_value = nn.Parameter(torch.randn(n_distances, self.head_dim) * self.head_dim ** -0.5)
        self.norm = nn.LayerNorm(d_model)

    def relative_distance_index(self, seq_len: int, device: torch.device) -> torch.Tensor:
        """(seq_len, seq_len) long: row i, column j holds clip(j - i, -k, k) + k."""
        positions = torch.arange(seq_len, device=device)
        offsets = positions[None, :] - positions[:, None]
        k = self.max_relative_distance
        return offsets.clamp(-k, k) + k

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """(batch, seq_len, d_model) -> (batch, seq_len, d_model)."""
        batch, seq_len, d_model = hidden.shape

        def heads(x: torch.Tensor) -> torch.Tensor:  # (batch, heads, seq_len, head_dim)
            return x.view(batch, seq_len, self.n_heads, self.head_dim).transpose(1, 2)

        q, k, v = heads(self.query(hidden)), heads(self.key(hidden)), heads(self.value(hidden))
        logits = q @ k.transpose(-1, -2)
        if self.relative:
            index = self.relative_distance_index(seq_len, hidden.device)
            a_key, a_value = self.relative_key[index], self.relative_value[index]  # (seq, seq, head_dim)
            logits = logits + torch.einsum("bhid,ijd->bhij", q, a_key)
        weights = (logits / math.sqrt(self.head_dim)).softmax(dim=-1)
        z = weights @ v
        if self.relative:
            z = z + torch.einsum("bhij,ijd->bhid", weights, a_value)
        z = z.transpose(1, 2).reshape(batch, seq_len, d_model)
        return self.norm(hidden + self.output(z))


class LaplacianEigenmap(nn.Module):
    """Laplacian eigenmaps (Belkin & Niyogi 2003) of training frames with a differentiable
    Nystrom out-of-sample extension; frames (..., n_neurons) -> (..., n_components).

    Graph (fit). Nodes are the reference frames r_1..r_n: the training frames, or
    ``max_reference_frames`` of them drawn without replacement (seeded) when there are more.
    With squared Euclidean distances d2(x, r_j), the neighbourhood of any frame x is its
    ``n_neighbors + 1`` nearest reference frames (a reference frame counts itself). The
    edge weight between a frame x and r_j is the heat kernel

        w(x, r_j) = exp(-d2(x, r_j) / t)  if r_j is in x's neighbourhood or x is in r_j's,
                    0                     otherwise,

    which on the reference frames is the symmetric (union) kNN graph, self-loops w_jj = 1
    included (the kernel evaluated at d2 = 0; Bengio et al. 2004 keep the diagonal so the
    extension is consistent). "x is in r_j's neighbourhood" means d2(x, r_j) below r_j's
    radius: the midpoint of r_j's (n_neighbors + 1)-th and (n_neighbors + 2)-th smallest
    squared distances to the references (the midpoint keeps the membership test robust to rounding).
    The bandwidth t (squared activity units) is the median over reference frames of the
    squared distance to their n_neighbors-th nearest other reference frame.

    Eigenvectors (fit). With D = diag(sum_j w_ij), the normalised Laplacian
    L = I - D^-1/2 W D^-1/2 has one zero eigenvalue per connected component of the graph;
    those are dropped and the eigenvectors u_1..u_m (m = ``n_components``) of the next m
    eigenvalues 0 < lambda_1 <= ... <= lambda_m are kept. The embedding of reference frame
    r_j is f(r_j) = c D^-1/2 u (Belkin & Niyogi's generalised eigenproblem
    (D - W) f = lambda D f), scaled by c = sqrt(n * mean degree) so that every component has
    unit degree-weighted mean square over the reference frames, and sign-fixed so its
    largest-magnitude entry is positive.

    Out-of-sample extension (forward). Since D^-1 W f = (1 - lambda) f on the graph, the
    Nystrom extension (Bengio et al. 2004, Sec. 4, random-walk form) of a frame x is

        f_k(x) = 1 / (1 - lambda_k) * sum_j p_j(x) f_k(r_j),   p_j(x) = w(x, r_j) / sum_l w(x, r_l),

    computed as a masked softmax of -d2(x, r_j) / t, differentiable in x (the neighbourhood
    mask is piecewise constant). It reproduces f(r_j) for x = r_j; all frames, training
    frames included, go through it in ``forward``, so training and test frames are embedded
    by the same function.

    Buffers: ``reference_frames`` (n, n_neurons), ``reference_radius_sq`` (n,),
    ``bandwidth`` (), ``reference_embedding`` (n, n_components), ``eigenvalues``
    (n_components,). n is 0 until :meth:`fit`; loading a state dict resizes them.
    """

    _fitted_shape_buffers = ("reference_frames", "reference_radius_sq", "reference_embedding")

    def __init__(self, n_neurons: int, n_components: int, n_neighbors: int, max_reference_frames: int) -> None:
        super().__init__()
        self.n_neurons = n_neurons
        self.n_components = n_components
        self.n_neighbors = n_neighbors
        self.max_reference_frames = max_reference_frames
        self.register_buffer("reference_frames", torch.zeros(0, n_neurons))
        self.register_buffer("reference_radius_sq", torch.zeros(0))
        self.register_buffer("bandwidth", torch.ones(()))
        self.register_buffer("reference_embedding", torch.zeros(0, n_components))
        self.register_buffer("eigenvalues", torch.zeros(n_components))

    @property
    def is_fitted(self) -> bool:
        return self.reference_frames.shape[0] > 0

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys,
                              unexpected_keys, error_msgs) -> None:
        for name in self._fitted_shape_buffers:
            saved = state_dict.get(prefix + name)
            if saved is not None:
                current = self._buffers[name]
                self._buffers[name] = torch.empty(saved.shape, dtype=current.dtype, device=current.device)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys,
                                      unexpected_keys, error_msgs)

    def _squared_distances(self, frames: torch.Tensor, reference: torch.Tensor) -> torch.Tensor:
        sq = (frames * frames).sum(-1, keepdim=True) + (reference * reference).sum(-1) - 2 * frames @ reference.T
        return sq.clamp_min(0)

    def _radius_sq(self, squared_distances: torch.Tensor) -> torch.Tensor:
        nearest = torch.topk(squared_distances, self.n_neighbors + 2, dim=-1, largest=False).values
        return 0.5 * (nearest[..., -2] + nearest[..., -1])

    def _kernel_logits(self, squared_distances: torch.Tensor, reference_radius_sq: torch.Tensor,
                       bandwidth: torch.Tensor) -> torch.Tensor:
        """log w(x, r_j) from d2(x, r_j) (n_frames, n_reference): -d2 / t on graph edges, -inf elsewhere."""
        with torch.no_grad():
            radius_sq = self._radius_sq(squared_distances)
            edge = squared_distances < torch.maximum(radius_sq[:, None], reference_radius_sq[None, :])
        return (-squared_distances / bandwidth).masked_fill(~edge, -math.inf)

    def fit(self, train_frames: np.ndarray, seed: int) -> None:
        """Build the graph over (a seeded subsample of) ``train_frames`` (n_frames,
        n_neurons) and store its first ``n_components`` non-trivial eigenvectors."""
        frames = _check_frames(train_frames, self.n_neurons)
        if frames.shape[0] > self.max_reference_frames:
            rng = np.random.default_rng(derive_seed(seed, "laplacian_reference_frames"))
            frames = frames[np.sort(rng.choice(frames.shape[0], self.max_reference_frames, replace=False))]
        n = frames.shape[0]
        if n < self.n_neighbors + 2:
            raise ValueError(f"Laplacian eigenmaps need at least n_neighbors + 2 = {self.n_neighbors + 2} "
                             f"training frames, got {n}")
        reference = torch.from_numpy(np.ascontiguousarray(frames, dtype=np.float64))
        squared_distances = self._squared_distances(reference, reference)
        squared_distances = 0.5 * (squared_distances + squared_distances.T)
        squared_distances.fill_diagonal_(0)
        radius_sq = self._radius_sq(squared_distances)
        kth_neighbour_sq = torch.topk(squared_distances, self.n_neighbors + 1, dim=-1, largest=False).values[:, -1]
        bandwidth = kth_neighbour_sq.quantile(0.5)
        if not bandwidth > 0:
            raise ValueError("Laplacian eigenmaps: the training frames are (nearly) all duplicates "
                             "(median distance to the n_neighbors-th nearest frame is 0)")
        weights = self._kernel_logits(squared_distances, radius_sq, bandwidth).exp().numpy()
        degrees = weights.sum(1)
        inv_sqrt_degrees = 1 / np.sqrt(degrees)
        laplacian = np.eye(n) - inv_sqrt_degrees[:, None] * weights * inv_sqrt_degrees[None, :]
        n_graph_components = scipy.sparse.csgraph.connected_components(
            scipy.sparse.csr_matrix(weights), directed=False)[0]
        if n_graph_components > 1:
            log.warning("Laplacian eigenmaps: the kNN graph over %d frames has %d connected components; "
                        "their %d zero eigenvalues are dropped", n, n_graph_components, n_graph_components)
        last = n_graph_components + self.n_components - 1
        if last >= n:
            raise ValueError(f"Laplacian eigenmaps: the graph has only {n - n_graph_components} non-zero "
                             f"eigenvalues, fewer than n_components = {self.n_components}")
        eigenvalues, eigenvectors = scipy.linalg.eigh(laplacian, subset_by_index=[n_graph_components, last])
        if eigenvalues[-1] >= 1 - 1e-6:
            raise ValueError(f"Laplacian eigenmaps: eigenvalue {eigenvalues[-1]:.4f} >= 1 makes the Nystrom "
                             "extension 1/(1 - lambda) undefined; lower n_components or raise n_neighbors")
        embedding = np.sqrt(n * degrees.mean()) * inv_sqrt_degrees[:, None] * eigenvectors
        largest = np.abs(embedding).argmax(0)
        embedding *= np.sign(embedding[largest, np.arange(self.n_components)])

        def buffer(values) -> torch.Tensor:  # a contiguous copy, owned by the module
            values = np.array(values, order="C")
            return torch.tensor(values, dtype=self.eigenvalues.dtype, device=self.eigenvalues.device)

        self.reference_frames = buffer(frames)
        self.reference_radius_sq = buffer(radius_sq.numpy())
        self.bandwidth = buffer(bandwidth.numpy())
        self.reference_embedding = buffer(embedding)
        self.eigenvalues = buffer(eigenvalues)
        log.info("Laplacian eigenmaps: %d reference frames, bandwidth %.4g, eigenvalues %.4g..%.4g",
                 n, float(bandwidth), eigenvalues[0], eigenvalues[-1])

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """(..., n_neurons) -> (..., n_components) by the Nystrom extension."""
        if not self.is_fitted:
            raise RuntimeError("LaplacianEigenmap.fit must be called (or a fitted state dict loaded) first")
        flat = frames.reshape(-1, self.n_neurons)
        squared_distances = self._squared_distances(flat, self.reference_frames)
        logits = self._kernel_logits(squared_distances, self.reference_radius_sq, self.bandwidth)
        embedded = logits.softmax(dim=-1) @ self.reference_embedding / (1 - self.eigenvalues)
        return embedded.reshape(*frames.shape[:-1], self.n_components)


class SparseAutoencoder(nn.Module):
    """Sparse autoencoder (Ng 2011; Cunningham et al. 2023) whose frozen encoder embeds
    frames: (..., n_neurons) -> codes (..., n_components), ``relu(x W_enc^T + b_enc)``.

    Fit on training frames x (n_frames, n_neurons) by minimising, with Adam over shuffled
    minibatches,

        mean_frames,neurons (x_hat - x)^2 + l1 * mean_frames,codes |code|,
        code = relu(x W_enc^T + b_enc),  x_hat = code W_dec^T + b_dec,

    with the decoder's columns (dictionary atoms) renormalised to unit norm after every step
    so that the L1 penalty cannot be evaded by shrinking codes and growing the decoder
    (Cunningham et al. 2023, Sec. 2). Initialisation: W_dec random unit columns, W_enc =
    W_dec^T, b_enc = 0, b_dec = the training-frame mean. Initialisation and batch order come
    from ``seed`` only (a private torch.Generator), so a fit is deterministic on a device.

    The weights are buffers (never trained by the decoder's optimiser); ``forward`` is
    differentiable with respect to its input. Buffers: ``encoder_weight`` (n_components,
    n_neurons), ``encoder_bias`` (n_components,), ``decoder_weight`` (n_neurons,
    n_components), ``decoder_bias`` (n_neurons,), ``fitted`` (bool).
    """

    def __init__(self, n_neurons: int, n_components: int, l1: float, epochs: int, lr: float,
                 batch_size: int) -> None:
        super().__init__()
        self.n_neurons = n_neurons
        self.n_components = n_components
        self.l1 = l1
        self.epochs = epochs
        self.lr = lr
        self.batch_size = batch_size
        self.register_buffer("encoder_weight", torch.zeros(n_components, n_neurons))
        self.register_buffer("encoder_bias", torch.zeros(n_components))
        self.register_buffer("decoder_weight", torch.zeros(n_neurons, n_components))
        self.register_buffer("decoder_bias", torch.zeros(n_neurons))
        self.register_buffer("fitted", torch.zeros((), dtype=torch.bool))

    def fit(self, train_frames: np.ndarray, seed: int) -> None:
        frames_np = _check_frames(train_frames, self.n_neurons)
        device, dtype = self.encoder_weight.device, self.encoder_weight.dtype
        frames = torch.as_tensor(frames_np, dtype=dtype, device=device)
        generator = torch.Generator().manual_seed(derive_seed(seed, "sparse_autoencoder"))
        decoder_weight = torch.randn(self.n_neurons, self.n_components, generator=generator, dtype=dtype)
        decoder_weight = (decoder_weight / decoder_weight.norm(dim=0)).to(device).requires_grad_()
        encoder_weight = decoder_weight.detach().T.clone().requires_grad_()
        encoder_bias = torch.zeros(self.n_components, dtype=dtype, device=device, requires_grad=True)
        decoder_bias = frames.mean(0).clone().requires_grad_()
        optimiser = torch.optim.Adam([encoder_weight, encoder_bias, decoder_weight, decoder_bias], lr=self.lr)
        n_frames = frames.shape[0]
        for _ in range(self.epochs):
            order = torch.randperm(n_frames, generator=generator).to(device)
            for start in range(0, n_frames, self.batch_size):
                batch = frames[order[start:start + self.batch_size]]
                codes = F.relu(F.linear(batch, encoder_weight, encoder_bias))
                reconstruction_loss = F.mse_loss(F.linear(codes, decoder_weight, decoder_bias), batch)
                loss = reconstruction_loss + self.l1 * codes.abs().mean()
                optimiser.zero_grad()
                loss.backward()
                optimiser.step()
                with torch.no_grad():
                    decoder_weight /= decoder_weight.norm(dim=0).clamp_min(1e-12)
        with torch.no_grad():
            self.encoder_weight.copy_(encoder_weight)
            self.encoder_bias.copy_(encoder_bias)
            self.decoder_weight.copy_(decoder_weight)
            self.decoder_bias.copy_(decoder_bias)
            self.fitted.fill_(True)
            codes = self(frames)
            mse = F.mse_loss(self.reconstruct(codes), frames).item()
            log.info("sparse autoencoder: reconstruction MSE %.4g (frame variance %.4g), "
                     "%.1f%% of codes exactly zero", mse, frames.var(0).mean().item(),
                     100 * (codes == 0).float().mean().item())

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        """(..., n_neurons) -> codes (..., n_components)."""
        if not bool(self.fitted):
            raise RuntimeError("SparseAutoencoder.fit must be called (or a fitted state dict loaded) first")
        return F.relu(F.linear(frames, self.encoder_weight, self.encoder_bias))

    def reconstruct(self, codes: torch.Tensor) -> torch.Tensor:
        """Decoder: codes (..., n_components) -> frames (..., n_neurons)."""
        return F.linear(codes, self.decoder_weight, self.decoder_bias)


class InputEmbedding(nn.Module):
    """Maps windows of neural activity (batch, seq_len, n_neurons) float32 -> token
    embeddings (batch, seq_len, d_model) for a transformer's ``inputs_embeds``.

    Submodules: ``reduction`` (:class:`LaplacianEigenmap` / :class:`SparseAutoencoder` for
    ``laplacian`` / ``sparse_ae``, else None), ``projection`` (trainable Linear to d_model),
    ``relative_attention`` (:class:`ShawRelativeSelfAttention` for ``relative``, else None).
    Build it with :func:`build_embedding`.
    """

    def __init__(self, strategy: str, n_neurons: int, d_model: int, params: EmbeddingParams) -> None:
        super().__init__()
        if strategy not in STRATEGIES:
            raise ValueError(f"unknown embedding strategy {strategy!r}; expected one of {STRATEGIES}")
        self.strategy = strategy
        self.n_neurons = n_neurons
        self.d_model = d_model
        self.reduction: LaplacianEigenmap | SparseAutoencoder | None = None
        if strategy == "laplacian":
            self.reduction = LaplacianEigenmap(n_neurons, params.n_components, params.n_neighbors,
                                               params.max_reference_frames)
        elif strategy == "sparse_ae":
            self.reduction = SparseAutoencoder(n_neurons, params.n_components, params.sparse_ae_l1,
                                               params.sparse_ae_epochs, params.sparse_ae_lr,
                                               params.sparse_ae_batch_size)
        self.projection = nn.Linear(params.n_components if self.reduction is not None else n_neurons, d_model)
        self.relative_attention = (
            ShawRelativeSelfAttention(d_model, params.n_heads, params.max_relative_distance,
                                      relative=strategy == "relative")
            if strategy in ("relative", "relative_control") else None
        )

    @property
    def without_backbone_position(self) -> bool:
        """True when the backbone must add no position (:data:`WITHOUT_BACKBONE_POSITION`)."""
        return self.strategy in WITHOUT_BACKBONE_POSITION

    def fit(self, train_frames: np.ndarray, seed: int) -> None:
        """Fit the fixed transform on the normalised training frames (n_train_frames,
        n_neurons); call once before training. Nothing is fitted for ``linear``,
        ``sinusoidal`` and ``relative`` (the frames are only checked)."""
        _check_frames(train_frames, self.n_neurons)
        if self.reduction is not None:
            self.reduction.fit(train_frames, seed)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        """(batch, seq_len, n_neurons) -> (batch, seq_len, d_model)."""
        if windows.ndim != 3 or windows.shape[-1] != self.n_neurons:
            raise ValueError(f"windows must have shape (batch, seq_len, {self.n_neurons}), got {tuple(windows.shape)}")
        features = windows if self.reduction is None else self.reduction(windows)
        tokens = self.projection(features)
        if self.strategy == "sinusoidal":
            tokens = tokens + sinusoidal_position_table(windows.shape[1], self.d_model).to(tokens)
        elif self.relative_attention is not None:
            tokens = self.relative_attention(tokens)
        return tokens


def build_embedding(strategy: str, n_neurons: int, d_model: int, params: EmbeddingParams) -> InputEmbedding:
    """The input embedding ``strategy`` (one of :data:`pipeline.models.config.STRATEGIES`) from n_neurons to d_model;
    unknown strategies raise ValueError naming them. Trainable weights are initialised from
    torch's global RNG; the fitted transforms from the ``seed`` given to ``fit``."""
    return InputEmbedding(strategy, n_neurons, d_model, params)
