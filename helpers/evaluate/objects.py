"""What a tiny COCO caption gets right, object by object: a caption parsed into the objects it
names (each bound to its own colour and count), compared with what the image really shows."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from helpers.data.tiny_coco import COLORS, PLURALS, SHAPES
from helpers.data.vocabulary import tokenize
from helpers.evaluate.references import reference_captions
from helpers.files import read_json

SHAPE_WORDS = {**{s: s for s in SHAPES}, **{p: s for s, p in PLURALS.items()}}  # word -> shape
GRAY_WORDS = ("gray", "grey")  # "a single gray circle": a grayscale image's shape, no colour
# Words that may stand between a count and a shape: "two small identical red squares".
ADJECTIVES = ("small", "little", "tiny", "large", "big", "identical", "colored", "coloured")
COUNTS = {"a": 1, "an": 1, "one": 1, "single": 1, "another": 1, "the": 1, "two": 2, "both": 2}
COUNTS |= {"three": 3, "four": 4, "pair": 2}


@dataclass(frozen=True)
class Mention:
    """One object a caption names: its colour (None: none said), shape, how many, and where its
    colour and shape words stand among the caption's tokens (-1: no colour word)."""

    color: str | None
    shape: str
    count: int
    color_at: int
    shape_at: int


def parse_objects(tokens: Sequence[str]) -> list[Mention]:
    """The objects named in a tokenized caption, each shape word with the colour and count that
    belong to it: "two red squares and a blue star" names (red, square) x2 and (blue, star) x1."""
    found = []
    for i, word in enumerate(tokens):
        shape = SHAPE_WORDS.get(word)
        if shape is None:
            continue
        color, color_at, j = None, -1, i - 1
        while j >= 0 and tokens[j] in ("colored", "coloured"):  # "a red colored circle"
            j -= 1
        if j >= 0 and (tokens[j] in COLORS or tokens[j] in GRAY_WORDS):
            color, color_at = (tokens[j] if tokens[j] in COLORS else None), j
            j -= 1
        if color_at < 0 and tokens[i + 1 : i + 3] == ["that", "is"] and i + 3 < len(tokens):
            if tokens[i + 3] in COLORS:  # "a circle that is red"
                color, color_at = tokens[i + 3], i + 3
        while j >= 0 and tokens[j] in ADJECTIVES:
            j -= 1
        if j >= 1 and tokens[j] == "of" and tokens[j - 1] == "pair":  # "a pair of red circles"
            j -= 1
        plural = word != shape
        count = COUNTS.get(tokens[j], 0) if j >= 0 else 0
        if count == 0 or (count == 1 and plural):  # "circles" alone, or "the circles": some
            count = 2 if plural else 1
        found.append(Mention(color, shape, count, color_at, i))
    return found


def said_objects(caption: str | Sequence[str]) -> Counter:
    """The objects a caption names, as a multiset of (colour, shape)."""
    tokens = tokenize(caption) if isinstance(caption, str) else list(caption)
    said: Counter = Counter()
    for m in parse_objects(tokens):
        said[(m.color, m.shape)] += m.count
    return said


def true_objects(truth: dict) -> Counter:
    """The objects an image shows, as a multiset of (colour, shape); no colour when grayscale."""
    return Counter(
        (None if truth["grayscale"] else s["color"], s["shape"]) for s in truth["shapes"]
    )


def describe_objects(objects: Counter) -> str:
    """A multiset of (colour, shape) in words: "two red squares and a blue star"."""
    words = []
    for (color, shape), n in sorted(objects.items(), key=lambda kv: (kv[0][1], kv[0][0] or "")):
        name = f"{color} {shape}" if color else shape
        if n == 1:
            words.append(f"{'an' if name[0] in 'aeiou' else 'a'} {name}")
        else:
            number = {2: "two", 3: "three", 4: "four"}.get(n, str(n))
            words.append(
                f"{number} {name.rsplit(' ', 1)[0] + ' ' if color else ''}{PLURALS[shape]}"
            )
    return " and ".join(words) or "nothing"


def object_verdict(caption: str | Sequence[str], truth: dict) -> str:
    """ "right" when a caption names exactly the objects shown (each with its colour and count),
    else what it names that the image does not show and what it leaves out."""
    said, shown = said_objects(caption), true_objects(truth)
    if said == shown:
        return "right"
    extra, missing = said - shown, shown - said
    parts = [f"said, not shown: {describe_objects(extra)}"] if extra else []
    parts += [f"shown, not said: {describe_objects(missing)}"] if missing else []
    return "WRONG (" + "; ".join(parts) + ")"


FAILURES = ("swapped", "copied", "missing", "extra", "wrong")


