"""Print how fast resizing photos to 256x256 is: the chapter's serial loop against resize_images.

Upscales the tiny COCO train images (built if missing) once to typical COCO photo size (640x480
landscape, 480x640 portrait, JPEG quality 90) in a temporary folder, then times in the same run:
(a) the chapter's loop: one process, Image.open, resize((256, 256), LANCZOS), save;
(b) resize_images, the fast path: JPEG draft decoding and a process pool on all cores;
(c) draft without a pool (one process); (d) the pool without draft. Each way runs --rounds
times, taking turns with the others, and its best round counts.
Draft decodes at 1/2, 1/4 or 1/8 scale only when the photo is at least that many times the output
on both sides, so "draft_reduced" counts the inputs it shrinks: none of 640x480 for 256x256
(480 < 2 x 256); try --size 224 to see it at work. Not like for like: the chapter saves JPEGs at
Pillow's default quality 75 straight into the final name, resize_images at 95 through a temporary
file renamed into place (an interruption leaves no half-written image), with one sync at the end.
"ms_per_image_one_process" splits one process's work per photo into decoding (full and draft),
the LANCZOS resize (from each) and the JPEG encoding, to show where the time goes: with two cores
the pool can at most halve it, so beating 2x needs draft to shrink the decode and the resize.
--photos DIR times real photos instead (cycled to --images), e.g. ../shared/coco_sample/images.
The machine's other load shows in the numbers. The README's three runs on 2,000 photos (256x256,
--size 224, and --photos ../shared/coco_sample/images at 256x256) are also written to
benchmarks/results/resize_speed.jsonl, as rows "default", "size 224" and "real photos"; runs of
other settings are only printed.
Run: python benchmarks/resize_speed.py [--images N] [--size S] [--photos DIR] [--no-record]
"""

import argparse
import io
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

from helpers.data.images import load_rgb, resize_image
from helpers.data.registry import dataset_split
from helpers.data.resize import resize_images
from helpers.evaluate.measured import about_run, record_result

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "coco_sample" / "images"


def make_photos(folder: Path, n: int) -> None:
    """Upscale n tiny COCO images (cycling if needed) to 640x480 or 480x640 JPEGs."""
    folder.mkdir()
    tiny = sorted(dataset_split("tiny", "train").images.iterdir())
    for i in range(n):
        with Image.open(tiny[i % len(tiny)]) as img:
            size = (480, 640) if img.height > img.width else (640, 480)
            img.resize(size, Image.BICUBIC).save(folder / f"{i:06d}.jpg", quality=90)


def copy_photos(photos: Path, folder: Path, n: int) -> None:
    """Copy n real photos (cycling if needed) under new names into folder."""
    folder.mkdir()
    real = sorted(p for p in photos.iterdir() if p.suffix.lower() in (".jpg", ".jpeg"))
    if not real:
        raise SystemExit(f"{photos}: no JPEG photos in this folder")
    for i in range(n):
        shutil.copyfile(real[i % len(real)], folder / f"{i:06d}.jpg")


def stage_times(src: Path, size: int, n: int = 200) -> dict[str, float]:
    """Milliseconds per photo of each step, best of three passes, one process, first n photos."""

    def best_ms(step, items: list) -> tuple[float, list]:
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            out = [step(x) for x in items]
            best = min(best, (time.perf_counter() - start) / len(items) * 1000)
        return best, out

    paths = sorted(src.iterdir())[:n]
    times = {}
    times["decode_full"], full = best_ms(load_rgb, paths)
    times["decode_draft"], drafted = best_ms(lambda p: load_rgb(p, draft=(size, size)), paths)
    times["lanczos_from_full"], small = best_ms(lambda im: resize_image(im, (size, size)), full)
    times["lanczos_from_draft"], _ = best_ms(lambda im: resize_image(im, (size, size)), drafted)
    times["encode_q95"], _ = best_ms(lambda im: im.save(io.BytesIO(), "JPEG", quality=95), small)
    return {k: round(v, 2) for k, v in times.items()}


