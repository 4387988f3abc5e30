"""The chapter's decoder against Show, Attend and Tell on the tiny COCO val split, over seeds.

For each seed, trains (or reuses) the chapter's model and an attention model on the same frozen,
pretrained backbone (the chapter model's own, so only the decoder differs) and the same 15 epochs,
then scores both on tiny val, greedy and with a beam of 3: BLEU-4, METEOR and CIDEr against the
four references the humans face, right colours / shapes / both on one-shape and two-shape images
(the older set measure), all objects right with CHAIR (object_report, each colour bound to its
shape), and the pointing game, unbound and bound (hit rate, chance rate, uniform-attention
rate). Prints one JSON line per seed, each also written to benchmarks/results/attention_tiny.jsonl
as soon as it is measured (with the people's row: their metrics on the same references and their
objects), then the summary (mean and range over seeds). --variant trains the attention model with
one of the settings notebook 11's exercises ask about (rows keyed by variant and seed).
Run: python benchmarks/attention_tiny.py [--variant V] [--seeds 0 1 2] [--beams 1 3]
"""

import argparse
import json
import time

from helpers.caption.captioner import Captioner
from helpers.data.paths import data_dir
from helpers.data.registry import dataset_split
from helpers.evaluate.measured import about_run, record_result
from helpers.evaluate.objects import people_report
from helpers.evaluate.references import human_agreement, over_seeds
from helpers.evaluate.tiny import tiny_report
from helpers.train.config import TrainConfig
from helpers.train.loop import ensure_checkpoint

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
VARIANTS = {  # name: what differs from TrainConfig's defaults, for the attention model only
    "default": {},
    "penalty 1": {"attention_penalty": 1.0},  # the paper's doubly stochastic regulariser
}
p.add_argument("--variant", choices=VARIANTS, default="default")
p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
p.add_argument("--beams", type=int, nargs="+", default=[1, 3], help="beam sizes (1 = greedy)")
p.add_argument("--skip", nargs="*", default=["SPICE"], help="metrics to skip (SPICE is slow)")
p.add_argument("--no-record", action="store_true", help="print only; leave the results file alone")
args = p.parse_args()
val = dataset_split("tiny", "val")
humans = human_agreement(val.annotations, skip=args.skip)
people = {
    "metrics": {k: round(v, 3) for k, v in humans.scores.items()},
    "objects": people_report(val.annotations),
}
# The results file the notebooks quote holds runs of the default settings only.
record = not args.no_record and args.beams == [1, 3] and args.skip == ["SPICE"]


def runs(seed: int) -> dict:
    """Both models of one seed: the default runs for seed 0, folders of their own for the others."""
    chapter = TrainConfig(seed=seed)
    folder = None if seed == 0 else data_dir() / "checkpoints" / f"tiny-small-seed{seed}"
    began = time.perf_counter()
    best = ensure_checkpoint(chapter, folder)
    seconds = {"chapter": round(time.perf_counter() - began, 1)}
    settings = VARIANTS[args.variant]
    attention = TrainConfig(seed=seed, decoder="attention", weights=str(best), **settings)
    folder = attention.run_dir()
    suffix = "".join(f"_{k}{v}" for k, v in sorted(settings.items()))  # as notebook 11 names it
    folder = folder.with_name(folder.name + suffix + (f"-seed{seed}" if seed else ""))
    began = time.perf_counter()
    found = {"chapter": best, "attention": ensure_checkpoint(attention, folder)}
    seconds["attention"] = round(time.perf_counter() - began, 1)
    return found, seconds


def flat(report: dict) -> dict:
    """One level of keys: metrics, then <group> <what> of the objects and the pointing game."""
    row = dict(report["metrics"])
    for group, scores in report["objects"].items():
        row.update({f"{group} {k}": round(v, 3) for k, v in scores.items()})
    for group, scores in report["object_report"].items():
        row.update({f"{group} {k}": v for k, v in scores.items() if k in ("all_right", "chair_s")})
    for name in ("pointing", "unbound pointing"):
        if name in report:
            game = report[name]
            row.update({f"{name} {k}": game[k] for k in ("hit", "chance", "uniform", "words")})
            row.update({f"{name} {g} hit": v["hit"] for g, v in game["by"].items()})
    return row


rows = {}
for seed in args.seeds:
    found, seconds = runs(seed)
    line = {"benchmark": "attention_tiny", "variant": args.variant, "seed": seed}
    line["train_seconds_if_trained"] = seconds
    for name, path in found.items():
        captioner = Captioner(path, device="cpu")
        for beam in args.beams:
            key = name if beam == 1 else f"{name}, beam {beam}"
            report = tiny_report(captioner, val.annotations, val.images, args.skip, beam)
            rows.setdefault(key, []).append(flat(report))
            line[key] = {k: v for k, v in report.items() if k != "objects"}
            line[key]["objects"] = line[key].pop("object_report")
    line |= {"people": people} | about_run()
    if record:
        record_result("attention_tiny", line, key=("variant", "seed"))
    print(json.dumps(line), flush=True)

summary = {"benchmark": "attention_tiny", "seeds": args.seeds}
summary.update(over_seeds(rows))
summary["humans"] = people["metrics"]
print(json.dumps(summary))
