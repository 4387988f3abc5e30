"""The tiny video set: generated clips of shapes that move, grow, spin or change colour, as real
MP4 (H.264) files in MSR-VTT's layout, with five captions and an action label per object.

One frame cannot tell the actions apart: a clip's middle frame looks the same whether the shape
moves left or right, up or down, grows or shrinks, spins or stays still. After the mixed clips each
split has more clips of two shapes: telling which shape does what is the hard part. The same seed gives
byte-identical files (one encoder thread, no timestamps in the files).
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import random
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw
from tqdm import tqdm

from helpers.data.generated import extra_counts, generated_folder, generator_main, generator_params
from helpers.data.paths import data_dir
from helpers.environment import quiet, usable_cores
from helpers.errors import run_cli
from helpers.files import write_json

MANIFEST = "tiny_video.json"
ANNOTATIONS = "videodatainfo.json"  # MSR-VTT's train_val_videodatainfo.json, in miniature
VERSION = 2
DEFAULTS = {"seed": 0, "n_train": 600, "n_val": 150, "train_pairs": 400, "val_pairs": 100}
# 128 x 128 pixels, 8 frames a second. At 64 pixels the encoder read the padding of the chroma
# rows (32 bytes), and the files changed from run to run; 64-byte rows need none.
SIZE, FPS = 128, 8
COLORS = {
    "red": (220, 30, 30),
    "green": (30, 170, 40),
    "blue": (30, 60, 220),
    "yellow": (240, 220, 20),
    "purple": (140, 40, 170),
    "orange": (250, 140, 10),
}
SHAPES = ("circle", "square", "triangle", "star")
# Each action: how captions say it (present tense, and the -ing form for "a video of ...").
ACTIONS = {
    "left": (["moves to the left", "slides to the left", "goes left"], "moving to the left"),
    "right": (["moves to the right", "slides to the right", "goes right"], "moving to the right"),
    "up": (["moves up", "rises", "goes up"], "moving up"),
    "down": (["moves down", "falls", "goes down"], "moving down"),
    "grow": (["grows", "gets bigger", "grows bigger"], "growing"),
    "shrink": (["shrinks", "gets smaller", "shrinks down"], "shrinking"),
    "spin": (["spins", "rotates", "turns around"], "spinning"),
    "recolor": (["turns {new}", "changes colour to {new}", "becomes {new}"], "turning {new}"),
    "still": (["stays still", "does not move", "sits still"], "standing still"),
}
BACKGROUNDS = {"white": 240, "gray": 140, "black": 25}


@dataclass
class Actor:
    """One shape in a clip and what it does."""

    shape: str
    color: str
    action: str
    new_color: str | None = None  # "recolor": the colour it turns into
    x: float = 0.5  # centre at the middle frame, as a fraction of the frame
    y: float = 0.5
    radius: float = 0.19  # at the middle frame, as a fraction of the frame

    def at(self, t: float) -> tuple[float, float, float, float, str]:
        """Centre x, y, radius, angle (degrees) and colour at time t in [0, 1]."""
        d = t - 0.5  # the middle frame (t = 0.5) looks the same for every action
        x, y, r, angle, color = self.x, self.y, self.radius, 0.0, self.color
        step = 0.3 if self.radius > 0.175 else 0.16  # two actors share the frame: shorter moves
        if self.action == "left":
            x -= step * d
        elif self.action == "right":
            x += step * d
        elif self.action == "up":
            y -= step * d
        elif self.action == "down":
            y += step * d
        elif self.action in ("grow", "shrink"):
            r *= 1.8 ** (d if self.action == "grow" else -d)
        elif self.action == "spin":
            angle = 200 * d
        elif self.action == "recolor" and t > 0.5:
            color = self.new_color
        return x, y, r, angle, color


def _points(shape: str, cx: float, cy: float, r: float, angle: float) -> list[tuple]:
    """A polygon's corners (square, triangle, star), turned by `angle` degrees."""
    if shape == "square":
        corners = [(math.pi / 4 + k * math.pi / 2, r * 1.2) for k in range(4)]
    elif shape == "triangle":
        corners = [(-math.pi / 2 + k * 2 * math.pi / 3, r) for k in range(3)]
    else:
        corners = [
            (-math.pi / 2 + k * math.pi / 5, r if k % 2 == 0 else r * 0.45) for k in range(10)
        ]
    turn = math.radians(angle)
    return [(cx + d * math.cos(a + turn), cy + d * math.sin(a + turn)) for a, d in corners]


