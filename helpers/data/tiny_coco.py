"""The tiny COCO: a small, generated dataset of coloured shapes in the official COCO captions layout.

Each image holds one or two shapes (circle, square, triangle, star) of six colours, of two sizes,
in one of five places, on a plain or textured background; some are grayscale, as in real COCO.
After the mixed images each split has more two-shape images (a quarter of them grayscale): naming
two objects, each with its own colour, is the hard part, and it needs enough pictures to learn
and to measure.
Five captions per image are written the way people write COCO captions, and are true to the image.
The same seed gives byte-identical files.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from helpers.data.generated import extra_counts, generated_folder, generator_main, generator_params
from helpers.data.paths import data_dir
from helpers.environment import quiet
from helpers.errors import run_cli
from helpers.files import write_json

MANIFEST = "tiny_coco.json"
VERSION = 2
DEFAULTS = {"seed": 0, "n_train": 1000, "n_val": 200, "train_pairs": 800, "val_pairs": 200}

COLORS = {
    "red": (220, 30, 30),
    "green": (30, 170, 40),
    "blue": (30, 60, 220),
    "yellow": (240, 220, 20),
    "purple": (140, 40, 170),
    "orange": (250, 140, 10),
}
SHAPES = ("circle", "square", "triangle", "star")
PLURALS = {"circle": "circles", "square": "squares", "triangle": "triangles", "star": "stars"}
POSITIONS = {  # where the shape's centre goes, as fractions of width and height
    "left": (0.26, 0.5),
    "right": (0.74, 0.5),
    "top": (0.5, 0.26),
    "bottom": (0.5, 0.74),
    "center": (0.5, 0.5),
}
POSITION_PHRASES = {
    "left": ["on the left", "on the left side", "at the far left"],
    "right": ["on the right", "on the right side", "at the far right"],
    "top": ["at the top", "near the top", "in the upper part"],
    "bottom": ["at the bottom", "near the bottom", "in the lower part"],
    "center": ["in the center", "in the middle", "in the middle part"],
}
BACKGROUNDS = ("white", "gray", "black", "striped", "checkered", "speckled")
SIZE_WORDS = {"small": ["small", "little", "tiny"], "large": ["large", "big", "large"]}
PICTURE = ["picture", "image", "photo"]
INFO = {
    "description": "Tiny COCO: generated shapes with captions, for the image-captioning course",
    "url": "https://github.com/",
    "version": "1.0",
    "year": 2014,
    "contributor": "helpers.tiny_coco",
    "date_created": "2014/01/01",
}
LICENSES = [{"url": "https://creativecommons.org/publicdomain/zero/1.0/", "id": 1, "name": "CC0"}]


@dataclass
class Shape:
    """One drawn shape and the words that describe it."""

    shape: str
    color: str
    size: str
    position: str
    box: list[float] | None = None  # centre x, centre y, radius in pixels, once drawn


def _a(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


def _background(rng: np.random.Generator, kind: str, w: int, h: int) -> Image.Image:
    """A plain or textured background, kept pale or dark so every shape colour stands out."""
    if kind in ("white", "gray", "black"):
        level = {"white": 245, "gray": 150, "black": 20}[kind]
        arr = np.full((h, w, 3), level, np.int16) + rng.integers(-6, 7, (h, w, 1))
    elif kind == "speckled":
        arr = 200 + rng.integers(-45, 46, (h, w, 1)).repeat(3, axis=2)
    else:
        yy, xx = np.mgrid[0:h, 0:w]
        period = int(rng.integers(8, 16))
        if kind == "striped":
            on = (xx // period) % 2 == 0 if rng.random() < 0.5 else (yy // period) % 2 == 0
        else:
            on = ((xx // period) + (yy // period)) % 2 == 0
        arr = np.where(on, 230, 175)[..., None].repeat(3, axis=2).astype(np.int16)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def _draw(draw: ImageDraw.ImageDraw, s: Shape, cx: float, cy: float, r: float, rgb) -> None:
    if s.shape == "circle":
        draw.ellipse([cx - r, cy - r, cx + r, cy + r], fill=rgb)
    elif s.shape == "square":
        k = r * 0.88
        draw.rectangle([cx - k, cy - k, cx + k, cy + k], fill=rgb)
    elif s.shape == "triangle":
        pts = [
            (cx + r * math.cos(a), cy + r * math.sin(a))
            for a in (-math.pi / 2, math.pi / 6, 5 * math.pi / 6)
        ]
        draw.polygon(pts, fill=rgb)
    else:  # five-pointed star
        pts = []
        for i in range(10):
            a = -math.pi / 2 + i * math.pi / 5
            rr = r if i % 2 == 0 else r * 0.45
            pts.append((cx + rr * math.cos(a), cy + rr * math.sin(a)))
        draw.polygon(pts, fill=rgb)


def _image_size(rng: random.Random) -> tuple[int, int]:
    """Width and height of 96-320 px with COCO's usual shapes: mostly 4:3 or 3:4, some square."""
    short = rng.randint(96, 240)
    aspect = rng.choice([4 / 3, 4 / 3, 3 / 4, 3 / 4, 1.0, 3 / 2, 2 / 3])
    long = min(320, round(short * max(aspect, 1 / aspect)))
    return (long, short) if aspect >= 1 else (short, long)


