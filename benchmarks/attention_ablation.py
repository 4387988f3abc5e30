"""Attention and the chapter's model, one change at a time, over seeds, on the object-level measure.

Each row changes one thing from the committed defaults (TrainConfig) and trains that model for
each seed (or reuses its checkpoint), then scores it on tiny val: all objects right on one-shape,
two-shape and grayscale images apart, object precision and recall, CHAIR-i, how the wrong
captions fail (swapped, copied, missing, extra, wrong), the bound pointing game (attention),
BLEU-4 and CIDEr, and the training time. An attention model starts from the backbone of the
chapter model of its seed (trained first, its "backbone_seconds"), unless its row says otherwise.
Each (row, seed) is written to benchmarks/results/attention_ablation.jsonl as soon as it is
measured, then the summary prints the mean and range of each row over its seeds.
Run: python benchmarks/attention_ablation.py [--rows NAME ...] [--seeds 0 1 2] [--list]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import statistics
import time
from dataclasses import dataclass, field

import torch

from helpers.caption.captioner import Captioner
from helpers.data.paths import data_dir
from helpers.data.registry import dataset_split
from helpers.evaluate.measured import about_run, record_result
from helpers.evaluate.tiny import tiny_report
from helpers.train.config import TrainConfig
from helpers.train.loop import ensure_checkpoint


@dataclass(frozen=True)
class Row:
    """One model of the ablation: which decoder, the settings it changes, how it decodes."""

    model: str  # "attention" or "lstm" (the chapter's)
    settings: dict = field(default_factory=dict)  # changed from TrainConfig's defaults
    beam: int = 1
    length_penalty: float = 0.0
    own_backbone: bool = False  # attention: no chapter backbone (settings say how it gets one)


DEFAULT = TrainConfig()
ROWS = {
    "attention": Row("attention"),
    "chapter": Row("lstm"),
    # decoding
    "attention, beam 3": Row("attention", beam=3),
    "chapter, beam 3": Row("lstm", beam=3),
    "attention, beam 3, length penalty 1": Row("attention", beam=3, length_penalty=1.0),
    # the attention model
    "attention, no gate": Row("attention", {"gate": False}),
    "attention, no positions": Row("attention", {"places": False}),
    "attention, penalty 1": Row("attention", {"attention_penalty": 1.0}),
    "attention, grid 3": Row("attention", {"grid": 3}),
    "attention, attention size 256": Row("attention", {"attention_size": 256}),
    "attention, hidden 256": Row("attention", {"hidden_size": 256, "embedding_size": 256}),
    # the training budget, for both
    "attention, half the epochs": Row("attention", {"epochs": DEFAULT.epochs // 2}),
    "attention, twice the epochs": Row("attention", {"epochs": DEFAULT.epochs * 2}),
    "chapter, twice the epochs": Row("lstm", {"epochs": DEFAULT.epochs * 2}),
    "attention, lr / 2": Row("attention", {"lr": DEFAULT.lr / 2}),
    "chapter, hidden 256": Row("lstm", {"hidden_size": 256, "embedding_size": 256}),
    # the input
    "attention, input 64": Row("attention", {"resize": 72, "crop": 64}),
    "chapter, input 64": Row("lstm", {"resize": 72, "crop": 64}),
    # the encoder: frozen pretrained features (the rows above), fine-tuned, or learned from captions
    "attention, fine-tuned encoder": Row("attention", {"freeze": False}),
    "attention, encoder from scratch": Row(
        "attention", {"freeze": False, "pretrain_epochs": 0}, own_backbone=True
    ),
}

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--rows", nargs="+", choices=ROWS, default=list(ROWS), metavar="ROW")
p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
p.add_argument("--list", action="store_true", help="print the rows and their settings, then stop")
p.add_argument("--no-record", action="store_true", help="print only; leave the results file alone")
args = p.parse_args()
if args.list:
    for name, row in ROWS.items():
        print(f"{name}: {row}")
    raise SystemExit(0)
val = dataset_split("tiny", "val")
SKIP = ("METEOR", "ROUGE_L", "SPICE")  # BLEU-4 and CIDEr are asked for; the others are slow


def slug(name: str) -> str:
    """A folder name for a row: "attention, lr / 2" -> "attention-lr-2"."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def seconds_of(best) -> dict:
    """How long a checkpoint's run took: pretraining, the feature cache, the epochs."""
    history = torch.load(best, map_location="cpu", weights_only=True)["history"]
    return {
        "pretrain": round(history.get("pretrain_seconds") or 0.0, 1),
        "features": round(history.get("features_seconds") or 0.0, 1),
        "epochs": round(sum(history["seconds"]), 1),
    }


