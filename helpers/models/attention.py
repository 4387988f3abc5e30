"""Show, Attend and Tell (Xu et al. 2015): a grid of image features, and a decoder that chooses
where to look before each word. The same calls as the chapter's decoder (helpers.models.cnn_lstm)."""

from __future__ import annotations

import math
import os

import torch
from torch import nn

from helpers.models.backbones import GridFeatures, build_backbone, grid_features
from helpers.models.decoding import beam_search, sum_until_end

START, END = 1, 2  # the vocabulary's <start> and <end> ids (helpers.data.vocabulary)


class GridEncoder(nn.Module):
    """Encoder: the chapter's CNN without its final pooling, so the decoder sees where things are."""

    def __init__(
        self,
        backbone: str = "resnet152",
        weights: str | os.PathLike | None = "IMAGENET1K_V1",
        freeze: bool = True,
        grid: int = 0,
    ) -> None:
        super().__init__()
        self.backbone = build_backbone(backbone, weights)
        self.freeze, self.grid = freeze, grid
        if freeze:
            self.backbone.requires_grad_(False)
        with torch.no_grad():  # the channels C of the grid: a small image tells
            probe = grid_features(self.backbone.eval(), torch.zeros(1, 3, 64, 64))
        self.out_features = probe.size(-1)

    def train(self, mode: bool = True) -> GridEncoder:
        super().train(mode)
        if self.freeze:
            self.backbone.eval()  # as CNNModel: frozen BatchNorm statistics must not drift
        return self

    def feature_extractor(self) -> tuple[nn.Module, str]:
        """What the feature cache runs once per image, and the kind of output it stores."""
        return GridFeatures(self.backbone, self.grid), f"grid{self.grid or ''}"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W), or cached grids (B, L, C), to grids (B, L, C)."""
        if images.dim() == 3:  # from the feature cache: the backbone already ran
            return images
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
            return grid_features(self.backbone, images, self.grid)


def with_places(features: torch.Tensor) -> torch.Tensor:
    """Each place's features (B, L, C) followed by its x and y in [-1, 1]: (B, L, C + 2).

    A feature vector says what is there, hardly where; with its coordinates the context also tells
    the decoder where it looked ("on the left", the first of two shapes).
    """
    side = math.isqrt(features.size(1))
    line = torch.linspace(-1, 1, side, device=features.device, dtype=features.dtype)
    ys, xs = torch.meshgrid(line, line, indexing="ij")
    places = torch.stack([xs.flatten(), ys.flatten()], -1).expand(features.size(0), -1, -1)
    return torch.cat([features, places], -1)


class SoftAttention(nn.Module):
    """Additive attention: alpha = softmax over the grid of w^T tanh(W_f f_i + W_h h)."""

    def __init__(self, feature_size: int, hidden_size: int, attention_size: int) -> None:
        super().__init__()
        self.feature_layer = nn.Linear(feature_size, attention_size)  # W_f
        self.hidden_layer = nn.Linear(hidden_size, attention_size)  # W_h
        self.score_layer = nn.Linear(attention_size, 1)  # w

    def forward(
        self, features: torch.Tensor, projected: torch.Tensor, h: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The context (B, C), a weighted mean of the grid, and its weights alpha (B, L)."""
        # `projected` is feature_layer(features), computed once per image, not once per word.
        scores = self.score_layer(torch.tanh(projected + self.hidden_layer(h).unsqueeze(1)))
        alpha = scores.squeeze(-1).softmax(-1)
        context = torch.bmm(alpha.unsqueeze(1), features).squeeze(1)  # sum of alpha_i f_i
        return context, alpha