def _scene(rng: random.Random, pair: bool = False) -> tuple[list[Shape], str, bool]:
    """Choose what an image shows: shapes, background, and whether it is grayscale (`pair`: two
    shapes, a quarter of them grayscale)."""
    background = rng.choice(BACKGROUNDS)
    gray = rng.random() < (0.25 if pair else 0.04)
    if not pair and rng.random() < 0.7:
        size = rng.choice(["small", "large"])
        position = "center" if size == "large" else rng.choice(list(POSITIONS))
        shapes = [Shape(rng.choice(SHAPES), rng.choice(list(COLORS)), size, position)]
    else:
        a, b = ("left", "right") if rng.random() < 0.6 else ("top", "bottom")
        first = Shape(rng.choice(SHAPES), rng.choice(list(COLORS)), "small", a)
        if rng.random() < 0.15:  # sometimes a pair of the same shape and colour
            second = Shape(first.shape, first.color, "small", b)
        else:
            second = Shape(rng.choice(SHAPES), rng.choice(list(COLORS)), "small", b)
        shapes = [first, second]
    return shapes, background, gray


def _render(shapes: list[Shape], background: str, gray: bool, w: int, h: int, nrng) -> Image.Image:
    img = _background(nrng, background, w, h)
    draw = ImageDraw.Draw(img)
    m = min(w, h)
    for s in shapes:
        fx, fy = POSITIONS[s.position]
        # Big enough that a small CNN tells a star from a circle at 48 px; two never overlap.
        lo, hi = (0.29, 0.34) if s.size == "large" else (0.17, 0.21)
        r = m * float(nrng.uniform(lo, hi))
        # Jitter scales with the short side, so the shape's centre stays inside the shape.
        cx = fx * w + float(nrng.uniform(-0.02, 0.02)) * m
        cy = fy * h + float(nrng.uniform(-0.02, 0.02)) * m
        s.box = [round(cx, 1), round(cy, 1), round(r, 1)]
        rgb = tuple(int(np.clip(c + nrng.integers(-20, 21), 0, 255)) for c in COLORS[s.color])
        _draw(draw, s, cx, cy, r, rgb)
    return img.convert("L") if gray else img


def _one_shape_captions(rng: random.Random, s: Shape, bg: str, gray: bool) -> list[str]:
    c = "" if gray else s.color + " "
    cw = "gray " if gray else c
    z = rng.choice(SIZE_WORDS[s.size])
    pos = rng.choice(POSITION_PHRASES[s.position])
    pic = rng.choice(PICTURE)
    art = "a" if gray else _a(s.color)
    t = [
        f"{art} {c}{s.shape} on a {bg} background",
        f"a {z} {c}{s.shape} {pos}",
        f"there is {art} {c}{s.shape} {pos} of the {pic}",
        f"{_a(pic)} {pic} of a single {cw}{s.shape} on a {bg} background",
        f"one {z} {c}{s.shape} against a {bg} backdrop",
        f"{art} {c}{s.shape} sitting {pos}",
        f"the {pic} shows a {z} {c}{s.shape}",
        f"a {z} {cw}{s.shape} drawn {pos} on a {bg} background",
    ]
    if gray:
        t += [
            f"a black and white {pic} of a {s.shape}",
            f"a grayscale {pic} with a {z} {s.shape} {pos}",
        ]
    else:
        t += [
            f"a {s.shape} that is {s.color}, {pos}",
            f"{_a(s.color)} {s.color} colored {s.shape} {pos}",
        ]
    return t


def _two_shape_captions(rng: random.Random, a: Shape, b: Shape, bg: str, gray: bool) -> list[str]:
    ca, cb = ("", "") if gray else (a.color + " ", b.color + " ")
    arta, artb = ("a", "a") if gray else (_a(a.color), _a(b.color))
    pic = rng.choice(PICTURE)
    rel = "to the left of" if a.position == "left" else "above"
    t = [
        f"{arta} {ca}{a.shape} and {artb} {cb}{b.shape}",
        f"{arta} {ca}{a.shape} {rel} {artb} {cb}{b.shape}",
        f"two shapes on a {bg} background, {arta} {ca}{a.shape} and {artb} {cb}{b.shape}",
        f"{artb} {cb}{b.shape} next to {arta} {ca}{a.shape}",
        f"there are two shapes in the {pic}: {arta} {ca}{a.shape} and {artb} {cb}{b.shape}",
        f"{_a(pic)} {pic} with {arta} {ca}{a.shape} and {artb} {cb}{b.shape} on a {bg} background",
    ]
    if (a.shape, a.color) == (b.shape, b.color):
        many = ("" if gray else a.color + " ") + PLURALS[a.shape]
        t = [
            f"two {many} side by side"
            if a.position == "left"
            else f"two {many}, one above the other",
            f"a pair of {many} on a {bg} background",
            f"two small {many} in the {pic}",
            f"{_a(pic)} {pic} of two {many}",
            f"{arta} {ca}{a.shape} {rel} another {ca}{a.shape}",
            f"two identical {many} on a {bg} background",
        ]
    if gray:
        t += [f"a black and white {pic} of a {a.shape} and a {b.shape}"]
    return t


