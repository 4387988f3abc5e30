"""LRCN's action classifier: an LSTM reads one frame embedding per step and names the action of the
clip."""

from __future__ import annotations

import torch
from torch import nn

from helpers.data.vocabulary import SPECIALS


class ActionLSTM(nn.Module):
    """LRCN's classifier: an LSTM reads one frame embedding per step; the class comes from its output
    at the last step (or the mean over steps, as LRCN does)."""

    def __init__(
        self,
        embedding_size: int = 256,
        hidden_layer_size: int = 256,
        classes: int = 10,
        num_layers: int = 1,
        pool: str = "last",
    ) -> None:
        super().__init__()
        self.lstm_layer = nn.LSTM(embedding_size, hidden_layer_size, num_layers, batch_first=True)
        self.linear_layer = nn.Linear(hidden_layer_size, classes)
        self.pool = pool

    def forward(self, features: torch.Tensor, captions=None, lengths=None) -> torch.Tensor:
        """Class logits (B, classes) from frame embeddings (B, T, E); the training loop passes the
        labels as one-word captions, which the classifier does not read."""
        frames = features.unsqueeze(1) if features.dim() == 2 else features
        hiddens, _ = self.lstm_layer(frames)
        # Only the last step has seen the whole clip: with pool="mean" the first steps, which have
        # seen one frame, vote as much as it does.
        summary = hiddens[:, -1] if self.pool == "last" else hiddens.mean(1)
        return self.linear_layer(summary)

    @torch.no_grad()
    def predict(self, features: torch.Tensor) -> torch.Tensor:
        """The most likely class id of each clip (never <pad>, <start>, <end> or <unk>)."""
        return self(features)[:, len(SPECIALS) :].argmax(1) + len(SPECIALS)
