"""The captions dataset, the padded batches, the seeded loader and the COCO subset tool."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import transforms

from helpers.data.coco_subset import coco_subset
from helpers.data.coco_subset import main as subset_main
from helpers.data.images import MEAN, STD, tensor_to_image
from helpers.data.layouts import coco_split
from helpers.data.loaders import CocoCaptionDataset, collate_captions, get_loader
from helpers.data.vocabulary import Vocabulary, build_vocabulary
from helpers.errors import CourseError, run_cli

SMALL = transforms.Compose(
    [transforms.Resize((32, 32)), transforms.ToTensor(), transforms.Normalize(MEAN, STD)]
)


@pytest.fixture(scope="module")
def train(small_coco):
    return coco_split(small_coco, "train")


@pytest.fixture(scope="module")
def vocab(train) -> Vocabulary:
    return build_vocabulary(train.annotations, threshold=1, progress=False)


def write_coco(
    folder: Path, images: dict[str, Image.Image], captions: dict[str, list[str]], ids=None
):
    """A COCO captions file and image folder in `folder`; returns (image folder, captions file)."""
    (folder / "images").mkdir(parents=True)
    ids = ids or {name: k + 1 for k, name in enumerate(images)}
    entries, anns = [], []
    for name, img in images.items():
        img.save(folder / "images" / name)
        entries.append(
            {"id": ids[name], "file_name": name, "width": img.width, "height": img.height}
        )
        for text in captions[name]:
            anns.append({"id": len(anns) + 1, "image_id": ids[name], "caption": text})
    (folder / "captions.json").write_text(json.dumps({"images": entries, "annotations": anns}))
    return folder / "images", folder / "captions.json"


def n_captions(annotations: Path) -> int:
    return len(json.loads(annotations.read_text())["annotations"])


# The dataset


def test_items_are_image_tensors_and_start_end_ids(train, vocab):
    ds = CocoCaptionDataset(train.images, train.annotations, vocab, SMALL)
    assert len(ds) == n_captions(train.annotations) == 300
    image, ids = ds[0]
    assert image.shape == (3, 32, 32) and image.dtype == torch.float32
    assert ids.dtype == torch.long and ids[0] == 1 and ids[-1] == 2
    assert ids.tolist() == vocab.encode(ds.captions(ds.item_image_id(0))[0])
    assert torch.equal(ds[-1][1], ds.caption_ids(len(ds) - 1))
    with pytest.raises(IndexError):
        ds[len(ds)]


def test_default_transform_gives_224_crops(train, vocab):
    image, _ = CocoCaptionDataset(train.images, train.annotations, vocab)[3]
    assert image.shape == (3, 224, 224)


def test_captions_are_tokenized_once_at_construction(train, vocab, monkeypatch):
    import helpers.data.vocabulary

    calls = []
    tokenize = helpers.data.vocabulary.tokenize
    monkeypatch.setattr(
        helpers.data.vocabulary, "tokenize", lambda text: calls.append(1) or tokenize(text)
    )
    ds = CocoCaptionDataset(train.images, train.annotations, vocab, SMALL)
    assert len(calls) == len(ds)
    for i in range(0, len(ds), 7):
        ds[i]
    assert len(calls) == len(ds)


def test_captions_image_ids_and_paths(train, vocab):
    data = json.loads(train.annotations.read_text())
    first = data["images"][0]
    ds = CocoCaptionDataset(train.images, train.annotations, vocab, SMALL, image_ids=[first["id"]])
    assert ds.image_ids == [first["id"]] and len(ds) == 5
    assert ds.image_path(first["id"]) == train.images / first["file_name"]
    assert ds.captions(first["id"]) == [
        a["caption"] for a in data["annotations"] if a["image_id"] == first["id"]
    ]
    with pytest.raises(CourseError, match="image id 999999 is not in"):
        CocoCaptionDataset(train.images, train.annotations, vocab, image_ids=[999999])


def test_2017_names_and_sparse_ids(small_coco, vocab, tmp_path):
    val = coco_split(small_coco, "val")
    sources = sorted(val.images.iterdir())[:3]
    ids = [7, 1000, 424242]
    images = {f"{i:012d}.jpg": Image.open(p) for i, p in zip(ids, sources, strict=True)}
    caps = {name: [f"a red circle number {k}", "a blue square"] for k, name in enumerate(images)}
    root = tmp_path / "coco2017"
    folder, ann = write_coco(tmp_path / "raw", images, caps, dict(zip(images, ids, strict=True)))
    (root / "annotations").mkdir(parents=True)
    shutil.move(folder, root / "val2017")
    shutil.move(ann, root / "annotations" / "captions_val2017.json")
    split = coco_split(root, "val")
    ds = CocoCaptionDataset(split.images, split.annotations, vocab, SMALL)
    assert ds.image_ids == ids and len(ds) == 6
    assert ds.image_path(424242).name == "000000424242.jpg"
    assert [ds.item_image_id(i) for i in range(6)] == [7, 7, 1000, 1000, 424242, 424242]
    assert ds[5][0].shape == (3, 32, 32)


# Batches and the loader


def test_collate_sorts_longest_first_and_pads_with_zero():
    batch = [
        (torch.full((3, 4, 4), float(k)), torch.arange(1, n + 1)) for k, n in enumerate((3, 5, 4))
    ]
    images, targets, lengths = collate_captions(batch)
    assert lengths == [5, 4, 3]
    assert images.shape == (3, 3, 4, 4) and images[:, 0, 0, 0].tolist() == [1.0, 2.0, 0.0]
    assert targets.dtype == torch.long and targets.shape == (3, 5)
    assert targets.tolist() == [[1, 2, 3, 4, 5], [1, 2, 3, 4, 0], [1, 2, 3, 0, 0]]


def test_loader_batches_depend_only_on_the_seed(train, vocab):
    def batches(num_workers, seed):
        loader = get_loader(
            train.images, train.annotations, vocab, SMALL, 32, num_workers=num_workers, seed=seed
        )
        assert loader.pin_memory == torch.cuda.is_available()
        assert loader.persistent_workers == (num_workers > 0)
        return [(images, targets, lengths) for images, targets, lengths in loader]

    serial, parallel = batches(0, 5), batches(2, 5)
    assert len(serial) == 10 and [len(b[2]) for b in serial][-1] == 300 - 9 * 32
    for (im0, t0, l0), (im2, t2, l2) in zip(serial, parallel, strict=True):
        assert torch.equal(im0, im2) and torch.equal(t0, t2) and l0 == l2
        assert l0 == sorted(l0, reverse=True) and t0.shape == (len(l0), l0[0])
    assert not torch.equal(batches(0, 6)[0][1], serial[0][1])


# Bad input


def test_missing_or_wrong_annotations_file(train, vocab, tmp_path):
    with pytest.raises(CourseError, match="nope.json: captions file not found"):
        CocoCaptionDataset(train.images, tmp_path / "nope.json", vocab)
    instances = tmp_path / "instances.json"
    instances.write_text(
        json.dumps(
            {
                "images": [{"id": 1, "file_name": "a.jpg"}],
                "annotations": [{"id": 1, "image_id": 1, "bbox": [0, 0, 1, 1]}],
            }
        )
    )
    with pytest.raises(CourseError, match="instances.json: not a COCO captions file") as err:
        CocoCaptionDataset(train.images, instances, vocab)
    assert "\n" not in str(err.value)


def test_missing_image_file_is_named_at_construction(train, vocab, tmp_path):
    folder = tmp_path / "images"
    shutil.copytree(train.images, folder)
    gone = sorted(folder.iterdir())
    for p in gone[:2]:
        p.unlink()
    with pytest.raises(CourseError) as err:
        CocoCaptionDataset(folder, train.annotations, vocab)
    msg = str(err.value)
    assert msg.startswith(str(gone[0])) and "image file not found (2 of 60 images" in msg
    assert train.annotations.name in msg and "\n" not in msg
    with pytest.raises(CourseError, match="image folder not found"):
        CocoCaptionDataset(tmp_path / "none", train.annotations, vocab)


@pytest.mark.parametrize("caption", ["", "   \t "])
def test_empty_caption_is_refused(tmp_path, vocab, caption):
    folder, ann = write_coco(tmp_path, {"a.jpg": Image.new("RGB", (8, 8))}, {"a.jpg": [caption]})
    with pytest.raises(CourseError, match="captions.json: annotation 1 .* empty caption"):
        CocoCaptionDataset(folder, ann, vocab)


def test_caption_of_unknown_words_encodes_to_unk(tmp_path, vocab):
    folder, ann = write_coco(
        tmp_path, {"a.jpg": Image.new("RGB", (8, 8))}, {"a.jpg": ["Zyzzyva quux!"]}
    )
    _, ids = CocoCaptionDataset(folder, ann, vocab, SMALL)[0]
    assert ids.tolist() == [1, 3, 3, 3, 2]


def test_truncated_jpeg_is_one_line_naming_the_file(tmp_path, vocab):
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (64, 64, 3), dtype=np.uint8))
    folder, ann = write_coco(
        tmp_path, {"cut.jpg": img, "ok.jpg": img}, {"cut.jpg": ["x"], "ok.jpg": ["y"]}
    )
    data = (folder / "cut.jpg").read_bytes()
    (folder / "cut.jpg").write_bytes(data[: len(data) // 2])
    ds = CocoCaptionDataset(folder, ann, vocab, SMALL)
    assert ds[1][0].shape == (3, 32, 32)
    with pytest.raises(CourseError, match="cut.jpg: cannot be read as an image"):
        ds[0]
    # Raised in a worker process, it still reaches the user as the same single line.
    loader = get_loader(folder, ann, vocab, SMALL, batch_size=2, num_workers=2)
    try:  # not pytest.raises: its saved traceback would keep the workers alive for seconds
        next(iter(loader))
        message = "no error"
    except CourseError as err:
        message = str(err)
    assert message.startswith(str(folder / "cut.jpg") + ": cannot be read as an image")
    assert "\n" not in message and "Traceback" not in message


def test_every_image_mode_becomes_three_channels(tmp_path, vocab):
    rgb = Image.fromarray(np.random.default_rng(1).integers(0, 255, (20, 30, 3), dtype=np.uint8))
    images = {
        "gray.jpg": rgb.convert("L"),
        "cmyk.jpg": rgb.convert("CMYK"),
        "rgba.png": rgb.convert("RGBA"),
        "palette.png": rgb.convert("P"),
        "bw.png": rgb.convert("1"),
        "tiny.png": Image.new("RGB", (1, 1), (200, 10, 10)),
    }
    folder, ann = write_coco(tmp_path, images, {name: ["a picture"] for name in images})
    ds = CocoCaptionDataset(folder, ann, vocab, SMALL)
    with Image.open(folder / "cmyk.jpg") as img:
        assert img.mode == "CMYK"
    for i in range(len(ds)):
        assert ds[i][0].shape == (3, 32, 32)


def test_tensor_to_image_undoes_normalisation():
    img = Image.fromarray(np.random.default_rng(2).integers(0, 255, (6, 5, 3), dtype=np.uint8))
    back = tensor_to_image(
        transforms.Compose([transforms.ToTensor(), transforms.Normalize(MEAN, STD)])(img)
    )
    assert back.size == (5, 6) and back.mode == "RGB"
    assert np.abs(np.asarray(back, dtype=int) - np.asarray(img, dtype=int)).max() <= 1


# coco_subset


def test_subset_keeps_n_images_with_all_captions(train, vocab, tmp_path):
    out = coco_subset(train.annotations, train.images, 7, tmp_path / "sub", seed=1)
    split = coco_split(out, "train")
    assert split.annotations.name == "captions_train2014.json" and split.images.name == "train2014"
    full, sub = (json.loads(p.read_text()) for p in (train.annotations, split.annotations))
    assert sub["info"] == full["info"] and sub["licenses"] == full["licenses"]
    ids = {im["id"] for im in sub["images"]}
    assert len(ids) == 7
    assert sub["annotations"] == [a for a in full["annotations"] if a["image_id"] in ids]
    names = sorted(im["file_name"] for im in sub["images"])
    assert sorted(p.name for p in split.images.iterdir()) == names
    assert (split.images / names[0]).read_bytes() == (train.images / names[0]).read_bytes()
    ds = CocoCaptionDataset(split.images, split.annotations, vocab, SMALL)
    assert len(ds) == 35 and ds[0][0].shape == (3, 32, 32)

    again = coco_subset(train.annotations, train.images, 7, tmp_path / "again", seed=1)
    assert (
        again / "annotations" / "captions_train2014.json"
    ).read_bytes() == split.annotations.read_bytes()
    other = coco_subset(train.annotations, train.images, 7, tmp_path / "sub", seed=2)
    assert {im["id"] for im in json.loads(split.annotations.read_text())["images"]} != ids
    assert other == out and len(list(split.images.iterdir())) == 7


def test_subset_holds_train_and_val_side_by_side(small_coco, tmp_path):
    train, val = coco_split(small_coco, "train"), coco_split(small_coco, "val")
    out = coco_subset(train.annotations, train.images, 4, tmp_path / "both")
    coco_subset(val.annotations, val.images, 3, out)
    stamp = (out / "annotations" / "captions_train2014.json").stat().st_mtime_ns
    coco_subset(val.annotations, val.images, 2, out, seed=9)  # replaces val only
    assert len(list(coco_split(out, "train").images.iterdir())) == 4
    assert len(list(coco_split(out, "val").images.iterdir())) == 2
    assert (out / "annotations" / "captions_train2014.json").stat().st_mtime_ns == stamp
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left


def test_subset_errors(train, tmp_path):
    with pytest.raises(CourseError, match="asked for 61 images but it has only 60"):
        coco_subset(train.annotations, train.images, 61, tmp_path / "sub")
    assert not (tmp_path / "sub").exists()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.txt").write_text("keep me")
    with pytest.raises(CourseError, match="busy: folder is not empty and is not a COCO subset"):
        coco_subset(train.annotations, train.images, 2, tmp_path / "busy")
    assert (tmp_path / "busy" / "thesis.txt").read_text() == "keep me"
    odd = tmp_path / "odd.json"
    shutil.copy(train.annotations, odd)
    with pytest.raises(CourseError, match="odd.json: cannot tell the split .* pass --split"):
        coco_subset(odd, tmp_path, 2, tmp_path / "x")
    out = coco_subset(odd, train.images, 2, tmp_path / "x")  # the folder name tells: train2014
    assert coco_split(out, "train").images.name == "train2014"


def test_subset_cli(train, tmp_path, capsys):
    out = tmp_path / "cli"
    done = subprocess.run(
        [sys.executable, "-m", "helpers.data.coco_subset", "--annotations", str(train.annotations),
         "--images", str(train.images), "--n", "3", "--out", str(out), "--seed", "4"],
        capture_output=True, text=True, cwd=Path(__file__).resolve().parents[1], check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "train2014: 3 images, 15 captions (seed 4)" in done.stdout
    assert len(list((out / "train2014").iterdir())) == 3
    with pytest.raises(SystemExit) as code:
        run_cli(subset_main, ["--annotations", str(tmp_path / "missing.json"),
                              "--images", str(train.images), "--n", "3", "--out", str(tmp_path / "o")])  # fmt: skip
    assert code.value.code != 0
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing.json: captions file not found" in err


# The real COCO sample (val2017 names, real photos, one true grayscale JPEG)

REAL = transforms.Compose(
    [
        transforms.Resize(72),
        transforms.CenterCrop(64),
        transforms.ToTensor(),
        transforms.Normalize(MEAN, STD),
    ]
)


def test_real_coco_sample(coco_sample, tmp_path):
    captions, images = coco_sample / "captions.json", coco_sample / "images"
    vocab = build_vocabulary(captions, threshold=2, progress=False)
    ds = CocoCaptionDataset(images, captions, vocab, REAL)
    assert len(ds) == 500 and len(ds.image_ids) == 100
    with Image.open(ds.image_path(431848)) as img:
        assert img.mode == "L"
    first_item = {}
    for i in range(len(ds)):
        first_item.setdefault(ds.item_image_id(i), i)
    for i in first_item.values():  # one item per image: every photo decodes to 3 channels
        image, ids = ds[i]
        assert image.shape == (3, 64, 64) and ids[0] == 1 and ids[-1] == 2
    images_, targets, lengths = next(iter(get_loader(images, captions, vocab, REAL, batch_size=8)))
    assert images_.shape == (8, 3, 64, 64) and targets.shape == (8, lengths[0])

    out = coco_subset(captions, images, 10, tmp_path / "sub", split="val")
    split = coco_split(out, "val")
    assert split.annotations.name == "captions_val2017.json"
    sub = CocoCaptionDataset(split.images, split.annotations, vocab, REAL)
    assert len(sub.image_ids) == 10 and len(sub) == 50
    assert all(p.name.startswith("000000") for p in split.images.iterdir())
