"""The pointing game: is the peak of the attention that wrote a colour or shape word inside the
object that word names? Bound, that is the object with its own colour ("red circle": the red
circle, not any circle); the older, unbound game takes any object of that shape or colour."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image
from tqdm import tqdm

from helpers.caption.attention import Attended, attend, model_view, needs_attention
from helpers.caption.captioner import Captioner
from helpers.data.annotations import load_captions
from helpers.data.tiny_coco import COLORS
from helpers.evaluate.objects import (
    SHAPE_WORDS,
    bound_objects,
    image_group,
    load_objects,
    named_objects,
    parse_objects,
)


def point_hit(
    weights: torch.Tensor, boxes: list[list[float]], size: tuple[int, int], resize: int, crop: int
) -> tuple[bool, float, float]:
    """Does the peak of one word's map (grid x grid) fall inside one of the objects' boxes?

    `boxes` are the objects' [centre x, centre y, radius] in the original image of `size`
    (width, height); the model saw it squeezed to resize x resize, then the centre crop.
    Returns the hit, the chance rate (the boxes' share of the area the model sees), and the
    uniform control (the share of grid cells whose centre is in a box: a uniform map's peak is
    any cell with equal odds).
    """
    g = weights.size(-1)
    left, top, right, bottom = model_view(Image.new("1", size), resize, crop)
    # The centre of each grid cell, in the original image's pixels.
    xs = left + (torch.arange(g) + 0.5) * (right - left) / g
    ys = top + (torch.arange(g) + 0.5) * (bottom - top) / g
    inside = torch.zeros(g, g, dtype=torch.bool)
    area = 0.0
    for cx, cy, r in boxes:
        inside |= ((ys - cy).abs() <= r).unsqueeze(1) & ((xs - cx).abs() <= r).unsqueeze(0)
        w = max(0.0, min(right, cx + r) - max(left, cx - r))
        h = max(0.0, min(bottom, cy + r) - max(top, cy - r))
        area += w * h  # the tiny COCO's shapes never overlap
    peak = int(weights.flatten().argmax())
    chance = area / ((right - left) * (bottom - top))
    return bool(inside.flatten()[peak]), chance, inside.float().mean().item()


@dataclass
class PointingGame:
    """Pointing-game counts: named words, hits, and the two baselines, per kind of word and image."""

    words: int = 0
    hits: int = 0
    chance: float = 0.0  # summed over words; divide by words for the rate
    uniform: float = 0.0
    unnamed: int = 0  # colour or shape words of objects the image does not show (wrong words)
    by: dict = field(default_factory=dict)  # "colour", "shape", "one shape", "two shapes", ...
    captions: dict = field(default_factory=dict)  # image id -> the caption that was scored

    def add(self, hit: bool, chance: float, uniform: float, *groups: str) -> None:
        """Count one named word, in the totals and in each of its groups."""
        for game in (self, *(self.by.setdefault(g, PointingGame()) for g in groups)):
            game.words, game.hits = game.words + 1, game.hits + hit
            game.chance, game.uniform = game.chance + chance, game.uniform + uniform

    def rates(self) -> dict[str, float]:
        """Hit rate, chance rate and uniform-attention rate (shares of the named words)."""
        n = max(1, self.words)
        return {"hit": self.hits / n, "chance": self.chance / n, "uniform": self.uniform / n}

    def summary(self) -> dict:
        """Plain numbers for printing and JSON: the rates overall and per group, and the counts."""
        rates = {k: round(v, 3) for k, v in self.rates().items()}
        groups = {
            g: {"words": p.words, **{k: round(v, 3) for k, v in p.rates().items()}}
            for g, p in self.by.items()
        }
        return {"words": self.words, **rates, "unnamed_words": self.unnamed, "by": groups}


def pointing_game(
    captioner: Captioner,
    annotations: str | os.PathLike,
    images: str | os.PathLike,
    beam_size: int = 1,
    batch_size: int = 64,
    progress: bool = True,
    bound: bool = True,
) -> PointingGame:
    """Caption every image of a tiny COCO split with an attention model, keeping its maps, and
    play the pointing game on them (score_pointing; bound: the object with its own colour, else
    the older game, any object of that colour or shape)."""
    needs_attention(captioner)
    entries = {img["id"]: img for img in load_captions(annotations)["images"]}
    ids = sorted(entries)
    found = {}
    for start in tqdm(range(0, len(ids), batch_size), desc="pointing", disable=not progress):
        chunk = ids[start : start + batch_size]
        pixels = [captioner.load_image(Path(images) / entries[i]["file_name"]) for i in chunk]
        found.update(zip(chunk, attend(captioner, torch.stack(pixels), beam_size), strict=True))
    resize, crop = captioner.config["resize"], captioner.config["crop"]
    return score_pointing(found, annotations, resize, crop, bound)


def score_pointing(
    found: Mapping[int, Attended],
    annotations: str | os.PathLike,
    resize: int,
    crop: int,
    bound: bool = True,
) -> PointingGame:
    """For each object a caption names, bound to its colour: is the peak of the attention that
    wrote its shape word (and its colour word) inside that very object's box? `found` holds each
    image's words and maps; the model saw each image resized, then centre-cropped. Unbound (the
    older game), a word hits inside any object of its shape, or of its colour."""
    objects = load_objects(annotations)
    sizes = {
        img["id"]: (img["width"], img["height"]) for img in load_captions(annotations)["images"]
    }
    game = PointingGame()
    for image_id, attended in found.items():
        truth = objects[image_id]
        game.captions[image_id] = " ".join(attended.words)
        if not bound:
            _unbound(game, attended, truth, sizes[image_id], resize, crop)
            continue
        for mention in parse_objects(attended.words):
            targets = [o["box"] for o in bound_objects(mention, truth)]
            for kind, at in (("shape", mention.shape_at), ("colour", mention.color_at)):
                if at < 0 or attended.words[at] not in (*SHAPE_WORDS, *COLORS):
                    continue  # no colour said (or "gray"): no colour word to point with
                if not targets:
                    game.unnamed += 1  # a wrong colour or shape: it names nothing there
                    continue
                hit = point_hit(attended.weights[at], targets, sizes[image_id], resize, crop)
                game.add(*hit, kind, image_group(truth))
    return game


def _unbound(game: PointingGame, attended: Attended, truth: dict, size, resize, crop) -> None:
    """The older pointing game of one image: each colour or shape word against every object of
    its colour or shape, whatever the caption bound it to."""
    count = "one shape" if len(truth["shapes"]) == 1 else "two shapes"
    for word, weights in zip(attended.words, attended.weights, strict=True):
        named = named_objects(word, truth)
        if not named:
            game.unnamed += word in SHAPE_WORDS or word in COLORS
            continue
        kind = "shape" if word in SHAPE_WORDS else "colour"
        game.add(*point_hit(weights, [o["box"] for o in named], size, resize, crop), kind, count)
