"""Where the attention decoder looked: each word's map over the grid, for a batch of images or one
file, and drawn as a figure."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from helpers.caption.captioner import Captioner
from helpers.data.images import load_rgb
from helpers.errors import CourseError
from helpers.files import atomic_path
from helpers.models.decoding import beam_search


@dataclass
class Attended:
    """One image's caption with, for each word, where the decoder looked (grid x grid weights)."""

    words: list[str]
    weights: torch.Tensor  # (words, grid, grid), each map sums to 1
    view: Image.Image | None = None  # the part of the image the model sees (the centre crop)


def needs_attention(captioner: Captioner) -> None:
    """A one-line error unless the captioner's checkpoint has the attention decoder."""
    if not captioner.kind.attention:
        raise CourseError(
            f"{captioner.path}: trained with the chapter's decoder, which has no attention weights; "
            "train one with --decoder attention"
        )


@torch.no_grad()
def attend(
    captioner: Captioner, images: torch.Tensor, beam_size: int = 1, length_penalty: float = 0.0
) -> list[Attended]:
    """Caption a batch of image tensors (B, 3, crop, crop), keeping each word's attention map."""
    needs_attention(captioner)
    captioner.check_beam_size(beam_size)
    features = captioner.encoder(images.to(captioner.device))
    end = captioner.vocab.word_to_id["<end>"]
    ids, _, weights = beam_search(captioner.decoder, features, beam_size, length_penalty, end)
    side = math.isqrt(weights.size(-1))
    found = []
    for row, maps in zip(ids.cpu(), weights.cpu(), strict=True):
        words, kept = [], []
        # Weights at step t are where the decoder looked to write word t; step 0 writes <start>.
        for t, i in enumerate(row.tolist()):
            word = captioner.vocab.id_to_word[i]
            if word == "<end>":
                break
            if word not in ("<start>", "<pad>"):
                words.append(word)
                kept.append(maps[t].view(side, side))
        found.append(Attended(words, torch.stack(kept) if kept else torch.empty(0, side, side)))
    return found


def model_view(img: Image.Image, resize: int, crop: int) -> tuple[float, float, float, float]:
    """The box (left, top, right, bottom) of the original image that the centre crop shows."""
    offset = round((resize - crop) / 2)  # as torchvision's CenterCrop places it
    sx, sy = img.width / resize, img.height / resize
    return offset * sx, offset * sy, (offset + crop) * sx, (offset + crop) * sy


def attend_file(
    captioner: Captioner, path: str | os.PathLike, beam_size: int = 1, length_penalty: float = 0.0
) -> Attended:
    """One image file's caption and attention maps, with the part of the image the model saw."""
    needs_attention(captioner)
    img = load_rgb(path)
    found = attend(captioner, captioner.transform(img).unsqueeze(0), beam_size, length_penalty)[0]
    found.view = img.crop(model_view(img, captioner.config["resize"], captioner.config["crop"]))
    return found


def save_attention_map(
    captioner: Captioner,
    image: str | os.PathLike,
    out: str | os.PathLike,
    beam_size: int = 1,
    length_penalty: float = 0.0,
) -> None:
    """Draw where the attention decoder looked for each word of an image's caption, in the
    format `out`'s extension names (PNG, JPEG, PDF, SVG)."""
    from matplotlib import pyplot as plt  # only when a map is drawn: captioning starts faster

    from helpers.plots.attention import plot_attention

    found = attend_file(captioner, image, beam_size, length_penalty)
    fig = plot_attention(found.view, found.words, found.weights, title=Path(image).name)
    with atomic_path(out) as tmp:
        kind = Path(out).suffix.lower().lstrip(".").replace("jpeg", "jpg") or "png"
        fig.savefig(tmp, format=kind, bbox_inches="tight")
    plt.close(fig)
