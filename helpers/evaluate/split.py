"""Judging a checkpoint: caption every image of a split and score the captions with the COCO
metrics; where the metrics of a results file are written."""

from __future__ import annotations

import os
from collections.abc import Collection
from pathlib import Path

from helpers.caption.captioner import Captioner, caption_split
from helpers.errors import CourseError
from helpers.evaluate.metrics import (
    MetricsReport,
    score_captions,
)
from helpers.evaluate.references import (
    reference_captions,
)


def evaluate_checkpoint(
    checkpoint: str | os.PathLike | Captioner,
    annotations: str | os.PathLike,
    images: str | os.PathLike,
    beam_size: int = 1,
    length_penalty: float = 0.0,
    batch_size: int = 32,
    device: str | None = None,
    per_image: bool = False,
    skip: Collection[str] = (),
    progress: bool = True,
) -> tuple[list[dict], MetricsReport]:
    """Caption a split with a checkpoint (or a loaded Captioner) and score it with the COCO metrics."""
    if beam_size < 1:
        raise CourseError(f"beam size must be 1 (greedy) or more, got {beam_size}")
    captioner = (
        checkpoint if isinstance(checkpoint, Captioner) else Captioner(checkpoint, None, device)
    )
    results, problems = caption_split(
        captioner, annotations, images, batch_size, beam_size, length_penalty, progress
    )
    if not results:
        first = problems[0] if problems else "no images"
        raise CourseError(f"{annotations}: no image got a caption (first problem: {first})")
    candidates = {r["image_id"]: r["caption"] for r in results}
    report = score_captions(reference_captions(annotations), candidates, per_image, skip)
    if problems:
        report.notes.append(f"{len(problems)} images got no caption (first: {problems[0]})")
    return results, report


def metrics_path(results: Path) -> Path:
    """Where the metrics of a results file go: results.json -> results.metrics.json."""
    return results.with_name(f"{results.stem}.metrics.json")
