"""Karpathy's split written as a COCO-layout folder that the rest of the course reads unchanged."""

from __future__ import annotations

import json

import pytest

from helpers.data.annotations import image_files, load_captions
from helpers.data.karpathy import karpathy_split, main
from helpers.data.registry import dataset_split
from helpers.data.resize import resize_images
from helpers.errors import CourseError


def karpathy_json(small_coco, tmp_path) -> tuple:
    """A hand-made dataset_coco.json over the fixture's images, one image missing on disk."""
    train = json.loads((small_coco / "annotations" / "captions_train2014.json").read_text())
    val = json.loads((small_coco / "annotations" / "captions_val2014.json").read_text())
    picks = [("train2014", train, 0, "train"), ("train2014", train, 1, "restval")]
    picks += [("val2014", val, 0, "train"), ("val2014", val, 1, "val"), ("val2014", val, 2, "test")]
    images = [
        {
            "filepath": folder,
            "filename": data["images"][k]["file_name"],
            "cocoid": data["images"][k]["id"],
            "split": split,
            "sentences": [{"raw": f"caption {n} of image {k}", "tokens": []} for n in range(5)],
        }
        for folder, data, k, split in picks
    ]
    images.append({**images[-1], "cocoid": 999, "filename": "COCO_val2014_gone.jpg"})
    path = tmp_path / "dataset_coco.json"
    path.write_text(json.dumps({"images": images, "dataset": "coco"}))
    return path, images


def test_splits_are_coco_layout_folders(small_coco, tmp_path):
    path, images = karpathy_json(small_coco, tmp_path)
    out = tmp_path / "karpathy"
    counts = karpathy_split(path, small_coco, out)
    assert counts == {"train": 3, "val": 1, "test": 1, "missing": 1}
    train = dataset_split(out, "train")  # found as any COCO-layout dataset folder
    assert [img["id"] for img in load_captions(train.annotations)["images"]] == [
        images[0]["cocoid"],
        images[1]["cocoid"],  # restval goes to train
        images[2]["cocoid"],  # a val2014 image in Karpathy's train
    ]
    assert len(load_captions(train.annotations)["annotations"]) == 15
    assert all(p.is_file() for p in image_files(train.annotations, train.images).values())
    test = dataset_split(out, "test")
    assert load_captions(test.annotations)["annotations"][0]["caption"] == "caption 0 of image 2"
    assert (
        resize_images(train.images, tmp_path / "resized", 32, workers=1, progress=False).resized
        == 3
    )
    # A second run finds its links in place; dropping restval shrinks train.
    assert karpathy_split(path, small_coco, out, restval="drop")["train"] == 2
    assert len(load_captions(train.annotations)["images"]) == 2
    assert len(list(train.images.iterdir())) == 2  # the rerun replaced the folder, links and all


def test_cli_reports_missing_images(small_coco, tmp_path, capsys):
    path, _ = karpathy_json(small_coco, tmp_path)
    code = main([str(path), "--coco", str(small_coco), "--out", str(tmp_path / "k")])
    assert code == 1
    assert "1 images of" in capsys.readouterr().out


@pytest.mark.parametrize(
    "content, says",
    [
        ('{"images": 3}', "not Karpathy's dataset_coco.json"),
        ('{"images": [{"filepath": "val2014"}]}', "image entry 0 lacks"),
        (
            '{"images": [{"filepath": "a", "filename": "b", "cocoid": 1, "split": "dev", "sentences": []}]}',
            "unknown split 'dev'",
        ),
    ],
)
def test_bad_dataset_file_is_a_one_line_error(small_coco, tmp_path, content, says):
    path = tmp_path / "dataset_coco.json"
    path.write_text(content)
    with pytest.raises(CourseError, match=says) as err:
        karpathy_split(path, small_coco, tmp_path / "out")
    assert str(err.value).startswith(str(path)) and "\n" not in str(err.value)
