"""Train the default tiny-COCO model from scratch and print what it reached, as one JSON line.

Figures: wall time of training (and of its pretraining, feature cache and captioning epochs), final
validation loss, and the share of val images (never seen in training) whose greedy caption from
best.pt names every object with its own colour and count (all objects right, overall and on
two-shape images, with CHAIR-s), and the older colour-set and shape-set rates; once with
validation's preprocessing (resize, centre crop: what Captioner does) and once with the source's
squeeze to the crop size.
Run: python benchmarks/train_tiny.py [--epochs N] [--seed S]
"""

import argparse
import dataclasses
import json
import os
import tempfile
import time

import torch

from helpers.caption.captioner import Captioner
from helpers.data.annotations import image_files
from helpers.data.images import inference_transform, load_rgb
from helpers.data.registry import dataset_split
from helpers.evaluate.objects import load_objects, object_report, object_scores
from helpers.models.checkpoint import best_checkpoint
from helpers.train.config import TrainConfig
from helpers.train.loop import train

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--epochs", type=int, default=TrainConfig.epochs)
p.add_argument("--seed", type=int, default=TrainConfig.seed)
args = p.parse_args()
cfg = dataclasses.replace(TrainConfig(), epochs=args.epochs, seed=args.seed)

with tempfile.TemporaryDirectory() as out:
    # The data (tiny COCO, vocabulary, resized images) is prepared first so only training is timed.
    os.environ.setdefault("COURSE_DATA_DIR", os.path.join(out, "data"))
    from helpers.data.resize import ensure_resized
    from helpers.data.vocabulary import ensure_vocabulary

    ensure_vocabulary(cfg.dataset, cfg.threshold)
    for split in ("train", "val"):
        ensure_resized(cfg.dataset, split, cfg.resize)
    start = time.perf_counter()
    history = train(cfg, out=os.path.join(out, "run"), progress=False, device="cpu")
    seconds = time.perf_counter() - start
    captioner = Captioner(best_checkpoint(os.path.join(out, "run")), device="cpu")
    val = dataset_split(cfg.dataset, "val")
    objects = load_objects(val.annotations)
    ids = sorted(objects)
    files = image_files(val.annotations, val.images)
    pictures = [load_rgb(files[i]) for i in ids]
    scores = {}
    for name, squeeze in (("", False), ("squeeze_", True)):
        captioner.transform = inference_transform(cfg.resize, cfg.crop, squeeze=squeeze)
        captions = captioner.caption(pictures)
        said = dict(zip(ids, captions, strict=True))
        scores.update({f"{name}{k}": v for k, v in object_scores(said, objects).items()})
        report = object_report(said, objects)
        scores[f"{name}all_right"] = report["all"]["all_right"]
        scores[f"{name}two_shapes_all_right"] = report["two shapes"]["all_right"]
        scores[f"{name}chair_s"] = report["all"]["chair_s"]

print(
    json.dumps(
        {
            "benchmark": "train_tiny",
            "epochs": cfg.epochs,
            "seed": cfg.seed,
            "train_seconds": round(seconds, 1),
            "pretrain_seconds": round(history.pretrain_seconds, 1),
            "features_seconds": round(history.features_seconds, 1),
            "captioning_seconds": round(sum(history.seconds), 1),
            "val_loss": round(history.val_loss[-1], 3),
            "best_val_loss": round(min(history.val_loss), 3),
            "best_epoch": history.val_loss.index(min(history.val_loss)) + 1,
            "val_images": len(ids),
            "all_objects_right": scores["all_right"],
            "two_shapes_all_objects_right": scores["two_shapes_all_right"],
            "chair_s": scores["chair_s"],
            "squeeze_all_objects_right": scores["squeeze_all_right"],
            "right_colors": round(scores["colors"], 3),
            "right_shapes": round(scores["shapes"], 3),
            "right_colors_and_shapes": round(scores["both"], 3),
            "squeeze_right_colors": round(scores["squeeze_colors"], 3),
            "squeeze_right_shapes": round(scores["squeeze_shapes"], 3),
            "squeeze_right_colors_and_shapes": round(scores["squeeze_both"], 3),
            "cpu_threads": torch.get_num_threads(),
        }
    )
)
