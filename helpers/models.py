"""The two networks of the chapter: a CNN encoder (image -> embedding) and an LSTM decoder (-> words)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.error import URLError

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
from torchvision import models

from helpers.errors import CourseError
from helpers.vocabulary import SPECIALS

CHECKPOINT_FORMAT = "captioning-course checkpoint"  # helpers.checkpoint writes it
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
    """A CNN without its classifier, with `out_features`.

    `weights`: None (random), a torchvision name such as "IMAGENET1K_V1" (ResNets), a local copy
    of a torchvision weights file, or a checkpoint of this course: its encoder's backbone.
    """
    path = weights_file(weights)
    state, ours = _read_weights(path, name) if path is not None else (None, False)
    if name == "small":
        if weights is not None and not ours:
            raise CourseError(
                "backbone 'small' has no pretrained weights; use weights=None, or a checkpoint "
                "of this course trained with the small backbone"
            )
        net = SmallCNN()
    elif name not in RESNETS:
        raise CourseError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    else:
        try:
            net = models.get_model(name, weights=None if path else weights)
        except (URLError, OSError, RuntimeError) as err:
            enum = models.get_model_weights(name).__name__
            raise CourseError(
                f"cannot download {enum}.{weights} ({type(err).__name__}: no network?); pass "
                f"weights='path/to/{name}.pth' (a local copy of the torchvision file) or "
                "weights=None to train from scratch"
            ) from None
        except (KeyError, ValueError) as err:
            raise CourseError(f"unknown weights {weights!r} for {name}: {err}") from None
        net.out_features = net.fc.in_features
        if ours:
            net.fc = (
                nn.Identity()
            )  # a course checkpoint keeps no classifier; torchvision's files do
    if state is not None:
        try:
            net.load_state_dict(state)
        except RuntimeError as err:
            first = str(err).strip().splitlines()[0]
            raise CourseError(f"{path}: not {name} weights ({first})") from None
    if name != "small":
        net.fc = nn.Identity()  # the source removes the last fc layer: features, not 1000 classes
    return net


def weights_file(weights: str | os.PathLike | None) -> Path | None:
    """The local file `weights` names (checked to exist), or None for a torchvision name or None."""
    # A path (anything with a folder separator or a .pth/.pt suffix) is a local weights file.
    is_path = weights is not None and (
        isinstance(weights, os.PathLike) or "/" in weights or weights.endswith((".pth", ".pt"))
    )
    if not is_path:
        return None
    if not Path(weights).is_file():
        raise CourseError(f"{weights}: weights file not found")
    return Path(weights)


def _read_weights(path: Path, name: str) -> tuple[dict, bool]:
    """A weights file's state dict, and whether it came from a checkpoint of this course."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (RuntimeError, OSError, EOFError, ValueError) as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise CourseError(f"{path}: not {name} weights ({first})") from None
    if not (isinstance(state, dict) and state.get("format") == CHECKPOINT_FORMAT):
        return state, False
    trained = state.get("config", {}).get("backbone")
    if trained != name:
        raise CourseError(f"{path}: a checkpoint with backbone {trained!r}, not {name!r}")
    prefix = "backbone."
    return {k[len(prefix) :]: v for k, v in state["encoder"].items() if k.startswith(prefix)}, True


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
        # Video with motion: each frame's features and its difference's (helpers.video), side by side.
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
        if images.dim() == 2:  # features from helpers.features: the backbone already ran
            features = images
        elif self.streams > 1:
            raise ValueError("a motion model takes clip features (helpers.video.clip_features)")
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
        """Beam search (helpers.models.beam_search): ids (B, max_seq_len) and summed log-probabilities."""
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


def sum_until_end(logp: torch.Tensor, ids: torch.Tensor, end_id: int) -> torch.Tensor:
    """Summed log-probabilities (B, T, V) of the words `ids` (B, T), up to and including the first <end>."""
    logp = logp.gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    # Count words up to the first <end>: positions after it do not belong to the caption.
    ended_before = (ids == end_id).long().cumsum(1) - (ids == end_id).long()
    return (logp * (ended_before == 0)).sum(1)


def _rank(scores: torch.Tensor, lengths: torch.Tensor, length_penalty: float) -> torch.Tensor:
    return scores / ((5 + lengths) / 6) ** length_penalty if length_penalty else scores


