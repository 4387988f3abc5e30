"""Reading COCO captions files: checked once, with one-line errors that name the file."""

from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path

from pycocotools.coco import COCO

from helpers.errors import CourseError
from helpers.files import read_json


def load_captions(path: str | os.PathLike) -> dict:
    """Read a COCO captions JSON and check its shape (images, annotations, non-empty captions)."""
    path = Path(path)
    data = read_json(path, "captions file")
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("annotations"), list)
        or not isinstance(data.get("images"), list)
    ):
        raise CourseError(
            f"{path}: not a COCO captions file (needs 'images' and 'annotations' lists)"
        )
    image_ids = set()
    for img in data["images"]:
        if (
            not isinstance(img, dict)
            or "id" not in img
            or not isinstance(img.get("file_name"), str)
        ):
            raise CourseError(
                f"{path}: not a COCO captions file (an image entry lacks 'id' or 'file_name')"
            )
        image_ids.add(img["id"])
    for ann in data["annotations"]:
        if (
            not isinstance(ann, dict)
            or "image_id" not in ann
            or "id" not in ann
            or "caption" not in ann
        ):
            kind = "instances (objects)" if isinstance(ann, dict) and "bbox" in ann else "captions"
            raise CourseError(
                f"{path}: not a COCO captions file (an annotation lacks 'id', 'image_id' or 'caption'; is it a COCO {kind} file?)"
            )
        if not isinstance(ann["caption"], str) or not ann["caption"].strip():
            raise CourseError(
                f"{path}: annotation {ann['id']} (image {ann['image_id']}) has an empty caption"
            )
        if ann["image_id"] not in image_ids:
            raise CourseError(
                f"{path}: annotation {ann['id']} refers to image {ann['image_id']}, which is not in 'images'"
            )
    return data


def coco_index(path: str | os.PathLike) -> COCO:
    """A pycocotools COCO index of a checked captions file, without its console chatter."""
    data = load_captions(path)
    coco = COCO()
    coco.dataset = data
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def image_files(annotations: str | os.PathLike, images: str | os.PathLike) -> dict[int, Path]:
    """Each image id of a captions file with the path of its file in `images`."""
    return {
        img["id"]: Path(images) / img["file_name"] for img in load_captions(annotations)["images"]
    }
