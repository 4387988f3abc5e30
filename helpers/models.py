"""The two networks of the chapter: a CNN encoder (image -> embedding) and an LSTM decoder (-> words)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.error import URLError

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence
from torchvision import models

from helpers.errors import CourseError

RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
BACKBONES = ("small", *RESNETS)


class SmallCNN(nn.Module):
    """Four conv + max-pool blocks that learn from scratch in a minute on a CPU (the tiny default)."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        layers, channels = [], 3
        for out in (width, width * 2, width * 4, width * 8):
            # Max-pooling after each convolution learns outlines (star or circle?) much faster than
            # strided convolutions do: measured on the tiny COCO's shapes.
            layers += [
                nn.Conv2d(channels, out, 3, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            channels = out
        self.features = nn.Sequential(*layers)
        # A 2x2 grid keeps where things are (left, right, top, bottom), which plain averaging loses.
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.out_features = channels * 4

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.pool(self.features(images)).flatten(1)


def build_backbone(name: str = "resnet152", weights: str | os.PathLike | None = None) -> nn.Module:
    """A CNN without its classifier, with `out_features`; ResNets take torchvision weights or a file."""
    if name == "small":
        if weights is not None:
            raise CourseError("backbone 'small' has no pretrained weights; use weights=None")
        return SmallCNN()
    if name not in RESNETS:
        raise CourseError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    # A path (anything with a folder separator or a .pth/.pt suffix) is a local weights file.
    is_path = weights is not None and (
        isinstance(weights, os.PathLike) or "/" in weights or weights.endswith((".pth", ".pt"))
    )
    path = Path(weights) if is_path else None
    if path is not None and not path.is_file():
        raise CourseError(f"{path}: weights file not found")
    try:
        net = models.get_model(name, weights=None if path else weights)
    except (URLError, OSError, RuntimeError) as err:
        enum = models.get_model_weights(name).__name__
        raise CourseError(
            f"cannot download {enum}.{weights} ({type(err).__name__}: no network?); pass weights='path/to/{name}.pth' "
            "(a local copy of the torchvision file) or weights=None to train from scratch"
        ) from None
    except (KeyError, ValueError) as err:
        raise CourseError(f"unknown weights {weights!r} for {name}: {err}") from None
    if path is not None:
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
            net.load_state_dict(state)
        except (RuntimeError, OSError, EOFError, ValueError) as err:
            first = str(err).strip().splitlines()[0]
            raise CourseError(f"{path}: not {name} weights ({first})") from None
    out_features = net.fc.in_features
    # The source removes the last fc layer: we want features, not 1000 class scores.
    net.fc = nn.Identity()
    net.out_features = out_features
    return net


class CNNModel(nn.Module):
    """Encoder: backbone features -> Linear -> BatchNorm1d, the image embedding fed to the LSTM at t=0."""

    def __init__(
        self,
        embedding_size: int = 256,
        backbone: str = "resnet152",
        weights: str | os.PathLike | None = "IMAGENET1K_V1",
        freeze: bool = True,
    ) -> None:
        super().__init__()
        self.backbone = build_backbone(backbone, weights)
        self.freeze = freeze
        if freeze:
            self.backbone.requires_grad_(False)
        self.linear_layer = nn.Linear(self.backbone.out_features, embedding_size)
        self.batch_norm = nn.BatchNorm1d(embedding_size, momentum=0.01)

    def train(self, mode: bool = True) -> CNNModel:
        super().train(mode)
        if self.freeze:
            # A frozen backbone stays in eval mode: under no_grad its BatchNorm statistics would still
            # drift in train mode, which the source's loop lets happen.
            self.backbone.eval()
        return self

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Images (B, 3, H, W), or the backbone's cached features (B, F), to embeddings (B, E)."""
        if images.dim() == 2:  # features from helpers.features: the backbone already ran
            features = images
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
        """Logits for the packed targets: row k scores the k-th word of `pack_padded_sequence(captions)`."""
        embeddings = self.embedding_layer(captions)
        embeddings = torch.cat((features.unsqueeze(1), embeddings), 1)
        # Lengths must live on the CPU for packing, even when the model runs on CUDA.
        lengths = torch.as_tensor(lengths, dtype=torch.int64, device="cpu")
        packed = pack_padded_sequence(embeddings, lengths, batch_first=True)
        hiddens, _ = self.lstm_layer(packed)
        return self.linear_layer(hiddens.data)

    @torch.no_grad()
    def sample(self, features: torch.Tensor, states=None) -> torch.Tensor:
        """Greedy decoding, as the source: the most likely word at each step, `max_seq_len` steps."""
        sampled = []
        inputs = features.unsqueeze(1)
        for _ in range(self.max_seq_len):
            hiddens, states = self.lstm_layer(inputs, states)
            outputs = self.linear_layer(hiddens.squeeze(1))
            predicted = outputs.argmax(1)
            sampled.append(predicted)
            inputs = self.embedding_layer(predicted).unsqueeze(1)
        return torch.stack(sampled, 1)

    @torch.no_grad()
    def beam_search(
        self,
        features: torch.Tensor,
        beam_size: int = 3,
        length_penalty: float = 0.0,
        end_id: int = 2,
        record: list | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Keep the `beam_size` likeliest partial captions per image; all images at once.

        Returns ids (B, max_seq_len), padded with <end> after the end, and each caption's summed
        log-probability. With length_penalty a > 0, finished captions are compared by
        score / ((5 + length) / 6) ** a (as in Google's NMT), which favours longer captions.
        A `record` list receives, after each step, the kept beams' last tokens, parent beams,
        summed log-probabilities and finished flags, each (B, K): helpers.beam_tree draws them.
        """
        batch, k = features.size(0), beam_size
        outputs, (h, c) = self.lstm_layer(features.unsqueeze(1))
        logp = self.linear_layer(outputs.squeeze(1)).log_softmax(-1)
        vocab = logp.size(-1)
        scores, tokens = logp.topk(k, dim=-1)  # (B, K): the first word of each beam
        seqs = tokens.unsqueeze(-1)
        finished = tokens == end_id
        lengths = torch.ones_like(tokens)
        if record is not None:
            record.append((tokens, torch.full_like(tokens, -1), scores, finished))
        h, c = h.repeat_interleave(k, dim=1), c.repeat_interleave(k, dim=1)  # (layers, B*K, H)
        for _ in range(1, self.max_seq_len):
            if finished.all():
                break
            inputs = self.embedding_layer(seqs[:, :, -1].reshape(-1)).unsqueeze(1)
            outputs, (h, c) = self.lstm_layer(inputs, (h, c))
            logp = self.linear_layer(outputs.squeeze(1)).log_softmax(-1).view(batch, k, vocab)
            # A finished beam may only go on with <end>, at no cost, so its score stays fixed.
            logp = torch.where(finished.unsqueeze(-1), torch.full_like(logp, -torch.inf), logp)
            logp[..., end_id] = torch.where(finished, 0.0, logp[..., end_id])
            best, index = (scores.unsqueeze(-1) + logp).view(batch, -1).topk(k, dim=-1)
            beam, token = index // vocab, index % vocab
            seqs = torch.cat(
                [seqs.gather(1, beam.unsqueeze(-1).expand_as(seqs)), token.unsqueeze(-1)], -1
            )
            lengths = lengths.gather(1, beam) + (~finished.gather(1, beam)).long()
            finished = finished.gather(1, beam) | (token == end_id)
            scores = best
            if record is not None:
                record.append((token, beam, scores, finished))
            flat = (beam + torch.arange(batch, device=beam.device).unsqueeze(1) * k).view(-1)
            h, c = h[:, flat], c[:, flat]
        pick = self._rank(scores, lengths, length_penalty).argmax(-1)
        rows = torch.arange(batch, device=features.device)
        ids = torch.full((batch, self.max_seq_len), end_id, dtype=seqs.dtype, device=seqs.device)
        ids[:, : seqs.size(-1)] = seqs[rows, pick]
        best, best_length = scores[rows, pick], lengths[rows, pick]
        if k > 1:
            # A beam can drop the greedy caption's prefix early and end up worse; keeping the greedy
            # caption as a candidate guarantees beam search never returns a less likely one.
            greedy = self.sample(features)
            greedy_score = self.log_probability(features, greedy, end_id)
            greedy_length = self._length(greedy, end_id)
            better = self._rank(greedy_score, greedy_length, length_penalty) > self._rank(
                best, best_length, length_penalty
            )
            ids[better], best[better] = greedy[better], greedy_score[better]
        return ids, best

    @staticmethod
    def _rank(scores: torch.Tensor, lengths: torch.Tensor, length_penalty: float) -> torch.Tensor:
        return scores / ((5 + lengths) / 6) ** length_penalty if length_penalty else scores

    @staticmethod
    def _length(ids: torch.Tensor, end_id: int) -> torch.Tensor:
        """Words up to and including the first <end> (all of them when there is none)."""
        ended = (ids == end_id).long().cumsum(1)
        return (ended == 0).sum(1) + (ended[:, -1] > 0).long()

    @torch.no_grad()
    def log_probability(
        self, features: torch.Tensor, ids: torch.Tensor, end_id: int = 2
    ) -> torch.Tensor:
        """Summed log-probability of each caption in `ids` up to and including its first <end>."""
        inputs = torch.cat([features.unsqueeze(1), self.embedding_layer(ids[:, :-1])], 1)
        outputs, _ = self.lstm_layer(inputs)
        logp = self.linear_layer(outputs).log_softmax(-1).gather(-1, ids.unsqueeze(-1)).squeeze(-1)
        # Count words up to the first <end>: positions after it do not belong to the caption.
        ended_before = (ids == end_id).long().cumsum(1) - (ids == end_id).long()
        return (logp * (ended_before == 0)).sum(1)


def init_forget_gate_bias(lstm: nn.LSTM, value: float = 1.0) -> None:
    """Start the LSTM's forget gates open, so the image seen at t=0 is remembered while words follow."""
    # PyTorch orders each bias as [input, forget, cell, output] gates; both biases add up.
    for name, bias in lstm.named_parameters():
        if name.startswith("bias_ih"):
            quarter = bias.shape[0] // 4
            with torch.no_grad():
                bias[quarter : 2 * quarter].fill_(value)


def build_models(config: dict, vocab_size: int) -> tuple[CNNModel, LSTMModel]:
    """The encoder and decoder a config describes (the `config` stored in every checkpoint)."""
    encoder = CNNModel(
        config["embedding_size"], config["backbone"], config.get("weights"), config["freeze"]
    )
    decoder = LSTMModel(
        config["embedding_size"],
        config["hidden_size"],
        vocab_size,
        config["num_layers"],
        config["max_seq_len"],
    )
    return encoder, decoder
