"""Attention and the chapter's model, one change at a time, over seeds, on the object-level measure.

Each row changes one thing from the committed defaults (TrainConfig) and trains that model for
each seed (or reuses its checkpoint), then scores it on tiny val: all objects right on one-shape,
two-shape and grayscale images apart, object precision and recall, CHAIR-i, how the wrong
captions fail (swapped, copied, missing, extra, wrong), the bound pointing game (attention),
BLEU-4 and CIDEr, and the training time. An attention model starts from the frozen backbone of
the chapter model of its seed with the row's backbone settings (trained first; its time is the
row's "backbone" seconds), unless its row says otherwise.
Each (row, seed) is written to benchmarks/results/attention_ablation.jsonl as soon as it is
measured, then the summary prints the mean and range of each row over its seeds.
Run: python benchmarks/attention_ablation.py [--rows NAME ...] [--seeds 0 1 2] [--list]
"""

from __future__ import annotations

import dataclasses
import json
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

from helpers.caption.captioner import Captioner
from helpers.data.paths import data_dir
from helpers.data.registry import dataset_split
from helpers.evaluate.ablation import ablation_args, run_seconds, slug
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
    # attention: the settings of the chapter run that lends its backbone (None: no chapter, the
    # row's settings say how the encoder learns)
    backbone: dict | None = field(default_factory=dict)