def render(actors: list[Actor], background: str, t: float, noise: np.ndarray) -> Image.Image:
    """One frame at time t in [0, 1]: the background (with its fixed noise) and every actor."""
    base = np.clip(BACKGROUNDS[background] + noise, 0, 255).astype(np.uint8).repeat(3, axis=2)
    img = Image.fromarray(base, "RGB")
    draw = ImageDraw.Draw(img)
    for actor in actors:
        x, y, r, angle, color = actor.at(t)
        cx, cy, rr = x * SIZE, y * SIZE, r * SIZE
        if actor.shape == "circle":
            draw.ellipse([cx - rr, cy - rr, cx + rr, cy + rr], fill=COLORS[color])
        else:
            draw.polygon(_points(actor.shape, cx, cy, rr, angle), fill=COLORS[color])
    return img


def _actor(rng: random.Random, x: float, y: float, radius: float, actions: list[str]) -> Actor:
    shape = rng.choice(SHAPES)
    # A circle that spins looks still: circles do everything else.
    action = rng.choice([a for a in actions if not (shape == "circle" and a == "spin")])
    color = rng.choice(list(COLORS))
    new = rng.choice([c for c in COLORS if c != color]) if action == "recolor" else None
    return Actor(shape, color, action, new, x, y, radius)


def scene(rng: random.Random, pair: bool = False) -> tuple[list[Actor], str, int]:
    """What a clip shows: one or two actors (`pair`: two), the background, and the number of
    frames."""
    background = rng.choice(list(BACKGROUNDS))
    frames = rng.randint(8, 16)
    if not pair and rng.random() < 0.7:
        x, y = rng.uniform(0.42, 0.58), rng.uniform(0.42, 0.58)
        return [_actor(rng, x, y, rng.uniform(0.18, 0.21), list(ACTIONS))], background, frames
    # Two actors, one per half; each moves only along its half, so they never meet.
    across = rng.random() < 0.5
    along = ["up", "down"] if across else ["left", "right"]
    others = ["grow", "shrink", "spin", "recolor", "still"]
    a = (0.26, 0.5) if across else (0.5, 0.26)
    b = (0.74, 0.5) if across else (0.5, 0.74)
    actors = [_actor(rng, *a, rng.uniform(0.15, 0.17), along + others)]
    while True:  # two look-alike shapes would make every caption ambiguous: which one spins?
        second = _actor(rng, *b, rng.uniform(0.15, 0.17), along + others)
        if (second.color, second.shape) != (actors[0].color, actors[0].shape):
            return [*actors, second], background, frames


def _name(actor: Actor) -> str:
    article = "an" if actor.color[0] in "aeiou" else "a"
    return f"{article} {actor.color} {actor.shape}"


def _phrase(rng: random.Random, actor: Actor) -> str:
    return rng.choice(ACTIONS[actor.action][0]).format(new=actor.new_color)


def captions_for(rng: random.Random, actors: list[Actor], background: str, n: int = 5) -> list[str]:
    """n varied captions, true to the clip: what each actor is and what it does."""
    if len(actors) == 1:
        (a,) = actors
        ing = ACTIONS[a.action][1].format(new=a.new_color)
        options = [
            f"{_name(a)} {_phrase(rng, a)}",
            f"the {a.color} {a.shape} {_phrase(rng, a)}",
            f"a video of {_name(a)} {ing}",
            f"{_name(a)} {_phrase(rng, a)} on a {background} background",
            f"on a {background} background, {_name(a)} {_phrase(rng, a)}",
            f"a clip where {_name(a)} {_phrase(rng, a)}",
        ]
    else:
        a, b = actors
        options = [
            f"{_name(a)} {_phrase(rng, a)} and {_name(b)} {_phrase(rng, b)}",
            f"{_name(a)} {_phrase(rng, a)} while {_name(b)} {_phrase(rng, b)}",
            f"{_name(b)} {_phrase(rng, b)} and {_name(a)} {_phrase(rng, a)}",
            f"two shapes: {_name(a)} {_phrase(rng, a)}, {_name(b)} {_phrase(rng, b)}",
            f"on a {background} background {_name(a)} {_phrase(rng, a)} and {_name(b)} {_phrase(rng, b)}",
        ]
    picked = rng.sample(options, n)
    return [_style(rng, text) for text in picked]


def _style(rng: random.Random, text: str) -> str:
    """Capitalise most captions and end some with a full stop, as people write them."""
    if rng.random() < 0.85:
        text = text[0].upper() + text[1:]
    return text + "." if rng.random() < 0.6 else text


