"""Video captions and actions, one change at a time, over seeds, object by object with actions.

Each row trains a model on the tiny video set (or reuses its checkpoint) for each seed, from the
frozen backbone of the chapter's image model of that seed (the one benchmarks/attention_ablation.py
trains), and scores it on the val clips: captions that name each object with its own action
("both right") on one-actor and two-actor clips apart, objects and actions alone, BLEU-4 and
CIDEr; action accuracy for LRCN. The middle-frame rows are the control: one frame cannot show an
action. Each (row, seed) is written to benchmarks/results/video_ablation.jsonl as soon as it is
measured, then the summary prints each row's mean and range over its seeds.
Run: python benchmarks/video_ablation.py [--rows NAME ...] [--seeds 0 1 2] [--list]
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import time

from helpers.caption.video import VideoModel, describe_split
from helpers.data.paths import data_dir
from helpers.evaluate.ablation import ablation_args, run_seconds, slug
from helpers.evaluate.measured import about_run, record_result
from helpers.evaluate.video import action_report, caption_report
from helpers.train.config import TrainConfig
from helpers.train.loop import ensure_checkpoint

CLIP = {"frames": 8, "motion": True}
# Each place of a video grid holds all its frames (8 x 2 x 128 numbers): a 4 x 4 grid keeps the
# two halves a clip's shapes move in apart, at a quarter of the full grid's cost.
GRID = {"decoder": "attention", "grid": 4}
ROWS = {  # name: the video settings (the rest: TrainConfig's defaults, the chapter's backbone)
    "attention, 8 frames": {**GRID, **CLIP},
    "chapter's decoder, 8 frames": {"decoder": "lstm", **CLIP},
    "attention, middle frame": {**GRID, "frames": 1},
    "chapter's decoder, middle frame": {"decoder": "lstm", "frames": 1},
    "LRCN actions, 8 frames": {"decoder": "lrcn", **CLIP, "epochs": 30},
    "LRCN actions, middle frame": {"decoder": "lrcn", "frames": 1, "epochs": 30},
    "LRCN actions, 8 frames, mean of steps": {
        "decoder": "lrcn",
        **CLIP,
        "epochs": 30,
        "pool": "mean",
    },
    "attention, 4 frames": {**GRID, "frames": 4, "motion": True},
    "attention, no motion": {**GRID, "frames": 8},
    "attention, grid 2": {**GRID, **CLIP, "grid": 2},
    "chapter's decoder, 8 frames, twice the epochs": {
        "decoder": "lstm",
        **CLIP,
        "epochs": TrainConfig().epochs * 2,
    },
}
SKIP = ("METEOR", "ROUGE_L", "SPICE")  # BLEU-4 and CIDEr are enough here; the others are slow

args, BASE = ablation_args(
    __doc__,
    ROWS,
    "tiny_video",
    {"images": ("tiny", "the image dataset the chapter's backbone learns on")},
)


def seconds_of(best) -> float:
    """How long a checkpoint's run took, in all."""
    return round(sum(run_seconds(best).values()), 1)


def score(model: VideoModel) -> dict:
    """Actions (LRCN) or captions of the val clips, object by object."""
    items, said = describe_split(model, "val")
    if model.actions:
        r = action_report(items, said, model.vocab.id_to_word[4:])
        return {"accuracy": round(r.accuracy, 3), "clips": r.clips}
    report = caption_report(items, said, SKIP)
    out = {k: v for k, v in report.items() if "right" in k}
    return out | {"clips": report["clips"], "metrics": report["metrics"]}


summary: dict[str, list[dict]] = {}
for name in args.rows:
    for seed in args.seeds:
        began = time.perf_counter()
        # Quick looks (--base) keep runs of their own: never mixed with the defaults' runs.
        tag = "".join(f"-{slug(b)}" for b in args.base)
        folder = data_dir() / "checkpoints"
        # The chapter run benchmarks/attention_ablation.py trains: one backbone for both.
        image = TrainConfig(seed=seed, **{"dataset": args.images, **BASE})
        lender = folder / f"ablation{tag}" / "chapter" / f"seed{seed}"
        chapter = ensure_checkpoint(image, lender, False)
        settings = {"dataset": args.dataset, **BASE, **ROWS[name]}
        cfg = TrainConfig(weights=str(chapter), seed=seed, **settings).check()
        runs = folder / f"video_ablation{tag}"
        best = ensure_checkpoint(cfg, runs / f"{slug(name)}-seed{seed}", False)
        line = {
            "benchmark": "video_ablation",
            "row": name,
            "seed": seed,
            "changed": ROWS[name],
            "config": {k: v for k, v in dataclasses.asdict(cfg).items() if k != "weights"},
            "train_seconds": seconds_of(best),
            "backbone_seconds": seconds_of(chapter),
            **score(VideoModel(best, device="cpu")),
            "wall_seconds": round(time.perf_counter() - began, 1),
        } | about_run()
        if not args.no_record:
            record_result("video_ablation", line, ("row", "seed"), args.results)
        summary.setdefault(name, []).append(line)
        shown = {k: v for k, v in line.items() if "right" in k or k == "accuracy"}
        print(f"{name}, seed {seed}: {shown}; {line['train_seconds']:.0f} s to train", flush=True)

for name, lines in summary.items():
    key = "accuracy" if "accuracy" in lines[0] else "both right, two actors"
    values = [x[key] for x in lines]
    print(
        json.dumps(
            {
                "row": name,
                key: {
                    "mean": round(statistics.mean(values), 3),
                    "min": min(values),
                    "max": max(values),
                },
            }
        )
    )
