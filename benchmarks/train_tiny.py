"""Train the default tiny-COCO model from scratch per seed and print what it reached, one JSON
line per seed, each also written to benchmarks/results/train_tiny.jsonl as soon as it is measured.

Figures: wall time of training (and of its pretraining, feature cache and captioning epochs), final
and best validation loss, and the val images' greedy captions from best.pt object by object
(object_report: all objects right, precision, recall, CHAIR, per one-shape, two-shape and grayscale
images), once with validation's preprocessing (resize, centre crop: what Captioner does) and once
with the source's squeeze to the crop size. --variant trains one of the settings notebook 07's
exercises ask about instead of the defaults (rows keyed by variant and seed).
Run: python benchmarks/train_tiny.py [--variant V] [--seeds 0 1 2]   (about 2 minutes per seed)
"""

import argparse
import dataclasses
import json
import os
import tempfile
import time

from helpers.caption.captioner import Captioner
from helpers.data.annotations import image_files
from helpers.data.images import inference_transform, load_rgb
from helpers.data.registry import dataset_split
from helpers.evaluate.measured import about_run, record_result
from helpers.evaluate.objects import load_objects, object_report
from helpers.models.checkpoint import best_checkpoint
from helpers.train.config import TrainConfig
from helpers.train.loop import train

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
VARIANTS = {  # name: what differs from TrainConfig's defaults
    "default": {},
    "no pretraining": {"pretrain_epochs": 0},
    "lr 2e-4": {"lr": 2e-4},
}
p.add_argument("--variant", choices=VARIANTS, default="default")
p.add_argument("--epochs", type=int, default=TrainConfig.epochs)
p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
p.add_argument(
    "--no-record",
    action="store_true",
    help="print only (runs of other settings are never recorded)",
)
args = p.parse_args()


def measure(cfg: TrainConfig, out: str) -> dict:
    """Train one seed in `out` and score its best checkpoint on tiny val."""
    start = time.perf_counter()
    history = train(cfg, out=os.path.join(out, f"run{cfg.seed}"), progress=False, device="cpu")
    seconds = time.perf_counter() - start
    captioner = Captioner(best_checkpoint(os.path.join(out, f"run{cfg.seed}")), device="cpu")
    val = dataset_split(cfg.dataset, "val")
    objects = load_objects(val.annotations)
    ids = sorted(objects)
    files = image_files(val.annotations, val.images)
    pictures = [load_rgb(files[i]) for i in ids]
    row = {
        "benchmark": "train_tiny",
        "variant": args.variant,
        "seed": cfg.seed,
        "epochs": cfg.epochs,
        "train_seconds": round(seconds, 1),
        "pretrain_seconds": round(history.pretrain_seconds, 1),
        "features_seconds": round(history.features_seconds, 1),
        "captioning_seconds": round(sum(history.seconds), 1),
        "val_loss": round(history.val_loss[-1], 3),
        "best_val_loss": round(min(history.val_loss), 3),
        "best_epoch": history.val_loss.index(min(history.val_loss)) + 1,
        "val_images": len(ids),
    }
    for name, squeeze in (("objects", False), ("squeeze objects", True)):
        captioner.transform = inference_transform(cfg.resize, cfg.crop, squeeze=squeeze)
        said = dict(zip(ids, captioner.caption(pictures), strict=True))
        row[name] = object_report(said, objects)
    return row | about_run()


with tempfile.TemporaryDirectory() as out:
    # The data (tiny COCO, vocabulary, resized images) is prepared first so only training is timed.
    os.environ.setdefault("COURSE_DATA_DIR", os.path.join(out, "data"))
    from helpers.data.resize import ensure_resized
    from helpers.data.vocabulary import ensure_vocabulary

    base = dataclasses.replace(TrainConfig(), epochs=args.epochs, **VARIANTS[args.variant])
    ensure_vocabulary(base.dataset, base.threshold)
    for split in ("train", "val"):
        ensure_resized(base.dataset, split, base.resize)
    # The results file the notebooks quote holds runs of the default settings only.
    record = not args.no_record and base.epochs == TrainConfig.epochs
    for seed in args.seeds:
        row = measure(dataclasses.replace(base, seed=seed), out)
        if record:
            record_result("train_tiny", row, key=("variant", "seed"))
        print(json.dumps(row), flush=True)
