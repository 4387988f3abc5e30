"""Train notebook 13's two models per seed (notebook 07's, which it examines, and the barely
trained one) and print what its exercises ask about, one JSON line per variant and seed, each
also written to benchmarks/results/troubleshooting_tiny.jsonl as soon as it is measured.

Figures, from the greedy captions of the 400 tiny val images: the number of distinct captions,
object_report (all objects right, precision, CHAIR, per one-shape, two-shape and grayscale
images), the best and last validation loss, and the COCO scorer's BLEU-4 and CIDEr (PTB tokenizer
when Java is there, as in the notebook). Variants: "brief 1" and "brief 3", the barely trained
model (no pretraining, seed + 1) after 1 and 3 epochs (exercises 1 and 3); "trained", notebook
07's model (TrainConfig's defaults), with the mean words of its captions and of the humans'
(exercise 2); "length penalty 1.0" and "2.0", that model's beam search of each size in the
notebook's BEAM_SIZES: mean words, captions longer and shorter than greedy's, all right
(exercise 2).
Run: python benchmarks/troubleshooting_tiny.py [--seeds 0 1 2]   (25 min a seed on 2 busy cores)
"""

import argparse
import dataclasses
import json
import os
import tempfile
from collections.abc import Iterator
from statistics import mean

import torch

from helpers.caption.captioner import Captioner
from helpers.data.annotations import image_files
from helpers.data.registry import dataset_split
from helpers.evaluate.measured import about_run, record_result
from helpers.evaluate.metrics import python_tokenize, score_captions
from helpers.evaluate.objects import load_objects, object_report
from helpers.evaluate.references import reference_captions
from helpers.models.checkpoint import best_checkpoint
from helpers.train.config import TrainConfig
from helpers.train.loop import train

# Notebook 13's parameters cell.
DATASET = "tiny"
BRIEF_EPOCHS = (1, 3)  # the default, and exercise 1's
BEAM_SIZES = [3, 5, 10, 20]
LENGTH_PENALTIES = (1.0, 2.0)  # the default, and exercise 2's

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--seeds", type=int, nargs="+", default=[0])
p.add_argument("--no-record", action="store_true", help="print only")
args = p.parse_args()


def words(caption: str) -> int:
    """A caption's length in words, punctuation not counted (the notebook's `words`)."""
    return len(python_tokenize(caption).split())


def captioner(cfg: TrainConfig, out: str) -> tuple[Captioner, list[float]]:
    """The run's best checkpoint, trained now in `out` on the CPU (what ensure_checkpoint does
    in the notebook), and its validation loss per epoch."""
    history = train(cfg, out=out, progress=False, device="cpu")
    return Captioner(best_checkpoint(out), device="cpu"), history.val_loss


def variants(seed: int, out: str) -> Iterator[tuple[str, dict]]:
    """Each variant's name and figures for one seed, as soon as they are measured."""
    val = dataset_split(DATASET, "val")
    files = image_files(val.annotations, val.images)
    ids = sorted(files)
    objects = load_objects(val.annotations)
    references = reference_captions(val.annotations)
    cfg = TrainConfig(dataset=DATASET, seed=seed)  # notebook 07's model, as notebook 13 uses it
    trained, trained_loss = captioner(cfg, os.path.join(out, f"trained{seed}"))
    images = torch.stack([trained.load_image(files[i]) for i in ids])  # every val image, once

    def caption_all(model: Captioner, beam_size: int = 1, length_penalty: float = 0.0) -> dict:
        return dict(zip(ids, model.caption(images, beam_size, length_penalty), strict=True))

    def figures(captions: dict[int, str], val_loss: list[float]) -> dict:
        """What the notebook prints of a model's greedy captions, and BLEU-4 and CIDEr."""
        coco = score_captions(references, captions, skip=("METEOR", "ROUGE-L", "SPICE"))
        return {
            "distinct": len(set(captions.values())),
            "objects": object_report(captions, objects),
            "best_val_loss": round(min(val_loss), 3),
            "val_loss": round(val_loss[-1], 3),
            "best_epoch": val_loss.index(min(val_loss)) + 1,
            "bleu_4": round(coco.scores["Bleu_4"], 4),
            "cider": round(coco.scores["CIDEr"], 4),
            "tokenizer": coco.tokenizer,
        }

    for epochs in BRIEF_EPOCHS:
        # The notebook's barely trained model: no pretraining, one view, a seed of its own. Three
        # epochs from scratch are the run the notebook resumes to 3 (a resume is exact).
        brief_cfg = dataclasses.replace(
            cfg, epochs=epochs, pretrain_epochs=0, views=1, seed=seed + 1
        )
        brief, brief_loss = captioner(brief_cfg, os.path.join(out, f"wrong-brief{epochs}-{seed}"))
        brief_figures = figures(caption_all(brief), brief_loss)
        yield f"brief {epochs}", {"epochs": epochs, "model_seed": seed + 1} | brief_figures

    greedy = caption_all(trained)
    greedy_words = {i: words(c) for i, c in greedy.items()}
    humans = mean(words(c) for i in ids for c in references[i])
    trained_figures = figures(greedy, trained_loss)
    trained_figures |= {
        "words": round(mean(greedy_words.values()), 2),
        "human_words": round(humans, 2),
    }
    yield (
        "trained",
        {"epochs": cfg.epochs, "pretrain_epochs": cfg.pretrain_epochs} | trained_figures,
    )

    for penalty in LENGTH_PENALTIES:
        beams = {}
        for k in BEAM_SIZES:
            captions = caption_all(trained, k, penalty)
            n = {i: words(c) for i, c in captions.items()}
            beams[str(k)] = {
                "words": round(mean(n.values()), 2),
                "longer": sum(n[i] > greedy_words[i] for i in ids),
                "shorter": sum(n[i] < greedy_words[i] for i in ids),
                "all_right": object_report(captions, objects)["all"]["all_right"],
            }
        yield f"length penalty {penalty}", {"length_penalty": penalty, "beams": beams}


with tempfile.TemporaryDirectory() as out:
    os.environ.setdefault("COURSE_DATA_DIR", os.path.join(out, "data"))
    from helpers.data.resize import ensure_resized
    from helpers.data.vocabulary import ensure_vocabulary

    # The data (tiny COCO, vocabulary, resized images) is prepared first, quietly.
    ensure_vocabulary(DATASET, TrainConfig.threshold, progress=False)
    for split in ("train", "val"):
        ensure_resized(DATASET, split, TrainConfig.resize, progress=False)
    for seed in args.seeds:
        for variant, figures in variants(seed, out):
            row = {"benchmark": "troubleshooting_tiny", "variant": variant, "seed": seed}
            row |= figures | about_run()
            if not args.no_record:
                record_result("troubleshooting_tiny", row, key=("variant", "seed"))
            print(json.dumps(row), flush=True)
