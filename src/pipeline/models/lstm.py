"""LSTM decoder (NLP4Neuro paper seed 000, App. A Eq. 4-7): PyTorch's single-layer LSTM over
the window's neural vectors, and a linear head per time step. Trained with Adam."""

from __future__ import annotations


import torch
from torch import nn

from pipeline.data.windows import N_TAIL_SEGMENTS
from pipeline.models.config import LstmParams


class LstmDecoder(nn.Module):
    """windows (batch, seq_len, neurons) -> tail angles (batch, seq_len, 6)."""

    closed_form = False

    def __init__(self, n_neurons: int, params: LstmParams, seed: int) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.lstm = nn.LSTM(n_neurons, params.hidden_size, num_layers=1, batch_first=True)
        self.dropout = nn.Dropout(params.dropout)
        self.head = nn.Linear(params.hidden_size, N_TAIL_SEGMENTS)

    def forward(self, windows: torch.Tensor) -> torch.Tensor:
        hidden, _ = self.lstm(windows)
        return self.head(self.dropout(hidden))