def write_mp4(path: Path, frames: list[Image.Image], fps: int = FPS) -> None:
    """Encode frames as an H.264 MP4 with PyAV; one thread, so the bytes are the same every time."""
    import av

    with av.open(str(path), mode="w", format="mp4") as container:
        # One thread everywhere: x264 with several threads may code a frame differently per run.
        options = {"crf": "20", "preset": "medium", "threads": "1", "x264-params": "threads=1"}
        stream = container.add_stream("libx264", rate=fps, options=options)
        stream.width, stream.height, stream.pix_fmt = SIZE, SIZE, "yuv420p"
        stream.codec_context.thread_count = 1
        stream.codec_context.thread_type = "NONE"
        for img in frames:
            for packet in stream.encode(av.VideoFrame.from_image(img)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def _clip(task: tuple) -> tuple[dict, list[str]]:
    """One clip, written to its MP4 file: its entry in the annotations and its five captions.
    Everything random comes from the clip's own seeds, so clips can be made in any order."""
    out, split, k, n, first, seed = task
    rng = random.Random(f"{seed}-{split}-{k}" if k < n else f"{seed}-{split}-pair-{k - n}")
    actors, background, frames = scene(rng, pair=k >= n)
    noise = np.random.default_rng([seed, first + k]).integers(-8, 9, (SIZE, SIZE, 1))
    video_id = f"video{first + k}"
    images = [render(actors, background, i / (frames - 1), noise) for i in range(frames)]
    write_mp4(out / "videos" / f"{video_id}.mp4", images)
    video = {
        "category": 0,
        "url": "",
        "video_id": video_id,
        "start time": 0.0,
        "end time": frames / FPS,
        "split": split,
        "id": first + k,
        "frames": frames,
        "background": background,
        "actions": [asdict(a) for a in actors],
    }
    return video, captions_for(rng, actors, background)


def _write_split(
    out: Path, split: str, n: int, pairs: int, first: int, seed: int, progress: bool, pool
) -> tuple:
    """`n` mixed clips, then `pairs` clips of two actors (more to learn binding from and to
    measure it on); the mixed clips keep their seeds whatever `pairs` is. `pool` (or None) makes
    clips side by side."""
    tasks = [(out, split, k, n, first, seed) for k in range(n + pairs)]
    clips = pool.imap(_clip, tasks, chunksize=16) if pool else map(_clip, tasks)
    bar = tqdm(
        clips, total=len(tasks), desc=f"tiny video {split}", unit="clip", disable=not progress
    )
    videos, sentences = [], []
    for video, captions in bar:
        videos.append(video)
        for text in captions:
            sentences.append(
                {"caption": text, "video_id": video["video_id"], "sen_id": len(sentences)}
            )
    return videos, sentences


def generate_tiny_video(
    out: str | Path,
    seed: int = 0,
    n_train: int = 600,
    n_val: int = 150,
    force: bool = False,
    progress: bool = True,
    train_pairs: int = 0,
    val_pairs: int = 0,
    workers: int | None = None,
) -> Path:
    """Write the tiny video set to `out`; keep an identical one, replace only a folder we wrote.

    `workers`: processes encoding clips side by side (default: one per usable core for a set of
    hundreds of clips); the files are the same whatever the number."""
    out = Path(out)
    params = generator_params(__file__, out, VERSION, seed, n_train=n_train, n_val=n_val)
    params |= extra_counts(out, train_pairs=train_pairs, val_pairs=val_pairs)

    def write(tmp: Path) -> dict:
        (tmp / "videos").mkdir()
        # One process per usable core encodes clips side by side; each encoder keeps one thread
        # and each clip its own seeds, so the files are the same whatever the number of cores.
        count = workers or min(usable_cores(), max(1, (n_train + n_val) // 100))
        with contextlib.ExitStack() as stack:
            pool = None
            if count > 1:
                pool = stack.enter_context(multiprocessing.get_context("spawn").Pool(count))
            train = _write_split(tmp, "train", n_train, train_pairs, 0, seed, progress, pool)
            first = n_train + train_pairs
            val = _write_split(tmp, "validate", n_val, val_pairs, first, seed, progress, pool)
        info = {"description": "Tiny video: generated shapes in MSR-VTT's layout", "year": 2016}
        data = {"info": info, "videos": train[0] + val[0], "sentences": train[1] + val[1]}
        write_json(tmp / ANNOTATIONS, data)
        return {"actions": list(ACTIONS)}

    return generated_folder(out, params, MANIFEST, "tiny video set", write, force)


def ensure_tiny_video(out: str | Path | None = None) -> Path:
    """The default tiny video folder, generated first when missing."""
    return generate_tiny_video(out or data_dir() / "tiny_video", **DEFAULTS, progress=not quiet())


def main(argv: list[str] | None = None) -> int:
    return generator_main(
        argv, __doc__, "tiny_video", generate_tiny_video, DEFAULTS, "clips", "tiny video set"
    )


if __name__ == "__main__":
    run_cli(main)
