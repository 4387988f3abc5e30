"""Scoring against references: a results file checked and scored, a model and people against the
same references, and results over seeds."""

from __future__ import annotations

import os
import statistics
from collections.abc import Collection, Mapping
from pathlib import Path

from helpers.data.annotations import load_captions
from helpers.errors import CourseError
from helpers.evaluate.metrics import MetricsReport, score_captions
from helpers.files import read_json


def reference_captions(annotations: str | os.PathLike) -> dict[int, list[str]]:
    """Every image of a COCO captions file with its captions, in file order (checked file)."""
    data = load_captions(annotations)
    refs: dict[int, list[str]] = {img["id"]: [] for img in data["images"]}
    for ann in data["annotations"]:
        refs[ann["image_id"]].append(ann["caption"])
    return refs


def load_results(
    results: str | os.PathLike | list, image_ids: Collection[int], annotations: str = "annotations"
) -> dict[int, str]:
    """Check a COCO results file (or list) of {"image_id", "caption"}: one-line errors naming it."""
    if isinstance(results, (str, os.PathLike)):
        where, data = Path(results), read_json(results, "results file")
    else:
        where, data = "results", results
    if not isinstance(data, list):
        raise CourseError(
            f'{where}: not a COCO results file (needs a list of {{"image_id", "caption"}}, '
            f"got a JSON {type(data).__name__})"
        )
    if not data:
        raise CourseError(f"{where}: no captions in the results")
    out: dict[int, str] = {}
    first: dict[int, int] = {}
    for k, item in enumerate(data):
        if not isinstance(item, dict) or "image_id" not in item or "caption" not in item:
            raise CourseError(f'{where}: entry {k} is not an {{"image_id", "caption"}} object')
        image_id, caption = item["image_id"], item["caption"]
        if isinstance(image_id, bool) or not isinstance(image_id, int) or image_id not in image_ids:
            raise CourseError(f"{where}: entry {k}: image id {image_id!r} is not in {annotations}")
        if not isinstance(caption, str) or not caption.strip():
            raise CourseError(f"{where}: entry {k} (image {image_id}) has an empty caption")
        if image_id in out:
            raise CourseError(
                f"{where}: image {image_id} has two captions (entries {first[image_id]} and {k}); "
                "the COCO format wants one per image"
            )
        out[image_id], first[image_id] = caption, k
    return out


def evaluate_results(
    annotations: str | os.PathLike,
    results: str | os.PathLike | list,
    per_image: bool = False,
    skip: Collection[str] = (),
    use_java: bool | None = None,
) -> MetricsReport:
    """The COCO metrics of a results file (or list) against a COCO captions file."""
    refs = reference_captions(annotations)
    candidates = load_results(results, refs, Path(annotations).name)
    return score_captions(refs, candidates, per_image, skip, use_java)


def against_others(
    references: Mapping[int, list[str]],
    candidates: Mapping[int, str] | None = None,
    per_image: bool = False,
    skip: Collection[str] = (),
    use_java: bool | None = None,
) -> MetricsReport:
    """Candidates scored against each image's references but the first; with no candidates, each
    image's first reference is scored (the human agreement): the same four references for both.

    With one reference fewer than a model usually gets, this is the fair comparison with people.
    """
    pool = candidates if candidates is not None else {i: c[0] for i, c in references.items() if c}
    others = {i: c[1:] for i, c in references.items() if len(c) >= 2 and i in pool}
    report = score_captions(others, {i: pool[i] for i in others}, per_image, skip, use_java)
    if candidates is None:
        if len(others) < len(references):
            left = len(references) - len(others)
            report.notes.append(f"{left} images with fewer than 2 captions left out")
        report.notes.append(
            "human agreement: each image's first caption against its other captions"
        )
    else:
        report.notes.append("model against each image's captions but the first (as the humans)")
    return report


def human_agreement(
    annotations: str | os.PathLike,
    per_image: bool = False,
    skip: Collection[str] = (),
    use_java: bool | None = None,
) -> MetricsReport:
    """Each image's first human caption scored against its other captions: the bar for a model."""
    return against_others(reference_captions(annotations), None, per_image, skip, use_java)


def against_other_references(
    annotations: str | os.PathLike,
    results: str | os.PathLike | list,
    skip: Collection[str] = (),
    use_java: bool | None = None,
) -> MetricsReport:
    """A model's captions scored against the same references as human_agreement (all but the first)."""
    refs = reference_captions(annotations)
    candidates = load_results(results, refs, Path(annotations).name)
    return against_others(refs, candidates, False, skip, use_java)


def over_seeds(rows: Mapping[str, list[dict]]) -> dict:
    """Per-seed results (name: one dict of numbers per seed) as their mean, min and max per number."""
    return {
        name: {
            key: {
                "mean": round(statistics.mean(r[key] for r in per_seed), 3),
                "min": min(r[key] for r in per_seed),
                "max": max(r[key] for r in per_seed),
            }
            for key in per_seed[0]
        }
        for name, per_seed in rows.items()
    }
