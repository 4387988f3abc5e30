"""The source's training loop against the cached-feature loop, same data and model: one JSON line.

With a frozen backbone the source's loop runs the CNN again for every caption of every image in
every epoch (COCO has about 5 captions per image). The cached loop (helpers.data.features) runs it once
per image and view, before the first epoch, and then trains on the stored features. Both runs here
use the same subset of the tiny COCO, the same frozen ResNet (ResNet-18 by default) at the source's
sizes (resize 256, crop 224), the same seed, batch size and number of epochs. Figures: seconds per
epoch (training + validation) of each and their ratio, the one-off cache build, the total time of
each run and its ratio, the final validation loss of each (equal within noise: only which crops
the frozen CNN saw differs), and the CNN forward passes each needs, counted from the data.

ImageNet weights cannot be downloaded offline, so the ResNet keeps its seeded random weights; a
forward pass costs the same whatever the weights hold, so the timings are those of a pretrained
backbone (the losses are not: random features say little about the picture).

A run with the default settings (the README's) is also written to
benchmarks/results/train_speed.jsonl as its "default" row; runs of other settings are only printed.

Run: python benchmarks/train_speed.py [--backbone resnet50] [--images N] [--epochs N] [--threads N]
About 1.5 minutes with the defaults on 2 idle CPU cores (ResNet-18; ResNet-50 takes about 3x as
long); everything is built in a temp folder, not in the course's data_dir.
"""

import argparse
import contextlib
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch

from helpers.data.annotations import load_captions
from helpers.data.coco_subset import coco_subset
from helpers.data.layouts import coco_split
from helpers.data.registry import dataset_split
from helpers.data.resize import ensure_resized
from helpers.data.vocabulary import ensure_vocabulary
from helpers.evaluate.measured import about_run, record_result
from helpers.models.backbones import build_backbone
from helpers.train.config import TrainConfig
from helpers.train.loop import train

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--backbone", default="resnet18", help="resnet18 ... resnet152 (frozen)")
p.add_argument("--images", type=int, default=150, help="train images of the tiny COCO subset")
p.add_argument("--val-images", type=int, default=50, help="validation images of the subset")
p.add_argument("--epochs", type=int, default=2)
p.add_argument("--views", type=int, default=2, help="cached views per train image")
p.add_argument("--batch-size", type=int, default=32)
p.add_argument("--threads", type=int, default=2, help="torch CPU threads")
p.add_argument("--seed", type=int, default=0)
p.add_argument(
    "--no-record",
    action="store_true",
    help="print only (runs of other settings than the defaults are never recorded)",
)
args = p.parse_args()
default = all(getattr(args, k) == p.get_default(k) for k in vars(args) if k != "no_record")
# The results file the README quotes holds the run of the default settings only.
record = default and not args.no_record
torch.set_num_threads(args.threads)


def counts(root: Path, split: str) -> tuple[int, int]:
    """(images with captions, captions) of a split: the CNN's work per epoch in each loop."""
    data = load_captions(coco_split(root, split).annotations)
    return len({a["image_id"] for a in data["annotations"]}), len(data["annotations"])


with tempfile.TemporaryDirectory() as tmp:
    # Everything (tiny COCO, subset, vocabulary, resized images, caches) lives in the temp folder.
    os.environ["COURSE_DATA_DIR"] = os.path.join(tmp, "data")
    subset = Path(tmp) / "subset"
    for split, n in (("train", args.images), ("val", args.val_images)):
        where = dataset_split("tiny", split)
        coco_subset(where.annotations, where.images, n, subset, args.seed, split, progress=False)
    cfg = TrainConfig(
        dataset=str(subset),
        backbone=args.backbone,
        weights=None,
        freeze=True,
        views=args.views,
        resize=256,
        crop=224,
        flip=False,
        batch_size=args.batch_size,
        epochs=args.epochs,
        pretrain_epochs=0,  # no bag-of-words pretraining: it would train the ResNet
        num_workers=0,
        seed=args.seed,
    )
    # Shared preparation, not timed (its reports go to stderr: stdout is the JSON line): the
    # vocabulary, the images resized once to 256x256, and one warm-up forward pass, so the first
    # run does not pay alone for PyTorch's one-off kernel set-up.
    with contextlib.redirect_stdout(sys.stderr):
        ensure_vocabulary(cfg.dataset, cfg.threshold)
        for split in ("train", "val"):
            ensure_resized(cfg.dataset, split, cfg.resize)
    with torch.inference_mode():
        build_backbone(cfg.backbone).eval()(torch.zeros(cfg.batch_size, 3, cfg.crop, cfg.crop))

    runs = {}
    for name, cached in (("source", False), ("cached", True)):
        run_cfg = dataclasses.replace(cfg, cache_features=cached)
        began = time.perf_counter()
        history = train(run_cfg, out=Path(tmp) / name, resume=False, progress=False, device="cpu")
        runs[name] = (history, time.perf_counter() - began)
    (train_images, train_captions), (val_images, val_captions) = (
        counts(subset, "train"),
        counts(subset, "val"),
    )

source, source_total = runs["source"]
cached, cached_total = runs["cached"]
source_epoch = statistics.mean(source.seconds)
cached_epoch = statistics.mean(cached.seconds)
row = {
    "benchmark": "train_speed",
    "variant": "default" if default else "custom",
    "backbone": args.backbone,
    "weights": None,
    "resize": cfg.resize,
    "crop": cfg.crop,
    "train_images": train_images,
    "train_captions": train_captions,
    "val_images": val_images,
    "val_captions": val_captions,
    "epochs": args.epochs,
    "views": args.views,
    "batch_size": args.batch_size,
    "source_seconds_per_epoch": round(source_epoch, 2),
    "cached_seconds_per_epoch": round(cached_epoch, 2),
    "epoch_speedup": round(source_epoch / cached_epoch, 1),
    "cache_build_seconds": round(cached.features_seconds, 2),
    "source_total_seconds": round(source_total, 1),
    "cached_total_seconds": round(cached_total, 1),
    "total_speedup": round(source_total / cached_total, 1),
    "source_val_loss": round(source.val_loss[-1], 4),
    "cached_val_loss": round(cached.val_loss[-1], 4),
    # The source's loop: one forward per train caption and per val caption, every epoch.
    "source_cnn_forwards_per_epoch": train_captions + val_captions,
    # The cache: one per train image and view plus one per val image, once for all epochs.
    "cached_cnn_forwards_once": train_images * args.views + val_images,
    "cached_cnn_forwards_per_epoch": 0,
    "cpu_threads": torch.get_num_threads(),
} | about_run()
if record:
    record_result("train_speed", row, key=("variant",))
print(json.dumps(row))