@torch.no_grad()
def beam_search(
    decoder: nn.Module,
    features: torch.Tensor,
    beam_size: int = 3,
    length_penalty: float = 0.0,
    end_id: int = 2,
    record: list | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Keep the `beam_size` likeliest partial captions per image; all images at once.

    Works for any decoder with `start`, `step`, `reorder` and `max_seq_len`: the chapter's LSTM
    and the attention decoder. Returns ids (B, max_seq_len), padded with <end> after the end, each
    caption's summed log-probability, and what the decoder reports per word (the attention
    weights, (B, max_seq_len, L)) or None. With length_penalty a > 0, finished captions are
    compared by score / ((5 + length) / 6) ** a (as in Google's NMT), which favours longer ones.
    A `record` list receives, after each step, the kept beams' last tokens, parent beams, summed
    log-probabilities and finished flags, each (B, K): helpers.beam_tree draws them.
    """
    batch, k = features.size(0), beam_size
    rows = torch.arange(batch, device=features.device)
    logp, state, extra = decoder.start(features)
    vocab = logp.size(-1)
    scores, tokens = logp.topk(k, dim=-1)  # (B, K): the first word of each beam
    seqs = tokens.unsqueeze(-1)
    # What the decoder reports per word, kept per beam: (B, K, words so far, ...).
    extras = None if extra is None else extra.unsqueeze(1).unsqueeze(2).repeat(1, k, 1, 1)
    finished = tokens == end_id
    lengths = torch.ones_like(tokens)
    if record is not None:
        record.append((tokens, torch.full_like(tokens, -1), scores, finished))
    state = decoder.reorder(state, rows.repeat_interleave(k))  # each image's state, K times
    for _ in range(1, decoder.max_seq_len):
        if finished.all():
            break
        logp, state, extra = decoder.step(seqs[:, :, -1].reshape(-1), state)
        logp = logp.view(batch, k, vocab)
        # A finished beam may only go on with <end>, at no cost, so its score stays fixed.
        logp = torch.where(finished.unsqueeze(-1), torch.full_like(logp, -torch.inf), logp)
        logp[..., end_id] = torch.where(finished, 0.0, logp[..., end_id])
        best, index = (scores.unsqueeze(-1) + logp).view(batch, -1).topk(k, dim=-1)
        beam, token = index // vocab, index % vocab
        seqs = torch.cat(
            [seqs.gather(1, beam.unsqueeze(-1).expand_as(seqs)), token.unsqueeze(-1)], -1
        )
        if extras is not None:
            parents = rows.unsqueeze(1), beam
            step_extra = extra.view(batch, k, 1, *extra.shape[1:])[parents]
            extras = torch.cat([extras[parents], step_extra], 2)
        lengths = lengths.gather(1, beam) + (~finished.gather(1, beam)).long()
        finished = finished.gather(1, beam) | (token == end_id)
        scores = best
        if record is not None:
            record.append((token, beam, scores, finished))
        state = decoder.reorder(state, (beam + rows.unsqueeze(1) * k).view(-1))
    pick = _rank(scores, lengths, length_penalty).argmax(-1)
    ids = torch.full((batch, decoder.max_seq_len), end_id, dtype=seqs.dtype, device=seqs.device)
    ids[:, : seqs.size(-1)] = seqs[rows, pick]
    weights = None
    if extras is not None:
        weights = extras.new_zeros(batch, decoder.max_seq_len, *extras.shape[3:])
        weights[:, : extras.size(2)] = extras[rows, pick]
    best, best_length = scores[rows, pick], lengths[rows, pick]
    if k > 1:
        # A beam can drop the greedy caption's prefix early and end up worse; keeping the greedy
        # caption (a beam of 1) as a candidate guarantees beam search never returns a less likely one.
        greedy, greedy_score, greedy_weights = beam_search(decoder, features, 1, 0.0, end_id)
        greedy_length = (greedy != end_id).sum(1) + (greedy == end_id).any(1).long()
        better = _rank(greedy_score, greedy_length, length_penalty) > _rank(
            best, best_length, length_penalty
        )
        ids[better], best[better] = greedy[better], greedy_score[better]
        if weights is not None:
            weights[better] = greedy_weights[better]
    return ids, best, weights


def init_forget_gate_bias(lstm: nn.LSTM, value: float = 1.0) -> None:
    """Start the LSTM's forget gates open, so the image seen at t=0 is remembered while words follow."""
    # PyTorch orders each bias as [input, forget, cell, output] gates; both biases add up.
    for name, bias in lstm.named_parameters():
        if name.startswith("bias_ih"):
            quarter = bias.shape[0] // 4
            with torch.no_grad():
                bias[quarter : 2 * quarter].fill_(value)


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


# The chapter's, Show, Attend and Tell (helpers.attention), and LRCN's action classifier.
DECODERS = ("lstm", "attention", "lrcn")


def build_models(config: dict, vocab_size: int) -> tuple[nn.Module, nn.Module]:
    """The encoder and decoder a config describes (the `config` stored in every checkpoint)."""
    decoder = config.get("decoder", "lstm")  # checkpoints from before attention have none
    if decoder == "attention":
        from helpers.attention import AttentionDecoder, GridEncoder

        encoder = GridEncoder(
            config["backbone"], config.get("weights"), config["freeze"], config.get("grid", 0)
        )
        return encoder, AttentionDecoder(
            encoder.out_features,
            config["embedding_size"],
            config["hidden_size"],
            vocab_size,
            config["max_seq_len"],
            config.get("attention_size", config["hidden_size"]),
        )
    if decoder not in ("lstm", "lrcn"):
        raise CourseError(f"unknown decoder {decoder!r}; choose one of {', '.join(DECODERS)}")
    encoder = CNNModel(
        config["embedding_size"],
        config["backbone"],
        config.get("weights"),
        config["freeze"],
        2 if config.get("motion") else 1,
    )
    if decoder == "lrcn":  # the "vocabulary" is the action names
        return encoder, ActionLSTM(
            config["embedding_size"],
            config["hidden_size"],
            vocab_size,
            config["num_layers"],
            config.get("pool", "last"),
        )
    decoder = LSTMModel(
        config["embedding_size"],
        config["hidden_size"],
        vocab_size,
        config["num_layers"],
        config["max_seq_len"],
    )
    return encoder, decoder
