"""One model on a tiny COCO split, in one report: the COCO metrics against the references people
face, what it gets right of the objects, and the pointing game when it has attention."""

from __future__ import annotations

import os
from collections.abc import Collection

from helpers.caption.captioner import Captioner, caption_split
from helpers.evaluate.objects import (
    failure_counts,
    load_objects,
    object_report,
    object_scores_by_count,
)
from helpers.evaluate.pointing import pointing_game
from helpers.evaluate.references import against_other_references


def tiny_report(
    captioner: Captioner,
    annotations: str | os.PathLike,
    images: str | os.PathLike,
    skip: Collection[str] = (),
    beam_size: int = 1,
    progress: bool = False,
    length_penalty: float = 0.0,
) -> dict:
    """One model on a tiny COCO split: the COCO metrics against the four references the humans
    face, right colours / shapes / both on one- and two-shape images (the older set measure),
    object_report's object-level scores, and the pointing game (bound, and the older
    unbound one) when the model has attention, and how its wrong captions fail (failure_kind);
    greedy (beam_size 1) or beam search."""
    results, problems = caption_split(
        captioner,
        annotations,
        images,
        beam_size=beam_size,
        length_penalty=length_penalty,
        progress=progress,
    )
    captions = {r["image_id"]: r["caption"] for r in results}
    truth = load_objects(annotations)
    scores = against_other_references(annotations, results, skip=skip).scores
    report = {
        "metrics": {k: round(v, 3) for k, v in scores.items()},
        "objects": object_scores_by_count(captions, truth),
        "object_report": object_report(captions, truth),
        "failures": failure_counts(captions, truth),
        "no_caption": len(problems),
    }
    if captioner.kind.attention:
        for name, bound in (("pointing", True), ("unbound pointing", False)):
            game = pointing_game(
                captioner, annotations, images, beam_size, progress=progress, bound=bound
            )
            report[name] = game.summary()
    return report


def report_table(reports: dict[str, dict], humans: dict[str, float] | None = None) -> str:
    """tiny_report's results of several models side by side, as a markdown table."""
    metrics = ("Bleu_4", "METEOR", "CIDEr")
    groups, kinds = ("one shape", "two shapes"), ("colors", "shapes", "both")
    head = [*metrics, *(f"{g}: colours / shapes / both" for g in groups)]
    rows = ["| model | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for name, r in reports.items():
        scores = [f"{r['metrics'].get(m, float('nan')):.3f}" for m in metrics]
        objects = [" / ".join(f"{r['objects'][g][k]:.1%}" for k in kinds) for g in groups]
        rows.append(f"| {name} | " + " | ".join(scores + objects) + " |")
    if humans:
        scores = [f"{humans.get(m, float('nan')):.3f}" for m in metrics]
        rows.append("| humans (first caption) | " + " | ".join(scores + ["", ""]) + " |")
    return "\n".join(rows)
