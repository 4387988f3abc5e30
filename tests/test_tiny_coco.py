"""The tiny COCO generator: layout, determinism, truthful captions, bad input."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pycocotools.coco import COCO

from helpers.data.tiny_coco import COLORS, SHAPES, generate_tiny_coco
from helpers.errors import CourseError

NAME = re.compile(r"^COCO_(train|val)2014_\d{12}\.jpg$")


def _files(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_official_layout_loads_with_pycocotools(small_coco):
    for split, n in (("train", 60), ("val", 20)):
        ann = small_coco / "annotations" / f"captions_{split}2014.json"
        raw = json.loads(ann.read_text())
        assert set(raw) == {"info", "licenses", "images", "annotations"}
        coco = COCO(str(ann))
        assert len(coco.getImgIds()) == n
        for img in coco.loadImgs(coco.getImgIds()):
            assert NAME.match(img["file_name"]) and f"_{split}2014_" in img["file_name"]
            assert int(img["file_name"][-16:-4]) == img["id"]
            with Image.open(small_coco / f"{split}2014" / img["file_name"]) as im:
                assert im.size == (img["width"], img["height"])
            anns = coco.loadAnns(coco.getAnnIds(imgIds=img["id"]))
            assert len(anns) == 5
            assert len({a["caption"] for a in anns}) == 5


def test_ids_unique_across_splits(small_coco):
    splits = [
        json.loads((small_coco / "annotations" / f"captions_{s}2014.json").read_text())
        for s in ("train", "val")
    ]
    image_ids = [i["id"] for d in splits for i in d["images"]]
    ann_ids = [a["id"] for d in splits for a in d["annotations"]]
    assert len(set(image_ids)) == len(image_ids)
    assert len(set(ann_ids)) == len(ann_ids)


def test_like_real_coco_sizes_vary_and_some_grayscale(tmp_path):
    root = generate_tiny_coco(tmp_path / "t", seed=0, n_train=300, n_val=10)
    imgs = json.loads((root / "annotations" / "captions_train2014.json").read_text())["images"]
    widths = [i["width"] for i in imgs]
    assert min(widths) >= 96 and max(widths) <= 320
    assert sum(i["width"] != i["height"] for i in imgs) > 200  # most are 4:3 or 3:4, as in COCO
    modes = {Image.open(root / "train2014" / i["file_name"]).mode for i in imgs}
    assert modes == {"RGB", "L"}


def test_same_seed_gives_identical_bytes(tmp_path):
    a = generate_tiny_coco(tmp_path / "a", seed=7, n_train=15, n_val=5)
    b = generate_tiny_coco(tmp_path / "b", seed=7, n_train=15, n_val=5)
    c = generate_tiny_coco(tmp_path / "c", seed=8, n_train=15, n_val=5)
    assert _files(a) == _files(b)
    assert _files(a) != _files(c)


def _nearest_color(rgb) -> str:
    return min(
        COLORS,
        key=lambda c: sum((int(x) - int(y)) ** 2 for x, y in zip(COLORS[c], rgb, strict=True)),
    )


def test_captions_are_true_to_the_pixels(small_coco):
    for split in ("train", "val"):
        coco = COCO(str(small_coco / "annotations" / f"captions_{split}2014.json"))
        truth = json.loads((small_coco / "annotations" / f"objects_{split}2014.json").read_text())
        for img in coco.loadImgs(coco.getImgIds()):
            t = truth[str(img["id"])]
            pixels = np.asarray(
                Image.open(small_coco / f"{split}2014" / img["file_name"]).convert("RGB")
            )
            caps = [a["caption"].lower() for a in coco.loadAnns(coco.getAnnIds(imgIds=img["id"]))]
            for s in t["shapes"]:
                assert s["shape"] in SHAPES and s["color"] in COLORS
                cx, cy, _ = s["box"]
                if not t["grayscale"]:
                    assert _nearest_color(pixels[round(cy), round(cx)]) == s["color"], img[
                        "file_name"
                    ]
                for cap in caps:  # every caption names every shape (a pair may use the plural)
                    assert s["shape"] in cap, cap
                    if not t["grayscale"]:
                        assert s["color"] in cap, cap
            if t["grayscale"]:
                assert not any(c in cap for cap in caps for c in COLORS), caps


def test_existing_identical_dataset_is_kept(small_coco):
    manifest = small_coco / "tiny_coco.json"
    before = manifest.stat().st_mtime_ns
    assert generate_tiny_coco(small_coco, seed=3, n_train=60, n_val=20) == small_coco
    assert manifest.stat().st_mtime_ns == before


def test_a_tiny_coco_with_other_settings_is_replaced(tmp_path):
    root = generate_tiny_coco(tmp_path / "t", seed=1, n_train=5, n_val=2)
    generate_tiny_coco(root, seed=1, n_train=8, n_val=2)
    assert len(list((root / "train2014").iterdir())) == 8


@pytest.mark.parametrize("kwargs", [{"n_train": -1}, {"n_val": 0}, {"n_train": 2.5}])
def test_bad_counts_give_one_line_error(tmp_path, kwargs):
    with pytest.raises(CourseError) as err:
        generate_tiny_coco(tmp_path / "t", **kwargs)
    assert "\n" not in str(err.value) and "positive" in str(err.value)
    assert not (tmp_path / "t").exists()


def test_refuses_to_touch_a_foreign_folder(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "thesis.txt").write_text("precious")
    with pytest.raises(CourseError, match="holds files that the tiny COCO generator did not make"):
        generate_tiny_coco(out, n_train=3, n_val=1)
    assert (out / "thesis.txt").read_text() == "precious"
    assert [p.name for p in tmp_path.iterdir()] == ["mine"]  # no temp folder left behind


def test_cli_bad_input_is_one_line_without_traceback(tmp_path):
    out = tmp_path / "t"
    run = subprocess.run(
        [sys.executable, "-m", "helpers.data.tiny_coco", "--out", str(out), "--train", "-5"],
        capture_output=True,
        text=True,
    )
    assert run.returncode != 0
    assert "Traceback" not in run.stderr
    assert run.stderr.strip().count("\n") == 0 and "--train" in run.stderr


def test_cli_writes_dataset(tmp_path):
    out = tmp_path / "t"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "helpers.data.tiny_coco",
            "--out",
            str(out),
            "--train",
            "4",
            "--val",
            "2",
            "--train-pairs",
            "0",
            "--val-pairs",
            "1",
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    assert len(list((out / "val2014").iterdir())) == 2 + 1


def test_object_scores_need_exactly_the_right_colours_and_shapes():
    from helpers.evaluate.objects import object_scores

    objects = {
        1: {"grayscale": False, "shapes": [{"shape": "star", "color": "red"}]},
        2: {
            "grayscale": False,
            "shapes": [{"shape": "circle", "color": "blue"}, {"shape": "square", "color": "blue"}],
        },
        3: {"grayscale": True, "shapes": [{"shape": "triangle", "color": "green"}]},
        4: {
            "grayscale": False,
            "shapes": [
                {"shape": "circle", "color": "green"},
                {"shape": "circle", "color": "green"},
            ],
        },
    }
    captions = {
        1: "A red star.",  # right
        2: "a blue circle next to a blue triangle",  # colours right, a shape wrong
        3: "a green triangle",  # grayscale: no colour may be named
        4: "two green circles side by side",  # the plural counts
    }
    scores = object_scores(captions, objects)
    assert scores == {"colors": 0.75, "shapes": 0.75, "both": 0.5}


def test_load_objects_reads_the_truth_beside_the_captions(small_coco):
    from helpers.evaluate.objects import load_objects

    truth = load_objects(small_coco / "annotations" / "captions_val2014.json")
    assert len(truth) == 20 and all(isinstance(k, int) for k in truth)


def test_more_pairs_add_two_shape_images_and_change_none_of_the_mixed_ones(tmp_path):
    plain = generate_tiny_coco(tmp_path / "a", seed=2, n_train=20, n_val=5, progress=False)
    more = generate_tiny_coco(
        tmp_path / "b", seed=2, n_train=20, n_val=5, progress=False, train_pairs=40, val_pairs=8
    )
    for split, n, pairs in (("train", 20, 40), ("val", 5, 8)):
        old = json.loads((plain / "annotations" / f"objects_{split}2014.json").read_text())
        new = json.loads((more / "annotations" / f"objects_{split}2014.json").read_text())
        assert len(new) == n + pairs
        assert all(new[k] == v for k, v in old.items())  # the same scenes, the same ids
        for k in old:
            name = f"COCO_{split}2014_{int(k):012d}.jpg"
            assert (plain / f"{split}2014" / name).read_bytes() == (
                more / f"{split}2014" / name
            ).read_bytes()
        added = [v for k, v in new.items() if k not in old]
        assert all(len(v["shapes"]) == 2 for v in added)
    train = json.loads((more / "annotations" / "objects_train2014.json").read_text())
    gray = [v for k, v in train.items() if int(k) > 20 and v["grayscale"]]
    assert 3 <= len(gray) <= 20  # about a quarter of the 40 pairs


def test_the_command_takes_the_pair_counts(tmp_path, capsys):
    from helpers.data.tiny_coco import main

    out = tmp_path / "t"
    args = ["--out", str(out), "--train", "4", "--val", "2", "--quiet"]
    main([*args, "--train-pairs", "3", "--val-pairs", "1"])
    assert len(list((out / "train2014").iterdir())) == 7
    assert len(list((out / "val2014").iterdir())) == 3
    with pytest.raises(SystemExit):
        main([*args, "--train-pairs", "-1"])
    assert "--train-pairs" in capsys.readouterr().err