def chapter_loop(src: Path, dst: Path, size: int) -> None:
    """The source chapter's reshape_images (ANTIALIAS is LANCZOS's old name), minus its prints."""
    dst.mkdir()
    for name in os.listdir(src):
        with open(src / name, "r+b") as f, Image.open(f) as image:
            image = image.resize([size, size], Image.LANCZOS)
            image.save(dst / name, image.format)


def draft_reduced(src: Path, size: int) -> int:
    """How many inputs draft would decode at a reduced scale (draft reads only the header)."""
    count = 0
    for path in src.iterdir():
        with Image.open(path) as img:
            full = img.size
            img.draft("RGB", (size, size))
            count += img.size != full
    return count


def mean_abs_diff(a: Path, b: Path) -> float:
    """Mean absolute pixel difference between same-named images of two folders."""
    diffs = [
        np.abs(np.asarray(Image.open(p), float) - np.asarray(Image.open(b / p.name), float)).mean()
        for p in sorted(a.iterdir())
    ]
    return float(np.mean(diffs))


p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--images", type=int, default=2000, help="photos to resize (2000)")
p.add_argument("--size", type=int, default=256, help="output width and height (256)")
p.add_argument("--rounds", type=int, default=2, help="rounds of all four ways; best kept (2)")
p.add_argument("--photos", type=Path, help="a folder of real JPEG photos to time instead")
p.add_argument(
    "--no-record",
    action="store_true",
    help="print only (runs of settings the README does not quote are never recorded)",
)
args = p.parse_args()
VARIANTS = {  # (size, photos): the row of each run the README quotes, all on 2,000 photos
    (256, None): "default",
    (224, None): "size 224",
    (256, "coco_sample"): "real photos",
}
photos = args.photos and ("coco_sample" if args.photos.resolve() == SAMPLE.resolve() else "own")
variant = VARIANTS.get((args.size, photos)) if args.images == 2000 else None

with tempfile.TemporaryDirectory() as tmp:
    tmp = Path(tmp)
    if args.photos:
        copy_photos(args.photos, tmp / "photos", args.images)
    else:
        make_photos(tmp / "photos", args.images)

    def fast(out: Path, workers: int | None = None, draft: bool = True) -> None:
        resize_images(tmp / "photos", out, args.size, workers, progress=False, draft=draft)

    runs = {
        "a_chapter_serial": lambda out: chapter_loop(tmp / "photos", out, args.size),
        "b_fast_draft_pool": fast,
        "c_draft_one_process": lambda out: fast(out, workers=1),
        "d_pool_no_draft": lambda out: fast(out, draft=False),
    }
    # Rounds take turns (a b c d, a b c d, ...) and each way keeps its best round, so a burst of
    # other load on the machine slows one round of one way, not the ratio.
    speed = dict.fromkeys(runs, 0.0)
    for _ in range(args.rounds):
        for name, run in runs.items():
            shutil.rmtree(tmp / name, ignore_errors=True)  # resize_images would skip finished files
            start = time.perf_counter()
            run(tmp / name)
            speed[name] = max(speed[name], args.images / (time.perf_counter() - start))
            assert len(os.listdir(tmp / name)) == args.images, name
    reduced = draft_reduced(tmp / "photos", args.size)
    diff = mean_abs_diff(tmp / "b_fast_draft_pool", tmp / "d_pool_no_draft")
    stages = stage_times(tmp / "photos", args.size)
row = {
    "benchmark": "resize_speed",
    "variant": variant or "custom",
    "images": args.images,
    "rounds": args.rounds,
    "photos": str(args.photos) if args.photos else "tiny COCO upscaled to 640x480",
    "size": args.size,
    "cpu_count": os.cpu_count(),
    "images_per_second": {k: round(v, 1) for k, v in speed.items()},
    "fast_over_chapter": round(speed["b_fast_draft_pool"] / speed["a_chapter_serial"], 2),
    "seconds_chapter": round(args.images / speed["a_chapter_serial"], 2),
    "draft_reduced": reduced,
    "mean_abs_diff_draft_vs_plain": round(diff, 2),
    "ms_per_image_one_process": stages,
} | about_run()
# The results file the README quotes holds its three runs only.
if variant and not args.no_record:
    record_result("resize_speed", row, key=("variant",))
print(json.dumps(row))
