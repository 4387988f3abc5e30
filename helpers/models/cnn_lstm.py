"""The two networks of the chapter: a CNN encoder (image -> embedding) and an LSTM decoder (->
words)."""

from __future__ import annotations

import os

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from helpers.models.backbones import build_backbone
from helpers.models.decoding import beam_search, sum_until_end


class CNNModel(nn.Module):
    """Encoder: backbone features -> Linear -> BatchNorm1d, the image embedding fed to the LSTM at t=0."""

    def __init__(
        self,
        embedding_size: int = 256,
        backbone: str = "resnet152",
        weights: str | os.PathLike | None = "IMAGENET1K_V1",
        freeze: bool = True,
        streams: int = 1,
    ) -> None:
        super().__init__()
        self.backbone = build_backbone(backbone, weights)
        self.freeze = freeze
        if freeze:
            self.backbone.requires_grad_(False)
        # Video with motion: each frame's features and its difference's (helpers.data.clip_cache), side by side.
        self.streams = streams
        self.linear_layer = nn.Linear(self.backbone.out_features * streams, embedding_size)
        self.batch_norm = nn.BatchNorm1d(embedding_size, momentum=0.01)

    def train(self, mode: bool = True) -> CNNModel:
        super().train(mode)
        if self.freeze:
            # A frozen backbone stays in eval mode: under no_grad its BatchNorm statistics would still
            # drift in train mode, which the source's loop lets happen.
            self.backbone.eval()
        return self

    def feature_extractor(self) -> tuple[nn.Module, str]:
        """What the feature cache runs once per image, and the kind of output it stores."""
        return self.backbone, "vector"

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W), or the backbone's cached features (B, F), to embeddings (B, E).

        A video's frames (B, T, 3, H, W), or their cached features (B, T, F), go through the same
        CNN as B*T images and come out as one embedding per frame (B, T, E).
        """
        if images.dim() in (3, 5):
            b, t = images.shape[:2]
            return self(images.flatten(0, 1)).view(b, t, -1)
        if images.dim() == 2:  # features from helpers.data.features: the backbone already ran
            features = images
        elif self.streams > 1:
            raise ValueError(
                "a motion model takes clip features (helpers.data.clip_cache.clip_features)"
            )
        elif self.freeze:
            with torch.no_grad():
                features = self.backbone(images)
        else:
            features = self.backbone(images)
        return self.batch_norm(self.linear_layer(features.flatten(1)))


class LSTMModel(nn.Module):
    """Decoder: the image embedding at t=0, then each word's embedding; predicts the next word."""

    def __init__(
        self,
        embedding_size: int = 256,
        hidden_layer_size: int = 512,
        vocabulary_size: int = 10,
        num_layers: int = 1,
        max_seq_len: int = 20,
        forget_bias: float = 2.0,
    ) -> None:
        super().__init__()
        self.embedding_layer = nn.Embedding(vocabulary_size, embedding_size)
        self.lstm_layer = nn.LSTM(embedding_size, hidden_layer_size, num_layers, batch_first=True)
        self.linear_layer = nn.Linear(hidden_layer_size, vocabulary_size)
        self.max_seq_len = max_seq_len
        # The image arrives once, at t=0, and must outlive the words that follow: with the forget
        # gates starting open the LSTM keeps it from the first step (the source leaves them at 0).
        init_forget_gate_bias(self.lstm_layer, forget_bias)

    def forward(self, features: torch.Tensor, captions: torch.Tensor, lengths) -> torch.Tensor:
        """Logits for the packed targets: row k scores the k-th word of `pack_padded_sequence(captions)`.

        `features` is the image embedding (B, E), or one embedding per video frame (B, T, E): the
        frames go in at t = 0..T-1, then the words follow. The chapter's model is the case T = 1.
        """
        frames = features.unsqueeze(1) if features.dim() == 2 else features
        embeddings = self.embedding_layer(captions)
        embeddings = torch.cat((frames, embeddings), 1)
        # Lengths must live on the CPU for packing, even when the model runs on CUDA.
        lengths = torch.as_tensor(lengths, dtype=torch.int64, device="cpu")
        t = frames.size(1)
        packed = pack_padded_sequence(embeddings, lengths + (t - 1), batch_first=True)
        hiddens, _ = self.lstm_layer(packed)
        if t > 1:  # a video: the outputs before the last frame predict nothing, drop them
            padded, _ = pad_packed_sequence(hiddens, batch_first=True)
            hiddens = pack_padded_sequence(padded[:, t - 1 :], lengths, batch_first=True)
        return self.linear_layer(hiddens.data)

    @torch.no_grad()
    def sample(self, features: torch.Tensor, states=None) -> torch.Tensor:
        """Greedy decoding, as the source: the most likely word at each step, `max_seq_len` steps."""
        sampled = []
        inputs = features.unsqueeze(1) if features.dim() == 2 else features  # video: all frames
        for _ in range(self.max_seq_len):
            hiddens, states = self.lstm_layer(inputs, states)
            outputs = self.linear_layer(hiddens[:, -1])
            predicted = outputs.argmax(1)
            sampled.append(predicted)
            inputs = self.embedding_layer(predicted).unsqueeze(1)
        return torch.stack(sampled, 1)

    def start(self, features: torch.Tensor) -> tuple[torch.Tensor, tuple, None]:
        """The image (or every frame) goes in; the first word's log-probabilities and the state."""
        outputs, state = self.lstm_layer(features.unsqueeze(1) if features.dim() == 2 else features)
        return self.linear_layer(outputs[:, -1]).log_softmax(-1), state, None

    def step(self, tokens: torch.Tensor, state: tuple) -> tuple[torch.Tensor, tuple, None]:
        """One more word: the previous words' ids (N,) in; the next word's log-probabilities out."""
        outputs, state = self.lstm_layer(self.embedding_layer(tokens).unsqueeze(1), state)
        return self.linear_layer(outputs.squeeze(1)).log_softmax(-1), state, None

    @staticmethod
    def reorder(state: tuple, index: torch.Tensor) -> tuple:
        """The states of the rows `index` (beam search keeps some beams, drops others)."""
        h, c = state
        return h[:, index], c[:, index]  # (layers, N, hidden): the batch is dimension 1

    def beam_search(
        self,
        features: torch.Tensor,
        beam_size: int = 3,
        length_penalty: float = 0.0,
        end_id: int = 2,
        record: list | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Beam search (helpers.models.decoding.beam_search): ids (B, max_seq_len) and summed log-probabilities."""
        ids, scores, _ = beam_search(self, features, beam_size, length_penalty, end_id, record)
        return ids, scores

    @torch.no_grad()
    def log_probability(
        self, features: torch.Tensor, ids: torch.Tensor, end_id: int = 2
    ) -> torch.Tensor:
        """Summed log-probability of each caption in `ids` up to and including its first <end>."""
        frames = features.unsqueeze(1) if features.dim() == 2 else features
        inputs = torch.cat([frames, self.embedding_layer(ids[:, :-1])], 1)
        outputs, _ = self.lstm_layer(inputs)
        outputs = outputs[:, frames.size(1) - 1 :]  # from the last frame on, each scores a word
        return sum_until_end(self.linear_layer(outputs).log_softmax(-1), ids, end_id)


def init_forget_gate_bias(lstm: nn.LSTM, value: float = 1.0) -> None:
    """Start the LSTM's forget gates open, so the image seen at t=0 is remembered while words follow."""
    # PyTorch orders each bias as [input, forget, cell, output] gates; both biases add up.
    for name, bias in lstm.named_parameters():
        if name.startswith("bias_ih"):
            quarter = bias.shape[0] // 4
            with torch.no_grad():
                bias[quarter : 2 * quarter].fill_(value)
