"""The feature cache: right features, reused when valid, rebuilt with a notice when not."""

from __future__ import annotations

import os

import pytest
import torch

from helpers.data.features import CachedCaptions, ensure_features, extract_features
from helpers.data.images import eval_transform, load_rgb
from helpers.data.layouts import coco_split
from helpers.data.loaders import CocoCaptionDataset
from helpers.data.resize import resize_images
from helpers.data.vocabulary import build_vocabulary
from helpers.models.backbones import SmallCNN


@pytest.fixture(scope="module")
def images(small_coco, tmp_path_factory):
    """The fixture's val images at 40x40, as training would see them."""
    out = tmp_path_factory.mktemp("resized") / "val"
    resize_images(small_coco / "val2014", out, 40, workers=1, progress=False)
    return sorted(out.iterdir())


def _backbone(seed: int = 0) -> SmallCNN:
    torch.manual_seed(seed)
    return SmallCNN(8).eval()


def test_view_zero_is_the_backbone_on_the_centre_crop(images):
    backbone = _backbone()
    features = extract_features(backbone, images[:5], crop=32, views=3, progress=False)
    assert features.shape == (5, 3, backbone.out_features)
    with torch.no_grad():
        expected = backbone(torch.stack([eval_transform(32)(load_rgb(p)) for p in images[:5]]))
    torch.testing.assert_close(features[:, 0], expected)
    assert not torch.equal(features[:, 1], features[:, 0])  # a random crop, not the centre again
    again = extract_features(backbone, images[:5], crop=32, views=3, progress=False)
    assert torch.equal(features, again)  # the random views are seeded


def test_flip_view_is_the_mirrored_centre_crop(images):
    backbone = _backbone()
    features = extract_features(backbone, images[:3], crop=32, views=2, flip=True, progress=False)
    with torch.no_grad():
        crops = torch.stack([eval_transform(32)(load_rgb(p)) for p in images[:3]])
        expected = backbone(torch.flip(crops, dims=[3]))
    torch.testing.assert_close(features[:, 1], expected)


def test_a_valid_cache_is_reused(images, tmp_path, monkeypatch):
    path = tmp_path / "val.pt"
    first = ensure_features(path, _backbone(), "small", images, 32, 2, progress=False)
    monkeypatch.setattr(
        "helpers.data.features.extract_features", lambda *a, **k: pytest.fail("extracted again")
    )
    assert torch.equal(ensure_features(path, _backbone(), "small", images, 32, 2), first)


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"backbone": _backbone(seed=1)}, "stale (other weights_sha256)"),
        ({"files": "fewer"}, "stale (other images, images_sha256)"),
        ({"crop": 24}, "stale (other crop)"),
        ({"views": 3}, "stale (other views)"),
    ],
)
def test_a_stale_cache_is_rebuilt_with_a_notice(images, tmp_path, capsys, change, says):
    path = tmp_path / "val.pt"
    ensure_features(path, _backbone(), "small", images, 32, 2, progress=False)
    args = {"backbone": _backbone(), "files": images, "crop": 32, "views": 2, **change}
    if args["files"] == "fewer":
        args["files"] = images[:-1]

    def build() -> torch.Tensor:
        return ensure_features(
            path,
            args["backbone"],
            "small",
            args["files"],
            args["crop"],
            args["views"],
            progress=False,
        )

    got = build()
    notice = capsys.readouterr().out.strip()
    assert notice == f"{path}: feature cache {says}; rebuilding it"
    assert got.shape[:2] == (len(args["files"]), args["views"])
    assert torch.equal(build(), got)  # and the rebuilt cache is now the valid one
    assert capsys.readouterr().out == ""


def test_an_image_rewritten_since_rebuilds_the_cache(images, tmp_path, capsys):
    # The same name and size, written again after the cache (a source image replaced, resized anew).
    copies = []
    for src in images[:4]:
        copies.append(tmp_path / src.name)
        copies[-1].write_bytes(src.read_bytes())
    path = tmp_path / "val.pt"
    ensure_features(path, _backbone(), "small", copies, 32, 1, progress=False)
    info = copies[2].stat()
    os.utime(copies[2], ns=(info.st_atime_ns, info.st_mtime_ns + 10**9))
    ensure_features(path, _backbone(), "small", copies, 32, 1, progress=False)
    assert "stale (other images_sha256)" in capsys.readouterr().out


@pytest.mark.parametrize("damage", ["truncate", "garbage"])
def test_a_damaged_cache_is_rebuilt_with_a_notice(images, tmp_path, capsys, damage):
    path = tmp_path / "val.pt"
    good = ensure_features(path, _backbone(), "small", images, 32, 2, progress=False).clone()
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncate" else b"\x00" * 300)
    got = ensure_features(path, _backbone(), "small", images, 32, 2, progress=False)
    notice = capsys.readouterr().out
    assert notice.startswith(f"{path}: feature cache unreadable (") and notice.count("\n") == 1
    assert torch.equal(got, good)


def test_cached_captions_pair_each_caption_with_its_image(small_coco, images, tmp_path):
    split = coco_split(small_coco, "val")
    vocab = build_vocabulary(split.annotations, threshold=1, progress=False)
    captions = CocoCaptionDataset(images[0].parent, split.annotations, vocab)
    backbone = _backbone()
    features = extract_features(backbone, captions.image_files(), 32, views=3, progress=False)
    data = CachedCaptions(captions, features)
    assert len(data) == len(captions)
    for i in (0, 7, len(data) - 1):
        row = captions.image_ids.index(captions.item_image_id(i))
        for epoch in (0, 1, 2):
            data.set_epoch(epoch)
            feature, ids = data[i]
            assert torch.equal(feature, features[row, (i + epoch) % 3])
            assert torch.equal(ids, captions.caption_ids(i))


def test_workers_and_batch_size_do_not_change_the_features(images):
    backbone = _backbone()
    one = extract_features(backbone, images[:6], 32, views=3, flip=True, progress=False)
    two = extract_features(
        backbone, images[:6], 32, views=3, flip=True, batch_size=4, num_workers=2, progress=False
    )
    torch.testing.assert_close(one, two)


def test_views_below_one_are_a_one_line_error():
    from helpers.data.features import view_transforms
    from helpers.errors import CourseError

    with pytest.raises(CourseError, match="views must be at least 1, got 0"):
        view_transforms(32, 0, False)
