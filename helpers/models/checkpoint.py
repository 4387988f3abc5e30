"""One checkpoint format: plain tensors and values (weights_only loading), written atomically."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from helpers.data.vocabulary import Vocabulary
from helpers.errors import CourseError
from helpers.files import atomic_path
from helpers.models.backbones import CHECKPOINT_FORMAT
from helpers.models.cnn_lstm import CNNModel, LSTMModel
from helpers.models.registry import build_models, decoder_kind

FORMAT = CHECKPOINT_FORMAT
LAST, BEST = "last.pt", "best.pt"  # training resumes from the last epoch; captioning uses the best
# The sizes a checkpoint's config records: whole numbers of at least 1 (TrainConfig checks them).
SIZES = ("embedding_size", "hidden_size", "num_layers", "max_seq_len", "resize", "crop")
# What rebuilding the models and preprocessing new images read from a checkpoint's config.
CONFIG_KEYS = ("backbone", "freeze", *SIZES)
REQUIRED = ("encoder", "decoder", "epoch", "step", "config", "vocab_size", "vocabulary")


def save_checkpoint(path: str | os.PathLike, **state: Any) -> None:
    """Write a checkpoint atomically: an interrupted save leaves the previous one intact."""
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, **state}, tmp)


def model_kind(config: dict) -> str:
    """What a checkpoint's model is, in words: the one place that tells the kinds apart."""
    if decoder_kind(config).labels:
        return "an action classifier of video clips (LRCN)"
    frames, motion = config.get("frames", 1), config.get("motion", False)
    if frames > 1 or motion:
        return f"a video captioner of {frames} frames" + (" and their motion" if motion else "")
    return "an image captioner" + (" with attention" if decoder_kind(config).attention else "")


def reads_images(config: dict) -> bool:
    """Whether a checkpoint's model captions single images (a one-frame video model does too)."""
    kind = decoder_kind(config)
    return kind.images and config.get("frames", 1) == 1 and not config.get("motion", False)


def best_checkpoint(path: str | Path) -> Path:
    """A checkpoint file as given, or a run folder's best.pt (its last.pt if it has no best.pt)."""
    path = Path(path)
    if not path.is_dir():
        return path
    for name in (BEST, LAST):
        if (path / name).is_file():
            return path / name
    raise CourseError(f"{path}: no {BEST} or {LAST} in this folder (train writes them)")


def read_checkpoint(path: str | os.PathLike) -> dict:
    """Load a checkpoint dict safely (weights_only), with one-line errors for bad files."""
    path = Path(path)
    if not path.is_file():
        raise CourseError(f"{path}: checkpoint not found")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    # Damaged bytes can fail anywhere in the unpickler (IndexError, KeyError, ...): all one line.
    except Exception as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise CourseError(
            f"{path}: not a readable checkpoint, truncated or corrupted? ({first[:120]})"
        ) from None
    if (
        not isinstance(ckpt, dict)
        or ckpt.get("format") != FORMAT
        or any(k not in ckpt for k in REQUIRED)
    ):
        raise CourseError(
            f"{path}: not a checkpoint of this course (keys {sorted(ckpt)[:8] if isinstance(ckpt, dict) else type(ckpt).__name__})"
        )
    config = ckpt["config"]
    missing = [k for k in CONFIG_KEYS if not isinstance(config, dict) or k not in config]
    if missing:
        raise CourseError(
            f"{path}: not a checkpoint of this course (missing config key {missing[0]})"
        )
    return ckpt


def checkpoint_vocabulary(
    ckpt: dict, path: str | os.PathLike, vocab: Vocabulary | None = None
) -> Vocabulary:
    """The vocabulary a checkpoint was trained with; a different `vocab` given is a one-line error."""
    stored = Vocabulary(ckpt["vocabulary"][4:])
    if vocab is None:
        return stored
    if len(vocab) != ckpt["vocab_size"]:
        raise CourseError(
            f"{path}: trained with a vocabulary of {ckpt['vocab_size']} words, but the vocabulary given has {len(vocab)}"
        )
    if vocab.id_to_word != stored.id_to_word:
        first = next(
            i
            for i, (a, b) in enumerate(zip(vocab.id_to_word, stored.id_to_word, strict=True))
            if a != b
        )
        raise CourseError(
            f"{path}: the vocabulary given differs from the one it was trained with (id {first} is "
            f"{vocab.id_to_word[first]!r}, was {stored.id_to_word[first]!r})"
        )
    return vocab


def load_models(
    path: str | os.PathLike, device: str | torch.device = "cpu", vocab: Vocabulary | None = None
) -> tuple[CNNModel, LSTMModel, Vocabulary, dict]:
    """Rebuild encoder and decoder from a checkpoint (or a run folder's best), in eval mode, with the vocabulary."""
    path = best_checkpoint(path)
    ckpt = read_checkpoint(path)
    vocab = checkpoint_vocabulary(ckpt, path, vocab)
    # The backbone's pretrained weights are in the checkpoint itself: nothing to download again.
    config = {**ckpt["config"], "weights": None}
    encoder, decoder = build_models(config, ckpt["vocab_size"])
    try:
        encoder.load_state_dict(ckpt["encoder"])
        decoder.load_state_dict(ckpt["decoder"])
    except RuntimeError as err:
        detail = " ".join(str(err).split())[:160]
        raise CourseError(
            f"{path}: weights do not fit the architecture in its config ({detail})"
        ) from None
    return encoder.to(device).eval(), decoder.to(device).eval(), vocab, ckpt