DEFAULT = TrainConfig()
INPUT_48 = {"resize": 56, "crop": 48}  # the input of the course before these defaults
LONGER = {"pretrain_epochs": DEFAULT.pretrain_epochs * 2}
PAIRS = {"pretrain_pairs": 256}
# In order of what a reviewer asks first: the defaults, decoding, the attention model's parts,
# the training budget, the input, the backbone's pretraining, and the slow encoder rows last.
ROWS = {
    "attention": Row("attention"),
    "chapter": Row("lstm"),
    "attention, beam 3": Row("attention", beam=3),
    "chapter, beam 3": Row("lstm", beam=3),
    "attention, no positions": Row("attention", {"places": False}),
    "attention, no gate": Row("attention", {"gate": False}),
    "attention, penalty 1": Row("attention", {"attention_penalty": 1.0}),
    "attention, twice the epochs": Row("attention", {"epochs": DEFAULT.epochs * 2}),
    "chapter, twice the epochs": Row("lstm", {"epochs": DEFAULT.epochs * 2}),
    "attention, pretraining twice as long": Row("attention", backbone=LONGER),
    "chapter, pretraining twice as long": Row("lstm", LONGER),
    "attention, input 48": Row("attention", INPUT_48, backbone=INPUT_48),
    "chapter, input 48": Row("lstm", INPUT_48),
    "attention, hidden 256": Row("attention", {"hidden_size": 256, "embedding_size": 256}),
    "attention, grid 4": Row("attention", {"grid": 4}),
    "attention, lr / 2": Row("attention", {"lr": DEFAULT.lr / 2}),
    "attention, word pairs in pretraining": Row("attention", backbone=PAIRS),
    "chapter, word pairs in pretraining": Row("lstm", PAIRS),
    "attention, beam 3, length penalty 1": Row("attention", beam=3, length_penalty=1.0),
    "attention, half the epochs": Row("attention", {"epochs": DEFAULT.epochs // 2}),
    "attention, attention size 256": Row("attention", {"attention_size": 256}),
    # the encoder: frozen pretrained features (the rows above), fine-tuned, or learned from captions
    "attention, fine-tuned encoder": Row("attention", {"freeze": False}),
    "attention, fine-tuned encoder, beam 3, length penalty 1": Row(
        "attention", {"freeze": False}, beam=3, length_penalty=1.0
    ),
    "attention, encoder from captions alone": Row(
        "attention", {"freeze": False, "pretrain_epochs": 0}, backbone=None
    ),
}

args, BASE = ablation_args(__doc__, ROWS, "tiny")
val = dataset_split(args.dataset, "val")
GROUPS = ("one shape", "two shapes", "grayscale")
SKIP = ("METEOR", "ROUGE_L", "SPICE")  # BLEU-4 and CIDEr are asked for; the others are slow


def run_folder(model: str, settings: dict, backbone: dict | None = None) -> Path:
    """One folder per model, settings and lent backbone: rows that differ only in decoding share
    a run, and an attention row's backbone is the chapter row with the same settings."""
    # Quick looks (--base) keep runs of their own: never mixed with the defaults' runs.
    folder = data_dir() / "checkpoints" / "-".join(["ablation", *map(slug, args.base)])
    words = ["chapter" if model == "lstm" else model]
    words += [f"{k} {v}" for k, v in sorted(settings.items())]
    words += [f"backbone {k} {v}" for k, v in sorted((backbone or {}).items())]
    return folder / slug(" ".join(words))


def train_row(row: Row, seed: int) -> tuple:
    """The row's model for one seed (trained now or reused) and what its training cost."""
    base = {"dataset": args.dataset, **BASE}
    settings = {**base, **row.settings}
    lender = None
    if row.model == "attention" and row.backbone is not None:
        chapter = TrainConfig(seed=seed, **base, **row.backbone)
        lender = ensure_checkpoint(
            chapter, run_folder("lstm", row.backbone) / f"seed{seed}", progress=False
        )
        settings["weights"] = str(lender)
    cfg = TrainConfig(seed=seed, decoder=row.model, **settings).check()
    folder = run_folder(row.model, row.settings, row.backbone)
    best = ensure_checkpoint(cfg, folder / f"seed{seed}", progress=False)
    cost = run_seconds(best)
    if lender is not None:
        cost["backbone"] = round(sum(run_seconds(lender).values()), 1)
    return best, cost, cfg


def flat(report: dict) -> dict:
    """The numbers a row keeps: objects per group, the older set measure, failures, pointing
    (bound and the older unbound game), BLEU-4 and CIDEr."""
    keep = ("images", "all_right", "precision", "recall", "chair_i", "chair_s")
    out = {
        "objects": {
            group: {k: v for k, v in scores.items() if k in keep}
            for group, scores in report["object_report"].items()
        },
        # colours right and shapes right as two sets: blind to which colour goes with which shape
        "older": {group: round(s["both"], 3) for group, s in report["objects"].items()},
        "failures": report["failures"],
        "metrics": {k: report["metrics"][k] for k in ("Bleu_4", "CIDEr")},
    }
    for name in ("pointing", "unbound pointing"):
        if name in report:
            game = report[name]
            out[name] = {k: game[k] for k in ("hit", "chance", "uniform", "words")}
            out[name]["by"] = {g: v["hit"] for g, v in game["by"].items()}
    return out


summary: dict[str, list[dict]] = {}
for name in args.rows:
    row = ROWS[name]
    for seed in args.seeds:
        began = time.perf_counter()
        best, cost, cfg = train_row(row, seed)
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
            "backbone": row.backbone,
            "beam": row.beam,
            "length_penalty": row.length_penalty,
            "config": {k: v for k, v in dataclasses.asdict(cfg).items() if k != "weights"},
            "train_seconds": cost,
            **flat(report),
            "wall_seconds": round(time.perf_counter() - began, 1),
        } | about_run()
        if not args.no_record:
            record_result("attention_ablation", line, ("row", "seed"), args.results)
        summary.setdefault(name, []).append(line)
        groups = line["objects"]
        pct = lambda v: "-" if v is None else f"{v:.1%}"  # noqa: E731  (None: nothing to count)
        print(
            f"{name}, seed {seed}: all right "
            + ", ".join(f"{g} {pct(groups[g]['all_right'])}" for g in GROUPS)
            + f"; CHAIR-i {pct(groups['all']['chair_i'])}"
            + (f"; pointing {pct(line['pointing']['hit'])}" if "pointing" in line else "")
            + f"; failures {line['failures']}; {sum(cost.values()):.0f} s to train",
            flush=True,
        )

for name, lines in summary.items():
    values = {g: [x["objects"][g]["all_right"] or 0.0 for x in lines] for g in GROUPS}
    mean = {g: round(statistics.mean(v), 3) for g, v in values.items()}
    spread = {g: round(max(v) - min(v), 3) for g, v in values.items()}
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
