"""What a tiny COCO caption gets right, checked against the objects each image really shows."""

from __future__ import annotations

from pathlib import Path

from helpers.data.tiny_coco import COLORS, PLURALS, SHAPES
from helpers.data.vocabulary import tokenize
from helpers.files import read_json


def load_objects(annotations: str | Path) -> dict[int, dict]:
    """What each image of a tiny COCO split really shows, read from objects_<split>2014.json."""
    path = Path(annotations)
    truth = path.with_name(path.name.replace("captions_", "objects_"))
    return {int(k): v for k, v in read_json(truth, "tiny COCO objects file").items()}


def object_scores(captions: dict[int, str], objects: dict[int, dict]) -> dict[str, float]:
    """Share of images whose caption names exactly the right colours, shapes, and both."""
    right = {"colors": 0, "shapes": 0, "both": 0}
    for image_id, caption in captions.items():
        truth = objects[image_id]
        words = set(tokenize(caption))
        said_shapes = {s for s in SHAPES if s in words or PLURALS[s] in words}
        said_colors = {c for c in COLORS if c in words}
        colors_ok = said_colors == (
            set() if truth["grayscale"] else {s["color"] for s in truth["shapes"]}
        )
        shapes_ok = said_shapes == {s["shape"] for s in truth["shapes"]}
        right["colors"] += colors_ok
        right["shapes"] += shapes_ok
        right["both"] += colors_ok and shapes_ok
    return {k: v / max(1, len(captions)) for k, v in right.items()}


def object_scores_by_count(captions: dict[int, str], objects: dict[int, dict]) -> dict[str, dict]:
    """object_scores on the one-shape and on the two-shape images, apart."""
    groups = {"one shape": 1, "two shapes": 2}
    return {
        name: object_scores(
            {i: c for i, c in captions.items() if len(objects[i]["shapes"]) == n}, objects
        )
        for name, n in groups.items()
    }


SHAPE_WORDS = {**{s: s for s in SHAPES}, **{p: s for s, p in PLURALS.items()}}  # word -> shape


def named_objects(word: str, truth: dict) -> list[dict]:
    """The objects of a tiny COCO image that a colour or shape word names (none for other words)."""
    shape = SHAPE_WORDS.get(word)
    if shape is not None:
        return [o for o in truth["shapes"] if o["shape"] == shape]
    if word in COLORS and not truth["grayscale"]:
        return [o for o in truth["shapes"] if o["color"] == word]
    return []
