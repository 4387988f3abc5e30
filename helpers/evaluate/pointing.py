"""The pointing game: is the peak of the attention that wrote a colour or shape word inside the
object that word names?"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image
from tqdm import tqdm

from helpers.caption.attention import attend, model_view, needs_attention
from helpers.caption.captioner import Captioner
from helpers.data.annotations import load_captions
from helpers.data.tiny_coco import COLORS
from helpers.evaluate.objects import SHAPE_WORDS, load_objects, named_objects


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
    unnamed: int = 0  # colour or shape words that name no object in the image (wrong words)
    by: dict = field(default_factory=dict)  # "colour", "shape", "one shape", "two shapes"
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
) -> PointingGame:
    """For each generated colour or shape word that names an object of a tiny COCO image: is the
    peak of the attention that wrote it inside that object's box?"""
    needs_attention(captioner)
    objects = load_objects(annotations)
    entries = {img["id"]: img for img in load_captions(annotations)["images"]}
    ids = sorted(entries)
    game = PointingGame()
    resize, crop = captioner.config["resize"], captioner.config["crop"]
    for start in tqdm(range(0, len(ids), batch_size), desc="pointing", disable=not progress):
        chunk = ids[start : start + batch_size]
        pixels = [captioner.load_image(Path(images) / entries[i]["file_name"]) for i in chunk]
        found_all = attend(captioner, torch.stack(pixels), beam_size)
        for image_id, found in zip(chunk, found_all, strict=True):
            truth, entry = objects[image_id], entries[image_id]
            game.captions[image_id] = " ".join(found.words)
            count = "one shape" if len(truth["shapes"]) == 1 else "two shapes"
            for word, weights in zip(found.words, found.weights, strict=True):
                named = named_objects(word, truth)
                if not named:
                    game.unnamed += word in SHAPE_WORDS or word in COLORS
                    continue
                kind = "shape" if word in SHAPE_WORDS else "colour"
                size = (entry["width"], entry["height"])
                hit = point_hit(weights, [o["box"] for o in named], size, resize, crop)
                game.add(*hit, kind, count)
    return game