def train_row(name: str, row: Row, seed: int) -> tuple:
    """The row's model for one seed (trained now or reused) and what its training cost."""
    folder = data_dir() / "checkpoints" / "ablation"
    settings = dict(row.settings)
    backbone = None
    if row.model == "attention" and not row.own_backbone:
        chapter = TrainConfig(seed=seed)
        backbone = ensure_checkpoint(chapter, folder / f"chapter-seed{seed}", progress=False)
        settings.setdefault("weights", str(backbone))
    cfg = TrainConfig(seed=seed, decoder=row.model, **settings).check()
    # Decoding rows share the model of their row without the decoding.
    trained = re.sub(r", (beam|length).*", "", name)
    best = ensure_checkpoint(cfg, folder / f"{slug(trained)}-seed{seed}", progress=False)
    cost = seconds_of(best)
    if backbone is not None:
        cost["backbone"] = sum(seconds_of(backbone).values())
    return best, cost, cfg


def flat(report: dict) -> dict:
    """The numbers a row keeps: objects per group, failures, pointing, BLEU-4 and CIDEr."""
    keep = ("images", "all_right", "precision", "recall", "chair_i")
    out = {
        "objects": {
            group: {k: v for k, v in scores.items() if k in keep}
            for group, scores in report["object_report"].items()
        },
        "failures": report["failures"],
        "metrics": {k: report["metrics"][k] for k in ("Bleu_4", "CIDEr")},
    }
    if "pointing" in report:
        game = report["pointing"]
        out["pointing"] = {k: game[k] for k in ("hit", "chance", "uniform", "words")}
    return out


summary: dict[str, list[dict]] = {}
for name in args.rows:
    row = ROWS[name]
    for seed in args.seeds:
        began = time.perf_counter()
        best, cost, cfg = train_row(name, row, seed)
        captioner = Captioner(best, device="cpu")
        report = tiny_report(
            captioner,
            val.annotations,
            val.images,
            SKIP,
            row.beam,
            length_penalty=row.length_penalty,
        )
        line = {
            "benchmark": "attention_ablation",
            "row": name,
            "seed": seed,
            "model": row.model,
            "changed": row.settings,
            "beam": row.beam,
            "length_penalty": row.length_penalty,
            "config": {k: v for k, v in dataclasses.asdict(cfg).items() if k != "weights"},
            "train_seconds": cost,
            **flat(report),
            "wall_seconds": round(time.perf_counter() - began, 1),
        } | about_run()
        if not args.no_record:
            record_result("attention_ablation", line, key=("row", "seed"))
        summary.setdefault(name, []).append(line)
        groups = line["objects"]
        print(
            f"{name}, seed {seed}: all right "
            + ", ".join(
                f"{g} {groups[g]['all_right']:.1%}"
                for g in ("one shape", "two shapes", "grayscale")
            )
            + f"; CHAIR-i {groups['all']['chair_i']:.1%}"
            + (f"; pointing {line['pointing']['hit']:.1%}" if "pointing" in line else "")
            + f"; failures {line['failures']}; {sum(cost.values()):.0f} s to train",
            flush=True,
        )

for name, lines in summary.items():
    mean = {
        g: statistics.mean(x["objects"][g]["all_right"] for x in lines)
        for g in ("one shape", "two shapes", "grayscale")
    }
    spread = {
        g: max(x["objects"][g]["all_right"] for x in lines)
        - min(x["objects"][g]["all_right"] for x in lines)
        for g in mean
    }
    print(
        json.dumps(
            {
                "row": name,
                "seeds": [x["seed"] for x in lines],
                "all right, mean": mean,
                "spread": spread,
            }
        )
    )