def failure_kind(caption: str | Sequence[str], truth: dict) -> str | None:
    """How a caption gets the objects wrong (None: it does not): "swapped" (the right colours and
    shapes, each colour on the other's shape), "copied" (one shown colour given to shapes of
    other colours), "missing" or "extra" (fewer or more objects than shown), else "wrong" (a
    colour or shape the image does not show)."""
    said, shown = said_objects(caption), true_objects(truth)
    if said == shown:
        return None
    n_said, n_shown = sum(said.values()), sum(shown.values())
    if n_said != n_shown:
        return "missing" if n_said < n_shown else "extra"

    def tally(objects: Counter, part: int) -> Counter:  # 0: colours, 1: shapes, with counts
        out: Counter = Counter()
        for key, n in objects.items():
            out[key[part]] += n
        return out

    if tally(said, 1) == tally(shown, 1):  # the right shapes
        said_colors, shown_colors = tally(said, 0), tally(shown, 0)
        if said_colors == shown_colors:
            return "swapped"
        if len(said_colors) == 1 and set(said_colors) < set(shown_colors):
            return "copied"
    return "wrong"


def failure_counts(captions: Mapping[int, str], objects: Mapping[int, dict]) -> dict[str, int]:
    """How many captions fail in each way (failure_kind), over the images given."""
    kinds = Counter(failure_kind(c, objects[i]) for i, c in captions.items())
    return {kind: kinds[kind] for kind in FAILURES}


def shape_contrast(image: Image.Image, truth: dict) -> float:
    """How visible an image's faintest shape is: the gap in mean gray level (0-255) between the
    middle of each shape's box and the background outside all boxes, for the shape with the
    smallest gap. A gray shape on a background of nearly its own gray is hard for any eye."""
    pixels = np.asarray(image.convert("L"), dtype=np.float64)
    rows, cols = np.mgrid[: pixels.shape[0], : pixels.shape[1]]
    outside = np.ones_like(pixels, dtype=bool)
    middles = []
    for shape in truth["shapes"]:
        x, y, r = shape["box"]
        # the middle third of the box lies inside every shape (a star's arms, a triangle's base)
        inner = (abs(cols - x) < r / 3) & (abs(rows - y) < r / 3)
        middles.append(pixels[inner].mean())
        outside &= (abs(cols - x) > 1.1 * r) | (abs(rows - y) > 1.1 * r)
    background = pixels[outside].mean()
    return float(min(abs(m - background) for m in middles))


def load_objects(annotations: str | Path) -> dict[int, dict]:
    """What each image of a tiny COCO split really shows, read from objects_<split>2014.json."""
    data = read_json(objects_path(annotations), "tiny COCO objects file")
    return {int(k): v for k, v in data.items()}


def image_group(truth: dict) -> str:
    """The group an image is scored in: grayscale, one shape or two shapes (in colour)."""
    if truth["grayscale"]:
        return "grayscale"
    return "one shape" if len(truth["shapes"]) == 1 else "two shapes"


def _rates(rows: list[dict]) -> dict[str, float | int | None]:
    """The object-level rates of some images' rows (see object_report)."""
    n = len(rows)
    named = sum(r["named"] for r in rows)
    shown = sum(r["shown"] for r in rows)
    right = sum(r["right"] for r in rows)
    # None where a rate has nothing to count (no images, or no object named): not 0, and valid JSON.
    share = lambda k: round(sum(r[k] for r in rows) / n, 3) if n else None  # noqa: E731
    return {
        "images": n,
        "all_right": share("all_right"),
        "precision": round(right / named, 3) if named else None,
        "recall": round(right / shown, 3) if shown else None,
        "chair_i": round((named - right) / named, 3) if named else None,
        "chair_s": share("hallucinates"),
        "colors": share("colors"),
        "shapes": share("shapes"),
        "both": share("both"),
    }


def object_report(captions: Mapping[int, str], objects: Mapping[int, dict]) -> dict[str, dict]:
    """Captions against the truth, object by object, over all images and per group.

    all_right: the caption names every object with its own colour (or none, in grayscale) and the
    right count, and nothing else (the headline). precision and recall: of the objects named, and
    of the objects shown, the share right (multisets). chair_i and chair_s: CHAIR (Rohrbach et al.
    2018) with colour binding, the share of named objects not in the image and the share of
    captions naming at least one. colors, shapes, both: the older set measure, for continuity.
    "one small shape" is a part of "one shape": the pictures whose one shape is drawn at the size
    of each shape of a two-shape picture, the control that keeps size apart from count.
    """
    groups = ("all", "one shape", "one small shape", "two shapes", "grayscale")
    rows: dict[str, list[dict]] = {group: [] for group in groups}
    for image_id, caption in captions.items():
        truth = objects[image_id]
        said, shown = said_objects(caption), true_objects(truth)
        right = sum((said & shown).values())
        old = set_scores(caption, truth)
        row = {
            "all_right": said == shown,
            "named": sum(said.values()),
            "shown": sum(shown.values()),
            "right": right,
            "hallucinates": bool(said - shown),
            **old,
        }
        rows["all"].append(row)
        rows[image_group(truth)].append(row)
        if image_group(truth) == "one shape" and truth["shapes"][0].get("size") == "small":
            rows["one small shape"].append(row)  # drawn as large as each of two shapes
    return {group: _rates(r) for group, r in rows.items()}