def _style(rng: random.Random, text: str) -> str:
    """Vary capitalisation, final period and stray spaces the way real COCO captions do."""
    if rng.random() < 0.85:
        text = text[0].upper() + text[1:]
    if rng.random() < 0.7:
        text += "."
    if rng.random() < 0.05:
        text += " "
    return text


def captions_for(
    rng: random.Random, shapes: list[Shape], background: str, gray: bool, n: int = 5
) -> list[str]:
    """Write `n` different true captions for a scene."""
    if len(shapes) == 1:
        pool = _one_shape_captions(rng, shapes[0], background, gray)
    else:
        pool = _two_shape_captions(rng, shapes[0], shapes[1], background, gray)
    return [_style(rng, t) for t in rng.sample(pool, n)]


def _write_split(
    out: Path,
    split: str,
    n: int,
    pairs: int,
    first_id: int,
    first_ann: int,
    seed: int,
    progress: bool = True,
) -> dict:
    """Render and caption one split: `n` mixed images, then `pairs` two-shape ones."""
    folder = out / f"{split}2014"
    folder.mkdir(parents=True)
    images, annotations, objects = [], [], {}
    ann_id = first_ann
    for k in tqdm(
        range(n + pairs), desc=f"tiny COCO {split}", unit="img", leave=False, disable=not progress
    ):
        image_id = first_id + k
        # The mixed images keep their seeds whatever `pairs` is: more pairs add, never change.
        rng = random.Random(f"{seed}-{split}-{k}" if k < n else f"{seed}-{split}-pair-{k - n}")
        nrng = np.random.default_rng([seed, image_id])
        shapes, background, gray = _scene(rng, pair=k >= n)
        w, h = _image_size(rng)
        name = f"COCO_{split}2014_{image_id:012d}.jpg"
        _render(shapes, background, gray, w, h, nrng).save(folder / name, quality=90)
        images.append(
            {
                "license": 1,
                "file_name": name,
                "height": h,
                "width": w,
                "date_captured": "2014-01-01 00:00:00",
                "id": image_id,
            }
        )
        for text in captions_for(rng, shapes, background, gray):
            annotations.append({"image_id": image_id, "id": ann_id, "caption": text})
            ann_id += 1
        objects[str(image_id)] = {
            "grayscale": gray,
            "background": background,
            "shapes": [vars(s) for s in shapes],
        }
    ann = {"info": INFO, "licenses": LICENSES, "images": images, "annotations": annotations}
    write_json(out / "annotations" / f"captions_{split}2014.json", ann)
    write_json(out / "annotations" / f"objects_{split}2014.json", objects)
    return {"images": n + pairs, "captions": len(annotations)}


def is_tiny_coco(folder: str | Path) -> bool:
    """Whether `folder` was written by this generator (it holds our manifest)."""
    return (Path(folder) / MANIFEST).is_file()


def generate_tiny_coco(
    out: str | Path,
    seed: int = 0,
    n_train: int = 1000,
    n_val: int = 200,
    force: bool = False,
    progress: bool = True,
    train_pairs: int = 0,
    val_pairs: int = 0,
) -> Path:
    """Write the tiny COCO to `out`; keep an identical one, replace only a folder we wrote."""
    out = Path(out)
    params = generator_params(__file__, out, VERSION, seed, n_train=n_train, n_val=n_val)
    params |= extra_counts(out, train_pairs=train_pairs, val_pairs=val_pairs)

    def write(tmp: Path) -> dict:
        return {
            "splits": {
                "train": _write_split(tmp, "train", n_train, train_pairs, 1, 1, seed, progress),
                "val": _write_split(
                    tmp, "val", n_val, val_pairs, 1_000_001, 5_000_001, seed, progress
                ),
            }
        }

    return generated_folder(out, params, MANIFEST, "tiny COCO", write, force)


def ensure_tiny_coco(out: str | Path | None = None) -> Path:
    """Return the default tiny COCO folder, generating it first when missing."""
    return generate_tiny_coco(out or data_dir() / "tiny_coco", **DEFAULTS, progress=not quiet())


def main(argv: list[str] | None = None) -> int:
    return generator_main(
        argv, __doc__, "tiny_coco", generate_tiny_coco, DEFAULTS, "images", "tiny COCO"
    )


if __name__ == "__main__":
    run_cli(main)
