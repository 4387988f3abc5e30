"""Score the default tiny-COCO model on its val split next to the humans, as one JSON line.

Prints BLEU-4 and CIDEr (official COCO evaluation) for greedy and beam-3 captions, scored against all
five references and against the same four the humans face, and the human agreement (each image's
first caption against its other four). Trains the default model first if no checkpoint exists.
Run: python benchmarks/evaluate_tiny.py
"""

import json
import time

from helpers.caption import Captioner
from helpers.datasets import dataset_split
from helpers.evaluate import evaluate_checkpoint
from helpers.metrics import against_other_references, human_agreement
from helpers.train import TrainConfig, ensure_checkpoint

cfg = TrainConfig()
captioner = Captioner(ensure_checkpoint(cfg), device="cpu")
val = dataset_split(cfg.dataset, "val")
figures = {"benchmark": "evaluate_tiny", "images": None}
keys = ("Bleu_4", "CIDEr")
for beam in (1, 3):
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
