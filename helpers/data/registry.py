"""The dataset registry: a dataset's name or folder, resolved once into a Dataset that knows its
layout (images or videos), its file-name key and where each split lives."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from helpers.data.layouts import Split, VideoSplit, coco_split, is_video_folder, video_layout
from helpers.data.paths import data_dir
from helpers.data.splits import ensure_coco2017_val
from helpers.data.tiny_coco import ensure_tiny_coco
from helpers.data.tiny_video import ensure_tiny_video
from helpers.errors import CourseError


def _coco2014() -> Path:
    root = data_dir() / "coco"
    if not root.is_dir():
        raise CourseError(f"{root}: COCO 2014 not downloaded yet (see notebook 02)")
    return root


# Datasets known by name: whether they hold videos, and how their folder is found (or made).
NAMED: dict[str, tuple[bool, Callable[[], Path]]] = {
    "tiny": (False, ensure_tiny_coco),  # generated when missing
    "coco2014": (False, _coco2014),  # data_dir/coco, downloaded by notebook 02
    "coco2017-val": (False, ensure_coco2017_val),  # COCO 2017's val photos, split when missing
    "tiny_video": (True, ensure_tiny_video),  # generated when missing
}


@dataclass(frozen=True)
class Dataset:
    """A dataset resolved once: its name as given, a file-name-safe key, whether it holds videos,
    and how its folder is found (a named one is built or split on first use)."""

    name: str
    key: str
    video: bool
    find: Callable[[], Path]

    def split(self, split: str = "train") -> Split:
        """A split of an image dataset: its image folder and captions file."""
        if self.video and self.name in NAMED:
            raise CourseError(f"{self.name}: holds videos, not images")
        return coco_split(self.find(), split)  # a folder of another layout: one line says so

    def video_split(self, split: str = "train") -> VideoSplit:
        """A split of a video dataset: its video folder, annotations file and split name."""
        if not self.video and self.name in NAMED:
            raise CourseError(f"{self.name}: holds images, not videos")
        return video_layout(self.find(), split)  # a folder of another layout: one line says so

    def annotations(self, split: str = "train") -> tuple[Path, str | None]:
        """The captions file of a split, and for a video set the split's name inside it (an
        MSR-VTT file holds every split)."""
        if self.video:
            where = self.video_split(split)
            return where.annotations, where.name
        return self.split(split).annotations, None


def resolve_dataset(dataset: str | os.PathLike | Dataset) -> Dataset:
    """A named dataset ('tiny', 'coco2014', 'coco2017-val', 'tiny_video') or a COCO- or
    MSR-VTT-layout folder, as a Dataset; a folder that is not there is a one-line error."""
    if isinstance(dataset, Dataset):
        return dataset
    name = str(dataset)
    if name in NAMED:
        video, find = NAMED[name]
        return Dataset(name, name, video, find)
    root = Path(dataset)
    if not root.is_dir():
        raise CourseError(
            f"{dataset}: dataset folder not found (use {', '.join(map(repr, NAMED))} or a folder)"
        )
    return Dataset(name, dataset_name(root), is_video_folder(root), lambda: root)


def dataset_split(dataset: str | os.PathLike | Dataset = "tiny", split: str = "train") -> Split:
    """The image folder and captions file of one split of an image dataset."""
    return resolve_dataset(dataset).split(split)


def video_split(
    dataset: str | os.PathLike | Dataset = "tiny_video", split: str = "train"
) -> VideoSplit:
    """The video folder, annotations file and split name of one split of a video dataset."""
    return resolve_dataset(dataset).video_split(split)


def dataset_name(dataset: str | os.PathLike | Dataset) -> str:
    """A file-name-safe key: 'tiny', 'coco2014', or a folder's name plus a hash of its full path
    (the folder need not exist yet)."""
    if isinstance(dataset, Dataset) or str(dataset) in NAMED:
        return str(dataset.key if isinstance(dataset, Dataset) else dataset)
    # A folder's name alone could clash with a named dataset or another folder of that name.
    digest = hashlib.sha1(str(Path(dataset).resolve()).encode()).hexdigest()[:8]
    return f"{Path(dataset).name}-{digest}"
