"""The two folder layouts the course reads: COCO's (annotations/captions_<split><year>.json beside
<split><year>/) and MSR-VTT's (one annotations file for every split beside a folder of videos)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from helpers.errors import CourseError

YEARS = ("2014", "2017")
# MSR-VTT calls its files train_val_videodatainfo.json and TrainValVideo/; the tiny set is shorter.
VIDEO_ANNOTATIONS = ("videodatainfo.json", "train_val_videodatainfo.json")
VIDEO_FOLDERS = ("videos", "TrainValVideo")
VIDEO_SPLITS = {"train": "train", "val": "validate", "test": "test"}  # the course's: MSR-VTT's


@dataclass(frozen=True)
class Split:
    """One split of a COCO-layout dataset: its image folder and its captions file."""

    name: str
    images: Path
    annotations: Path


@dataclass(frozen=True)
class VideoSplit:
    """One split of an MSR-VTT-layout dataset: the split's name in the file, videos, annotations."""

    name: str
    videos: Path
    annotations: Path


def coco_split(root: str | os.PathLike, split: str = "train") -> Split:
    """Find `split` in a folder laid out like COCO (annotations/captions_<split><year>.json)."""
    root = Path(root)
    for year in YEARS:
        ann = root / "annotations" / f"captions_{split}{year}.json"
        if ann.is_file():
            return Split(split, root / f"{split}{year}", ann)
    raise CourseError(
        f"{root}: no annotations/captions_{split}2014.json or captions_{split}2017.json "
        "(is this a COCO-layout folder?)"
    )


def is_video_folder(root: str | os.PathLike) -> bool:
    """Whether a folder holds an MSR-VTT annotations file (then it is a video dataset)."""
    return any((Path(root) / a).is_file() for a in VIDEO_ANNOTATIONS)


def video_layout(root: str | os.PathLike, split: str = "train") -> VideoSplit:
    """Find `split` ('val' is MSR-VTT's 'validate') in a folder laid out like MSR-VTT."""
    root = Path(root)
    annotations = next((root / a for a in VIDEO_ANNOTATIONS if (root / a).is_file()), None)
    videos = next((root / v for v in VIDEO_FOLDERS if (root / v).is_dir()), None)
    if annotations is None or videos is None:
        raise CourseError(
            f"{root}: not a video dataset folder (needs {' or '.join(VIDEO_ANNOTATIONS)} and a "
            f"{' or '.join(VIDEO_FOLDERS)} folder)"
        )
    return VideoSplit(VIDEO_SPLITS.get(split, split), videos, annotations)