def people_report(annotations: str | Path) -> dict[str, dict]:
    """object_report of the people's own captions (each image's first): the row to reach."""
    people = {i: c[0] for i, c in reference_captions(annotations).items() if c}
    return object_report(people, load_objects(annotations))


def set_scores(caption: str, truth: dict) -> dict[str, bool]:
    """The older measure: the set of colour words and the set of shape words equal the truth's
    (blind to which colour goes with which shape, and to counts)."""
    words = set(tokenize(caption))
    said_shapes = {s for s in SHAPES if s in words or PLURALS[s] in words}
    said_colors = {c for c in COLORS if c in words}
    colors_ok = said_colors == (
        set() if truth["grayscale"] else {s["color"] for s in truth["shapes"]}
    )
    shapes_ok = said_shapes == {s["shape"] for s in truth["shapes"]}
    return {"colors": colors_ok, "shapes": shapes_ok, "both": colors_ok and shapes_ok}


def object_scores(captions: dict[int, str], objects: dict[int, dict]) -> dict[str, float]:
    """Share of images whose caption names exactly the right colours, shapes, and both (the older
    set measure; object_report binds each colour to its shape and counts)."""
    right = Counter()
    for image_id, caption in captions.items():
        right.update({k: int(v) for k, v in set_scores(caption, objects[image_id]).items()})
    return {k: right[k] / max(1, len(captions)) for k in ("colors", "shapes", "both")}


def object_scores_by_count(captions: dict[int, str], objects: dict[int, dict]) -> dict[str, dict]:
    """object_scores (the older set measure) on the one-shape and on the two-shape images, apart."""
    groups = {"one shape": 1, "two shapes": 2}
    return {
        name: object_scores(
            {i: c for i, c in captions.items() if len(objects[i]["shapes"]) == n}, objects
        )
        for name, n in groups.items()
    }


def named_objects(word: str, truth: dict) -> list[dict]:
    """The objects one word names on its own, unbound: every object of a shape word's shape, or
    of a colour word's colour (the older pointing game's targets; bound_objects binds them)."""
    shape = SHAPE_WORDS.get(word)
    if shape is not None:
        return [o for o in truth["shapes"] if o["shape"] == shape]
    if word in COLORS and not truth["grayscale"]:
        return [o for o in truth["shapes"] if o["color"] == word]
    return []


def bound_objects(mention: Mention, truth: dict) -> list[dict]:
    """The objects of an image that one mention names: its shape with its own colour (with none,
    in grayscale); none when the caption binds the wrong colour to the shape."""
    return [
        o
        for o in truth["shapes"]
        if o["shape"] == mention.shape
        and (None if truth["grayscale"] else o["color"]) == mention.color
    ]


def objects_path(annotations: str | Path) -> Path:
    """Where a tiny set keeps the truth of a captions file: objects_<split>.json beside it."""
    path = Path(annotations)
    return path.with_name(path.name.replace("captions_", "objects_"))


OBJECT_COLUMNS = {
    "all_right": "all objects right",
    "precision": "precision",
    "recall": "recall",
    "chair_i": "CHAIR-i",
    "chair_s": "CHAIR-s",
    "both": "old: colours & shapes",
}


def objects_table(reports: Mapping[str, dict], markdown: bool = False) -> str:
    """object_report results of several captioners (a model, the people) as one table: a row per
    captioner and group of images."""
    head = ["captions", "images", "n", *OBJECT_COLUMNS.values()]
    rows = [
        [
            who,
            group,
            str(r["images"]),
            *("-" if r[k] is None else f"{r[k]:.1%}" for k in OBJECT_COLUMNS),
        ]
        for who, report in reports.items()
        for group, r in report.items()
        if r["images"]
    ]
    table = [head, *rows]
    if markdown:
        lines = ["| " + " | ".join(r) + " |" for r in table]
        lines.insert(1, "|---" * len(head) + "|")
        return "\n".join(lines)
    widths = [max(len(r[i]) for r in table) for i in range(len(head))]
    return "\n".join(
        "  ".join(
            c.ljust(w) if i < 2 else c.rjust(w)
            for i, (c, w) in enumerate(zip(r, widths, strict=True))
        )
        for r in table
    )
