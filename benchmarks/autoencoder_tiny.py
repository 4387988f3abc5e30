"""Train notebook 01's auto-encoder on the tiny COCO per seed and print what it reached, one JSON
line per seed, each also written to benchmarks/results/autoencoder_tiny.jsonl as soon as it is
measured.

Figures: the validation reconstruction error (mean and median MSE on the 200 val images), the
anomaly AUROC of that error against notebook 01's unlike images (all, and per kind), and the
training time. --variant trains one of the settings notebook 01's exercises ask about instead of
its defaults (rows keyed by variant and seed).
Run: python benchmarks/autoencoder_tiny.py [--variant V] [--seeds 0 1 2]   (under a minute a seed)
"""

import argparse
import json
import os
import tempfile

import numpy as np

from helpers.evaluate.autoencoder import auroc, reconstruction_error
from helpers.evaluate.measured import about_run, record_result
from helpers.train.autoencoder import load_images, train_autoencoder, unlike_images

SIZE = 48  # notebook 01's AE_SIZE
VARIANTS = {  # name: notebook 01's AE_BOTTLENECK and AE_EPOCHS
    "default": {"bottleneck": 16, "epochs": 20},
    "bottleneck 2": {"bottleneck": 2, "epochs": 20},
    "epochs 8": {"bottleneck": 16, "epochs": 8},
}
p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--variant", choices=VARIANTS, default="default")
p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
p.add_argument("--no-record", action="store_true", help="print only")
args = p.parse_args()

with tempfile.TemporaryDirectory() as out:
    os.environ.setdefault("COURSE_DATA_DIR", os.path.join(out, "data"))
    from helpers.data.resize import ensure_resized

    train_images = load_images(ensure_resized("tiny", "train", SIZE, progress=False), SIZE)
    val_images = load_images(ensure_resized("tiny", "val", SIZE, progress=False), SIZE)
    for seed in args.seeds:
        model, history = train_autoencoder(train_images, **VARIANTS[args.variant], seed=seed)
        val = reconstruction_error(model, val_images)
        # The unlike images follow the seed, as in the notebook (SEED sets both).
        unlike = {
            k: reconstruction_error(model, v) for k, v in unlike_images(SIZE, seed=seed).items()
        }
        row = {
            "benchmark": "autoencoder_tiny",
            "variant": args.variant,
            "seed": seed,
            **VARIANTS[args.variant],
            "train_seconds": round(model.train_seconds, 1),
            "train_errors": [round(e, 4) for e in history],  # per epoch: where it plateaus
            "val_error": round(float(val.mean()), 4),
            "val_median_error": round(float(np.median(val)), 4),
            "auroc": round(auroc(val, np.concatenate(list(unlike.values()))), 3),
            "auroc_by_kind": {k: round(auroc(val, e), 3) for k, e in unlike.items()},
        } | about_run()
        if not args.no_record:
            record_result("autoencoder_tiny", row, key=("variant", "seed"))
        print(json.dumps(row), flush=True)
