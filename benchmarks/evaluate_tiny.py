"""Score the default tiny-COCO model on its val split next to the humans, as one JSON line.

Prints BLEU-4 and CIDEr (official COCO evaluation) for greedy and beam-3 captions, scored against all
five references and against the same four the humans face, and the human agreement (each image's
first caption against its other four). Scores the default model's best.pt (trained first if
missing), or the run folder or checkpoint file given with --checkpoint (e.g. another seed's run).
Run: python benchmarks/evaluate_tiny.py [--checkpoint RUN_FOLDER] [--beams 1 3]
"""

import argparse
import json
import time

from helpers.caption.captioner import Captioner
from helpers.data.registry import dataset_split
from helpers.evaluate.references import against_other_references, human_agreement
from helpers.evaluate.split import evaluate_checkpoint
from helpers.models.checkpoint import best_checkpoint
from helpers.train.config import TrainConfig
from helpers.train.loop import ensure_checkpoint

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--checkpoint", help="run folder (its best.pt) or checkpoint file")
p.add_argument("--beams", type=int, nargs="+", default=[1, 3], help="beam sizes (1 = greedy)")
args = p.parse_args()
cfg = TrainConfig()
path = best_checkpoint(args.checkpoint) if args.checkpoint else ensure_checkpoint(cfg)
captioner = Captioner(path, device="cpu")
val = dataset_split(cfg.dataset, "val")
figures = {"benchmark": "evaluate_tiny", "checkpoint": path.name, "images": None}
figures["seed"] = captioner.config.get("seed")
keys = ("Bleu_4", "CIDEr")
for beam in args.beams:
    start = time.perf_counter()
    results, report = evaluate_checkpoint(
        captioner, val.annotations, val.images, beam_size=beam, skip=["METEOR"], progress=False
    )
    fair = against_other_references(val.annotations, results, skip=["METEOR"])
    name = "greedy" if beam == 1 else f"beam{beam}"
    figures["images"] = report.n_images
    figures[name] = {k: round(report.scores[k], 3) for k in keys}
    figures[f"{name}_vs_4_refs"] = {k: round(fair.scores[k], 3) for k in keys}
    figures[f"{name}_seconds"] = round(time.perf_counter() - start, 1)
    figures["tokenizer"] = report.tokenizer
humans = human_agreement(val.annotations, skip=["METEOR"])
figures["humans_vs_4_refs"] = {k: round(humans.scores[k], 3) for k in keys}
print(json.dumps(figures))
