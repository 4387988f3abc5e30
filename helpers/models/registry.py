"""The one place a decoder's name is turned into something: the models to build, what the encoder
hands over, and what the decoder can do. Everything else asks the Decoder it is given."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from helpers.errors import CourseError
from helpers.models.attention import AttentionDecoder, GridEncoder
from helpers.models.cnn_lstm import CNNModel, LSTMModel
from helpers.models.video import ActionLSTM


@dataclass(frozen=True)
class Decoder:
    """A kind of decoder: how to build it with its encoder, and what it takes and gives."""

    name: str
    build: Callable[[dict, int], tuple[nn.Module, nn.Module]]  # (config, vocabulary size)
    features: str  # what the encoder hands over per image: "vector" (B, E) or "grid" (B, L, C)
    images: bool = True  # captions images
    attention: bool = False  # returns where it looked for each word
    labels: bool = False  # names one class per clip (its "vocabulary"), not a caption
    one_layer: bool = False  # one LSTMCell: num_layers must be 1

    def cache_tag(self, config: dict) -> str:
        """What a feature cache file's name adds for this decoder's features."""
        return f"_grid{config.get('grid') or ''}" if self.features == "grid" else ""

    def run_tag(self) -> str:
        """What a run folder's default name adds for this decoder (nothing for the chapter's)."""
        return "" if self is DECODERS["lstm"] else f"-{self.name}"


def _encoder(config: dict) -> CNNModel:
    streams = 2 if config.get("motion") else 1  # video with motion: frames and their differences
    return CNNModel(
        config["embedding_size"],
        config["backbone"],
        config.get("weights"),
        config["freeze"],
        streams,
    )


def _lstm(config: dict, vocab_size: int) -> tuple[nn.Module, nn.Module]:
    sizes = config["embedding_size"], config["hidden_size"], vocab_size, config["num_layers"]
    return _encoder(config), LSTMModel(*sizes, config["max_seq_len"])


def _attention(config: dict, vocab_size: int) -> tuple[nn.Module, nn.Module]:
    encoder = GridEncoder(
        config["backbone"], config.get("weights"), config["freeze"], config.get("grid", 0)
    )
    # On video each place is a tube of all its frames' features (helpers.data.clip_cache).
    frames = config.get("frames", 1) * (2 if config.get("motion") else 1)
    return encoder, AttentionDecoder(
        encoder.out_features * frames,
        config["embedding_size"],
        config["hidden_size"],
        vocab_size,
        config["max_seq_len"],
        config.get("attention_size", config["hidden_size"]),
        config.get("gate", True),
        config.get("places", True),
    )


def _lrcn(config: dict, vocab_size: int) -> tuple[nn.Module, nn.Module]:
    sizes = config["embedding_size"], config["hidden_size"], vocab_size, config["num_layers"]
    return _encoder(config), ActionLSTM(*sizes, config.get("pool", "last"))


# The chapter's, Show, Attend and Tell, and LRCN's action classifier.
DECODERS: dict[str, Decoder] = {
    "lstm": Decoder("lstm", _lstm, "vector"),
    "attention": Decoder("attention", _attention, "grid", attention=True, one_layer=True),
    "lrcn": Decoder("lrcn", _lrcn, "vector", images=False, labels=True),
}


def decoder_kind(config: dict | str) -> Decoder:
    """The Decoder a name or a config names (checkpoints from before attention name none)."""
    name = config if isinstance(config, str) else config.get("decoder", "lstm")
    if name not in DECODERS:
        raise CourseError(f"decoder must be one of {', '.join(DECODERS)}, got {name!r}")
    return DECODERS[name]


def build_models(config: dict, vocab_size: int) -> tuple[nn.Module, nn.Module]:
    """The encoder and decoder a config describes (the `config` stored in every checkpoint)."""
    return decoder_kind(config).build(config, vocab_size)
