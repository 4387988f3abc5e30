"""What a derived thing was made from, recorded and compared before reuse: a run's captions (by
content) and its image or video folders (names, sizes, modification times), per split."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from helpers.data.registry import Dataset, resolve_dataset
from helpers.files import file_digest


def folder_listing(folder: str | os.PathLike) -> str:
    """A digest of a folder's file names, sizes and modification times: changes when a file does."""
    names = sorted(os.listdir(folder))
    fd = os.open(folder, os.O_RDONLY)
    try:  # one stat per file is most of the cost: relative to the open folder, links followed
        stats = [os.stat(name, dir_fd=fd) for name in names]
    finally:
        os.close(fd)
    lines = (f"{n}\0{s.st_size}\0{s.st_mtime_ns}\n" for n, s in zip(names, stats, strict=True))
    return hashlib.sha256("".join(lines).encode()).hexdigest()


def split_inputs(dataset: str | os.PathLike | Dataset, split: str) -> dict:
    """One split's inputs: its captions file's digest and its image (or video) folder's listing."""
    dataset = resolve_dataset(dataset)
    annotations, _ = dataset.annotations(split)
    where = dataset.video_split(split).videos if dataset.video else dataset.split(split).images
    kind = "videos" if dataset.video else "images"
    return {"captions_sha256": file_digest(annotations), kind: folder_listing(where)}


def run_inputs(dataset: str | os.PathLike | Dataset, weights: str | None = None) -> dict:
    """What a training run reads: the train and val splits' inputs and a weights file's digest."""
    inputs = {split: split_inputs(dataset, split) for split in ("train", "val")}
    if weights is not None and Path(weights).is_file():  # a course checkpoint or a .pth file
        inputs["weights_sha256"] = file_digest(weights)
    return inputs


def changed_inputs(old: dict | None, new: dict) -> str:
    """What differs between two records of inputs, in words ("" when nothing did)."""
    if old is None:
        return "what it was made from (it predates these records)"
    changed = []
    for split in ("train", "val"):
        was, now = old.get(split, {}), new.get(split, {})
        if was.get("captions_sha256") != now.get("captions_sha256"):
            changed.append(f"the {split} captions")
        for kind in ("images", "videos"):
            if was.get(kind) != now.get(kind):
                changed.append(f"the {split} {kind}")
    if old.get("weights_sha256") != new.get("weights_sha256"):
        changed.append("the weights it starts from")
    return ", ".join(changed)