class AttentionDecoder(nn.Module):
    """Decoder: before each word, look at the grid (soft attention), then an LSTM step.

    Input at step t: the previous word's embedding and the gated context. Like the chapter's
    decoder it predicts <start> first (from <start>) and is trained on the same packed targets.
    """

    def __init__(
        self,
        feature_size: int,
        embedding_size: int = 256,
        hidden_layer_size: int = 512,
        vocabulary_size: int = 10,
        max_seq_len: int = 20,
        attention_size: int = 256,
        gate: bool = True,
        places: bool = True,
    ) -> None:
        super().__init__()
        self.embedding_layer = nn.Embedding(vocabulary_size, embedding_size)
        self.gate, self.places = gate, places  # both off: what an ablation takes away
        feature_size += 2 if places else 0  # each place's coordinates (with_places)
        self.attention = SoftAttention(feature_size, hidden_layer_size, attention_size)
        self.init_h = nn.Linear(feature_size, hidden_layer_size)  # h0 and c0 from the mean feature
        self.init_c = nn.Linear(feature_size, hidden_layer_size)
        # beta: one number, how much to look (none without the gate: DDP refuses unused weights)
        self.gate_layer = nn.Linear(hidden_layer_size, 1) if gate else None
        self.lstm_cell = nn.LSTMCell(embedding_size + feature_size, hidden_layer_size)
        self.linear_layer = nn.Linear(hidden_layer_size, vocabulary_size)
        self.max_seq_len = max_seq_len
        self.alphas: torch.Tensor | None = None  # (B, T, L) of the last forward, for the penalty

    def start_state(self, features: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """h0 and c0 from the mean of the grid; the grid and its projection ride along."""
        features = with_places(features) if self.places else features
        mean = features.mean(1)
        h, c = torch.tanh(self.init_h(mean)), torch.tanh(self.init_c(mean))
        return h, c, features, self.attention.feature_layer(features)

    def attend_and_step(self, tokens: torch.Tensor, state: tuple) -> tuple:
        """One word: attend with h, feed [word embedding, gated context]; logits, state, alpha."""
        h, c, features, projected = state
        context, alpha = self.attention(features, projected, h)
        if self.gate:
            context = torch.sigmoid(self.gate_layer(h)) * context  # the paper's beta, (B, 1)
        inputs = torch.cat([self.embedding_layer(tokens), context], -1)
        h, c = self.lstm_cell(inputs, (h, c))
        return self.linear_layer(h), (h, c, features, projected), alpha

    def forward(self, features: torch.Tensor, captions: torch.Tensor, lengths) -> torch.Tensor:
        """Logits for the packed targets, as LSTMModel.forward; keeps the weights in self.alphas."""
        # The word before caption word t: <start> before the first, as at inference.
        inputs = torch.cat([torch.full_like(captions[:, :1], START), captions[:, :-1]], 1)
        lengths = torch.as_tensor(lengths, dtype=torch.int64, device="cpu")
        if (lengths[:-1] < lengths[1:]).any():
            raise ValueError("captions must come longest first, as the loader's collate sorts them")
        state = self.start_state(features)
        logits, alphas = [], []
        for t in range(int(lengths[0])):  # the longest caption's length
            # Step t only for the captions still running: the batch is sorted longest first, so
            # they are its first n rows, and packed targets list them in that order (step t's
            # rows, then step t+1's). Padding costs nothing and looks nowhere.
            n = int((lengths > t).sum())
            state = tuple(part[:n] for part in state)
            out, state, alpha = self.attend_and_step(inputs[:n, t], state)
            logits.append(out)
            alphas.append(nn.functional.pad(alpha, (0, 0, 0, captions.size(0) - n)))
        self.alphas = torch.stack(alphas, 1)  # (B, T, L)
        return torch.cat(logits)

    def penalty(self, weight: float = 1.0) -> torch.Tensor:
        """The doubly stochastic regulariser: each place's attention, summed over words, near 1."""
        return weight * ((1 - self.alphas.sum(1)) ** 2).mean()

    def start(self, features: torch.Tensor) -> tuple[torch.Tensor, tuple, torch.Tensor]:
        """Step t=0 of decoding, from <start>: log-probabilities, state and attention weights."""
        state = self.start_state(features)
        tokens = torch.full((features.size(0),), START, dtype=torch.long, device=features.device)
        return self.step(tokens, state)

    def step(self, tokens: torch.Tensor, state: tuple) -> tuple[torch.Tensor, tuple, torch.Tensor]:
        """One more word (ids (N,)): the next word's log-probabilities, the state, the weights."""
        logits, state, alpha = self.attend_and_step(tokens, state)
        return logits.log_softmax(-1), state, alpha

    @staticmethod
    def reorder(state: tuple, index: torch.Tensor) -> tuple:
        """The states of the rows `index` (beam search keeps some beams, drops others)."""
        return tuple(part[index] for part in state)  # batch first: (N, ...)

    @torch.no_grad()
    def sample(self, features: torch.Tensor, return_attention: bool = False):
        """Greedy decoding for `max_seq_len` steps: ids (B, T), and the weights (B, T, L) if asked."""
        logp, state, alpha = self.start(features)
        ids, alphas = [logp.argmax(-1)], [alpha]
        for _ in range(1, self.max_seq_len):
            logp, state, alpha = self.step(ids[-1], state)
            ids.append(logp.argmax(-1))
            alphas.append(alpha)
        ids = torch.stack(ids, 1)
        return (ids, torch.stack(alphas, 1)) if return_attention else ids

    def beam_search(
        self,
        features: torch.Tensor,
        beam_size: int = 3,
        length_penalty: float = 0.0,
        end_id: int = END,
        record: list | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Batched beam search (helpers.models.decoding.beam_search): ids, scores and attention weights."""
        return beam_search(self, features, beam_size, length_penalty, end_id, record)

    @torch.no_grad()
    def log_probability(
        self, features: torch.Tensor, ids: torch.Tensor, end_id: int = END
    ) -> torch.Tensor:
        """Summed log-probability of each caption in `ids` up to and including its first <end>."""
        lengths = [ids.size(1)] * ids.size(0)
        logits = self(features, ids, lengths).view(ids.size(1), ids.size(0), -1).transpose(0, 1)
        return sum_until_end(logits.log_softmax(-1), ids, end_id)


# --- Looking at the weights: heat-maps and the pointing game -----------------------------------
