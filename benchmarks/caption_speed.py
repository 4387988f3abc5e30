"""Measure how much faster captioning is in batches than one image at a time, as one JSON line.

Figures: images per second for greedy (beam 1) and beam-3 captioning of the tiny-COCO val images
with the default model on the CPU, each in batches of --batch-size and one image per call (as the
notebook captions a new image); the speed-up batched / one at a time; and whether both give the same
captions (if not, how many differ). Images are decoded beforehand so only captioning is timed
(resizing and normalising included). Each figure is the fastest of --repeats runs, batched and one
at a time taking turns in the same process, so the ratios hold on a busy machine. When other
processes hold the cores, --threads 1 is steadier: torch's threads otherwise wait on each other at
every one of the many small steps. Trains the default model first if no checkpoint exists
("seconds" leaves that out). A run with the default settings (the README's) is also written to
benchmarks/results/caption_speed.jsonl as its "default" row; other runs are only printed.
Run: python benchmarks/caption_speed.py [--batch-size 64] [--images N] [--threads N] [--no-record]
"""

import argparse
import contextlib
import json
import sys
import time
from collections.abc import Callable
from functools import partial

import torch

from helpers.caption.captioner import Captioner
from helpers.data.annotations import image_files
from helpers.data.images import load_rgb
from helpers.data.registry import dataset_split
from helpers.errors import run_cli
from helpers.evaluate.measured import about_run, record_result
from helpers.train.config import TrainConfig
from helpers.train.loop import ensure_checkpoint


def batched(captioner: Captioner, images: list, beam: int, batch_size: int) -> list[str]:
    """Captions of all images, batch_size images per call."""
    captions = []
    for start in range(0, len(images), batch_size):
        captions += captioner.caption(images[start : start + batch_size], beam_size=beam)
    return captions


def one_at_a_time(captioner: Captioner, images: list, beam: int) -> list[str]:
    """Captions of all images, one image per call, as a new image is captioned."""
    return [captioner.caption([img], beam_size=beam)[0] for img in images]


def best_rates(runs: list[Callable[[], list[str]]], repeats: int) -> list[tuple[float, list[str]]]:
    """For each run: captions per second of its fastest call, and its captions.

    The runs take turns, `repeats` rounds, so a burst of load from elsewhere slows them alike.
    """
    best = [0.0] * len(runs)
    captions = [[] for _ in runs]
    for _ in range(repeats):
        for i, run in enumerate(runs):
            start = time.perf_counter()
            captions[i] = run()
            best[i] = max(best[i], len(captions[i]) / (time.perf_counter() - start))
    return list(zip(best, captions, strict=True))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--images", type=int, default=None, help="how many val images (default: all)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    p.add_argument(
        "--repeats", type=int, default=3, help="timed runs of each figure; the best counts"
    )
    p.add_argument(
        "--no-record",
        action="store_true",
        help="print only (runs of other settings than the defaults are never recorded)",
    )
    args = p.parse_args(argv)
    default = all(getattr(args, k) == p.get_default(k) for k in vars(args) if k != "no_record")
    for flag in ("batch_size", "images", "repeats", "threads"):
        if getattr(args, flag) is not None and getattr(args, flag) < 1:
            p.error(f"--{flag.replace('_', '-')} must be at least 1")
    if args.threads:
        torch.set_num_threads(args.threads)

    cfg = TrainConfig()
    # Training (only when no checkpoint exists) reports its progress: keep stdout for the JSON line.
    with contextlib.redirect_stdout(sys.stderr):
        captioner = Captioner(ensure_checkpoint(cfg), device="cpu")
    val = dataset_split(cfg.dataset, "val")
    files = image_files(val.annotations, val.images)
    images = [load_rgb(files[i]) for i in sorted(files)[: args.images]]
    began = time.perf_counter()  # what the measuring takes, without training or reading files

    figures = {
        "benchmark": "caption_speed",
        "variant": "default" if default else "custom",
        "images": len(images),
        "batch_size": args.batch_size,
        "cpu_threads": torch.get_num_threads(),
    }
    with torch.inference_mode():
        for beam in (1, 3):
            # The first calls pay for lazy initialisation (kernels, allocator); they are not timed.
            captioner.caption(images[: args.batch_size], beam_size=beam)
            captioner.caption(images[:1], beam_size=beam)
            runs = [
                partial(batched, captioner, images, beam, args.batch_size),
                partial(one_at_a_time, captioner, images, beam),
            ]
            (batch_rate, batch_captions), (single_rate, single_captions) = best_rates(
                runs, args.repeats
            )
            differing = sum(a != b for a, b in zip(batch_captions, single_captions, strict=True))
            figures["greedy" if beam == 1 else f"beam{beam}"] = {
                "batched_images_per_s": round(batch_rate, 1),
                "one_at_a_time_images_per_s": round(single_rate, 1),
                "speedup": round(batch_rate / single_rate, 2),
                "same_captions": differing == 0,
                "differing_captions": differing,
            }
    figures["seconds"] = round(time.perf_counter() - began, 1)
    figures |= about_run()
    # The results file the README quotes holds the run of the default settings only.
    if default and not args.no_record:
        record_result("caption_speed", figures, key=("variant",))
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    run_cli(main)
