"""NEDS training throughput (tokens/s) vs a peer: torch.nn.TransformerEncoder of the same size.

Ours: one full training step of :class:`pipeline.neds.model.Neds` (per-sample masks,
stitchers, rotary attention, losses, AdamW). Peer: ``nn.TransformerEncoder`` (pre-norm,
same width, depth, heads, feed-forward width; no tokenisation, masks or rotary embeddings)
on the same number of tokens with an MSE loss. Tokens per trial: 5 modalities x 100 bins.

    .venv/bin/python bench/neds_throughput.py [--device cpu|cuda] [--steps 5] [--threads 2]
"""

from __future__ import annotations

import argparse
import time

import torch
from torch import nn

from pipeline.neds.config import MaskingParams, ModelParams
from pipeline.neds.masking import MODALITIES, sample_masks
from pipeline.neds.model import Neds, masked_losses

SIZES = {
    "demo": ModelParams(embed_dim=32, n_heads=2, n_layers=1, mlp_dim=64),
    "paper": ModelParams(embed_dim=256, n_heads=8, n_layers=6, mlp_dim=512, dropout=0.2, attention_dropout=0.4),
}
N_BINS, N_NEURONS = 100, 60


def batch(n_trials: int, device: torch.device) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    inputs = {"spikes": torch.poisson(torch.full((n_trials, N_BINS, N_NEURONS), 0.2), generator=g),
              "wheel_speed": torch.randn(n_trials, N_BINS, generator=g),
              "whisker_motion_energy": torch.randn(n_trials, N_BINS, generator=g),
              "choice": torch.randint(2, (n_trials,), generator=g), "block": torch.randint(3, (n_trials,), generator=g)}
    return {k: v.to(device) for k, v in inputs.items()}


def timed(step, steps: int, device: torch.device) -> float:
    step()  # warm-up
    if device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - start) / steps


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    tokens = args.batch * len(MODALITIES) * N_BINS
    for name, params in SIZES.items():
        torch.manual_seed(0)
        model = Neds(params, {"s": N_NEURONS}, N_BINS).to(device)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
        inputs, masking = batch(args.batch, device), MaskingParams()

        def ours() -> None:
            mask = sample_masks(args.batch, N_BINS, masking.schemes, masking.mask_ratio,
                                masking.single_behavior_probability, torch.Generator().manual_seed(1))
            loss = sum(masked_losses(model("s", inputs, mask), inputs, mask).values())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        layer = nn.TransformerEncoderLayer(params.embed_dim, params.n_heads, params.mlp_dim, params.dropout,
                                           activation="gelu", batch_first=True, norm_first=True)
        peer = nn.TransformerEncoder(layer, params.n_layers, enable_nested_tensor=False).to(device)
        peer_optimizer = torch.optim.AdamW(peer.parameters(), lr=1e-3)
        x = torch.randn(args.batch, len(MODALITIES) * N_BINS, params.embed_dim, device=device)

        def theirs() -> None:
            loss = (peer(x) ** 2).mean()
            peer_optimizer.zero_grad()
            loss.backward()
            peer_optimizer.step()

        ours_s, peer_s = timed(ours, args.steps, device), timed(theirs, args.steps, device)
        print(f"{name:5s} ({sum(p.numel() for p in model.parameters()):,} parameters) on {device}: "
              f"NEDS {tokens / ours_s:,.0f} tokens/s, nn.TransformerEncoder {tokens / peer_s:,.0f} tokens/s, "
              f"step time ours / peer {ours_s / peer_s:.2f}")


if __name__ == "__main__":
    main()
