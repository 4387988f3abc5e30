"""One model on a tiny COCO split, in one report: the COCO metrics against the references people
face, what it gets right object by object, and the bound pointing game when it has attention;
and the people's own captions scored the same way, the row to reach."""

from __future__ import annotations

import os
from collections.abc import Collection

from helpers.caption.captioner import Captioner, caption_split
from helpers.evaluate.objects import load_objects, object_report
from helpers.evaluate.pointing import pointing_game
from helpers.evaluate.references import (
    against_other_references,
    human_agreement,
    reference_captions,
)


def tiny_report(
    captioner: Captioner,
    annotations: str | os.PathLike,
    images: str | os.PathLike,
    skip: Collection[str] = (),
    beam_size: int = 1,
    progress: bool = False,
) -> dict:
    """One model on a tiny COCO split: the COCO metrics against the four references the humans
    face, the object-level scores (object_report) per group of images, and the bound pointing
    game when the model has attention; greedy (beam_size 1) or beam search."""
    results, problems = caption_split(
        captioner, annotations, images, beam_size=beam_size, progress=progress
    )
    captions = {r["image_id"]: r["caption"] for r in results}
    scores = against_other_references(annotations, results, skip=skip).scores
    report = {
        "metrics": {k: round(v, 3) for k, v in scores.items()},
        "objects": object_report(captions, load_objects(annotations)),
        "no_caption": len(problems),
    }
    if captioner.kind.attention:
        game = pointing_game(captioner, annotations, images, beam_size, progress=progress)
        report["pointing"] = game.summary()
    return report


def human_report(annotations: str | os.PathLike, skip: Collection[str] = ()) -> dict:
    """The people's row of a tiny COCO split: each image's first caption, scored as tiny_report
    scores a model (the metrics against the other four captions, and object by object)."""
    first = {i: c[0] for i, c in reference_captions(annotations).items() if c}
    return {
        "metrics": {
            k: round(v, 3) for k, v in human_agreement(annotations, skip=skip).scores.items()
        },
        "objects": object_report(first, load_objects(annotations)),
    }


def report_table(reports: dict[str, dict]) -> str:
    """tiny_report's results of several models (and human_report's) side by side, as markdown:
    the COCO metrics, all objects right per group of images, CHAIR-s and the bound pointing game."""
    metrics = ("Bleu_4", "METEOR", "CIDEr")
    groups = ("all", "one shape", "two shapes", "grayscale")
    head = [*metrics, *(f"all right: {g}" for g in groups), "CHAIR-s", "pointing hit"]
    rows = ["| captions | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for name, r in reports.items():
        scores = [f"{r['metrics'].get(m, float('nan')):.3f}" for m in metrics]
        objects = [f"{r['objects'][g]['all_right']:.1%}" for g in groups]
        objects.append(f"{r['objects']['all']['chair_s']:.1%}")
        pointing = f"{r['pointing']['hit']:.1%}" if "pointing" in r else ""
        rows.append(f"| {name} | " + " | ".join([*scores, *objects, pointing]) + " |")
    return "\n".join(rows)
