"""Images: resizing any image to RGB, skipping bad files, cheap reruns, atomic outputs, transforms."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, JpegImagePlugin

from helpers.data import resize as images
from helpers.data.images import MEAN, STD, eval_transform, load_rgb, resize_image, train_transform
from helpers.data.registry import dataset_name
from helpers.data.resize import ResizeReport, ensure_resized, resize_images
from helpers.errors import CourseError, run_cli


def noise(w: int, h: int, mode: str = "RGB", seed: int = 0) -> Image.Image:
    """A random image, so that different resampling filters give different pixels."""
    channels = {"L": 1, "RGB": 3, "RGBA": 4, "CMYK": 4}[mode]
    arr = np.random.default_rng(seed).integers(0, 256, (h, w, channels), dtype=np.uint8)
    return Image.fromarray(arr.squeeze(-1) if channels == 1 else arr, mode)


def folder_of_modes(folder: Path) -> Path:
    """Images in every mode the course meets: RGB, grayscale, CMYK, RGBA, palette and 1x1."""
    folder.mkdir(parents=True, exist_ok=True)
    noise(50, 40).save(folder / "rgb.jpg", quality=90)
    noise(30, 60, "L", 1).save(folder / "gray.jpg")
    noise(40, 40, "CMYK", 2).save(folder / "cmyk.jpg")
    rgba = Image.new("RGBA", (40, 40), (0, 0, 255, 255))
    rgba.paste((255, 0, 0, 0), (0, 0, 20, 40))  # left half: transparent red
    rgba.save(folder / "rgba.png")
    noise(45, 35, seed=3).quantize(16).save(folder / "palette.png")
    Image.new("RGB", (1, 1), (10, 200, 30)).save(folder / "one_pixel.png")
    return folder


def truncated_jpeg(path: Path) -> None:
    buf = io.BytesIO()
    noise(64, 64, seed=4).save(buf, "JPEG")
    path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])


def test_resize_image_uses_lanczos():
    img = noise(57, 43)
    out = resize_image(img, (20, 16))
    assert out.size == (20, 16)
    assert out.tobytes() == img.resize((20, 16), Image.LANCZOS).tobytes()
    assert out.tobytes() != img.resize((20, 16), Image.BILINEAR).tobytes()


def test_every_mode_becomes_rgb_of_the_asked_size(tmp_path):
    src = folder_of_modes(tmp_path / "src")
    report = resize_images(src, tmp_path / "dst", (32, 24), workers=1, progress=False)
    assert (report.resized, report.already_done, report.skipped) == (6, 0, [])
    for path in src.iterdir():
        with Image.open(tmp_path / "dst" / path.name) as out:
            assert (out.size, out.mode) == ((32, 24), "RGB"), path.name
            assert out.format == ("JPEG" if path.suffix == ".jpg" else "PNG")
    rgba = Image.open(tmp_path / "dst" / "rgba.png")
    assert rgba.getpixel((2, 12)) == (255, 255, 255)  # transparent part composited on white
    assert rgba.getpixel((30, 12)) == (0, 0, 255)
    assert Image.open(tmp_path / "dst" / "one_pixel.png").getpixel((5, 5)) == (10, 200, 30)


def test_outputs_are_lanczos_resizes_saved_at_quality_95(tmp_path):
    src = folder_of_modes(tmp_path / "src")
    resize_images(src, tmp_path / "dst", (32, 32), workers=1, progress=False)
    expected = load_rgb(src / "palette.png").resize((32, 32), Image.LANCZOS)
    assert Image.open(tmp_path / "dst" / "palette.png").tobytes() == expected.tobytes()
    buf = io.BytesIO()
    load_rgb(src / "cmyk.jpg").resize((32, 32), Image.LANCZOS).save(buf, "JPEG", quality=95)
    # The same JPEG, pixel for pixel; the copy also carries a comment saying how it was made.
    made = Image.open(tmp_path / "dst" / "cmyk.jpg")
    assert made.tobytes() == Image.open(buf).tobytes()
    assert made.info["comment"] == b"helpers.images resize 32x32 draft=on"


def test_bad_files_are_skipped_and_counted_with_reasons(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        noise(40, 30, seed=i).save(src / f"good{i}.jpg")
    (src / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1" + bytes(100))
    (src / "notes.txt").write_text("captions to check\n")
    truncated_jpeg(src / "broken.jpg")
    report = resize_images(src, tmp_path / "dst", (16, 16), workers=1, progress=False)
    assert report.resized == 3
    assert [name for name, _ in report.skipped] == [".DS_Store", "broken.jpg", "notes.txt"]
    reasons = dict(report.skipped)
    assert reasons[".DS_Store"] == reasons["notes.txt"] == "not an image"
    assert reasons["broken.jpg"].startswith("unreadable: ") and "truncated" in reasons["broken.jpg"]
    assert str(report) == "resized 3, already done 0, skipped 3 (2 not an image, 1 unreadable)"
    assert sorted(p.name for p in (tmp_path / "dst").iterdir()) == [
        "good0.jpg",
        "good1.jpg",
        "good2.jpg",
    ]


def test_report_summary_line():
    assert str(ResizeReport(950, 50)) == "resized 950, already done 50, skipped 0"
    skipped = [("a", "unreadable: x"), ("b", "not an image"), ("c", "unreadable: y")]
    assert str(ResizeReport(1, 2, skipped)) == (
        "resized 1, already done 2, skipped 3 (1 not an image, 2 unreadable)"
    )


def test_rerun_resizes_nothing_and_rewrites_nothing(tmp_path):
    src = folder_of_modes(tmp_path / "src")
    dst = tmp_path / "dst"
    resize_images(src, dst, (16, 16), workers=1, progress=False)
    before = {p.name: p.stat().st_mtime_ns for p in dst.iterdir()}
    again = resize_images(src, dst, (16, 16), workers=1, progress=False)
    assert (again.resized, again.already_done, again.skipped) == (0, 6, [])
    assert {p.name: p.stat().st_mtime_ns for p in dst.iterdir()} == before
    (dst / "gray.jpg").unlink()
    third = resize_images(src, dst, (16, 16), workers=1, progress=False)
    assert (third.resized, third.already_done) == (1, 5)


def test_interrupted_write_leaves_nothing_under_the_final_name(tmp_path, monkeypatch):
    src = folder_of_modes(tmp_path / "src")
    dst = tmp_path / "dst"

    def crash(self, fp, *args, **kwargs):
        Path(fp).write_bytes(b"\xff\xd8half a jpeg")  # a partial file, then the crash
        raise RuntimeError("power cut")

    with monkeypatch.context() as m:
        m.setattr(Image.Image, "save", crash)
        with pytest.raises(RuntimeError, match="power cut"):
            resize_images(src, dst, (16, 16), workers=1, progress=False)
    assert list(dst.iterdir()) == []  # neither the output nor its temporary file
    report = resize_images(src, dst, (16, 16), workers=1, progress=False)
    assert (report.resized, report.already_done) == (6, 0)


def test_write_error_is_one_line(tmp_path, monkeypatch):
    src = folder_of_modes(tmp_path / "src")

    def disk_full(self, fp, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", disk_full)
    with pytest.raises(CourseError, match=r"cmyk.jpg: cannot write the resized image") as err:
        resize_images(src, tmp_path / "dst", (16, 16), workers=1, progress=False)
    assert "\n" not in str(err.value)


def test_two_workers_give_byte_identical_outputs(tmp_path):
    src = folder_of_modes(tmp_path / "src")
    for i in range(10):
        noise(70, 50, seed=10 + i).save(src / f"extra{i:02d}.jpg")
    (src / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    one = resize_images(src, tmp_path / "one", (24, 24), workers=1, progress=False)
    two = resize_images(src, tmp_path / "two", (24, 24), workers=2, progress=False)
    assert one == two and one.resized == 16
    names = sorted(p.name for p in (tmp_path / "one").iterdir())
    assert names == sorted(p.name for p in (tmp_path / "two").iterdir())
    for name in names:
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()


def test_bad_arguments_are_one_line_errors(tmp_path):
    with pytest.raises(CourseError, match=r"missing: image folder not found$"):
        resize_images(tmp_path / "missing", tmp_path / "dst")
    src = folder_of_modes(tmp_path / "src")
    with pytest.raises(CourseError, match="is also an input"):
        resize_images(src, src)
    with pytest.raises(CourseError, match="size must be two positive whole numbers"):
        resize_images(src, tmp_path / "dst", (0, 16))
    with pytest.raises(CourseError, match="workers must be at least 1"):
        resize_images(src, tmp_path / "dst", (16, 16), workers=0)


def test_cli_prints_the_report(tmp_path, capsys):
    src = folder_of_modes(tmp_path / "src")
    (src / "notes.txt").write_text("not an image")
    argv = ["--src", str(src), "--dst", str(tmp_path / "dst"), "--size", "20", "--quiet"]
    with pytest.raises(SystemExit) as ended:
        run_cli(images.main, [*argv, "--workers", "1"])
    assert ended.value.code == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "resized 6, already done 0, skipped 1 (1 not an image)",
        "skipped notes.txt: not an image",
    ]
    assert Image.open(tmp_path / "dst" / "gray.jpg").size == (20, 20)


def test_cli_missing_folder_is_one_line_and_non_zero(tmp_path):
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "helpers.data.resize",
            "--src",
            str(tmp_path / "nope"),
            "--dst",
            "x",
        ],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    assert result.returncode == 2
    assert result.stderr == f"error: {tmp_path / 'nope'}: image folder not found\n"
    assert not (Path(__file__).resolve().parents[1] / "x").exists()


def test_ensure_resized_builds_once_and_completes_a_partial_folder(
    small_coco, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    out = ensure_resized(str(small_coco), "train", 48)
    assert out == tmp_path / "resized" / f"{dataset_name(small_coco)}_48" / "train2014"
    names = [
        im["file_name"]
        for im in json.loads((small_coco / "annotations" / "captions_train2014.json").read_text())[
            "images"
        ]
    ]
    assert sorted(p.name for p in out.iterdir()) == sorted(names) and len(names) == 60
    for name in names[:5]:
        assert Image.open(out / name).size == (48, 48) and Image.open(out / name).mode == "RGB"
    assert capsys.readouterr().out == "resized 60, already done 0, skipped 0\n"

    with monkeypatch.context() as m:  # a second call must not even look at the images
        m.setattr(images, "resize_images", lambda *a, **k: pytest.fail("resized again"))
        assert ensure_resized(str(small_coco), "train", 48) == out
    assert capsys.readouterr().out == ""

    (out / names[0]).unlink()  # a folder made partial after it was complete
    ensure_resized(str(small_coco), "train", 48)
    assert capsys.readouterr().out == "resized 1, already done 59, skipped 0\n"
    assert (out / names[0]).is_file()

    # copies made by an older version (no stamp saying how) are made again
    for name in names[:3]:
        unstamped = Image.open(out / name).convert("RGB")
        unstamped.info.clear()  # Pillow would carry the comment over into the new file
        unstamped.save(out / name, quality=95)
    (out.parent / "train2014.resized.json").unlink()
    ensure_resized(str(small_coco), "train", 48)
    assert capsys.readouterr().out == "resized 3, already done 57, skipped 0\n"


def test_ensure_resized_resumes_an_interrupted_run(small_coco, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    out = tmp_path / "resized" / f"{dataset_name(small_coco)}_32" / "train2014"
    first = sorted((small_coco / "train2014").iterdir())[:25]
    resize_images(small_coco / "train2014", out, (32, 32), workers=1, progress=False)
    for path in sorted(out.iterdir())[25:]:
        path.unlink()  # as if the first run had been stopped after 25 images; no marker yet
    assert sorted(p.name for p in out.iterdir()) == [p.name for p in first]
    assert ensure_resized(str(small_coco), "val", 32).name == "val2014"
    assert ensure_resized(str(small_coco), "train", 32) == out
    assert capsys.readouterr().out.splitlines()[-1] == "resized 35, already done 25, skipped 0"
    assert len(list(out.iterdir())) == 60


def test_transforms_shapes_and_normalisation():
    gray = Image.new("RGB", (40, 36), (128, 128, 128))
    expected = torch.tensor([(128 / 255 - m) / s for m, s in zip(MEAN, STD, strict=True)])
    for t in (train_transform(32), eval_transform(32)):
        x = t(gray)
        assert x.shape == (3, 32, 32)
        assert torch.allclose(x.mean(dim=(1, 2)), expected, atol=1e-5)
        assert abs(x.mean().item()) < 0.5  # roughly centred, as the pretrained ResNet expects


def test_train_transform_without_flip_is_deterministic():
    img = noise(32, 32, seed=5)  # crop == image size: only the flip could change anything
    reference = eval_transform(32)(img)
    flipped = torch.flip(reference, dims=[2])
    seen_flip = False
    for seed in range(10):
        torch.manual_seed(seed)
        assert torch.equal(train_transform(32, flip=False)(img), reference)
        torch.manual_seed(seed)
        x = train_transform(32, flip=True)(img)
        assert torch.equal(x, reference) or torch.equal(x, flipped)
        seen_flip |= torch.equal(x, flipped)
    assert seen_flip
    big = noise(48, 40, seed=6)  # the random crop itself is reproducible for a seed
    torch.manual_seed(1)
    a = train_transform(32)(big)
    torch.manual_seed(1)
    assert torch.equal(a, train_transform(32)(big))


def test_real_coco_photos_resize_to_rgb(coco_sample, tmp_path):
    src = coco_sample / "images"
    assert Image.open(src / "000000431848.jpg").mode == "L"
    report = resize_images(src, tmp_path, (256, 256), workers=2, progress=False)
    assert (report.resized, report.already_done, report.skipped) == (100, 0, [])
    outputs = sorted(tmp_path.iterdir())
    assert [p.name for p in outputs] == sorted(p.name for p in src.iterdir())
    for path in outputs:
        with Image.open(path) as img:
            assert (img.size, img.mode, img.format) == ((256, 256), "RGB", "JPEG"), path.name


def photo(w: int, h: int, seed: int = 0) -> Image.Image:
    """A smooth image with some fine detail, closer to a photo than pure noise is."""
    coarse = noise(w // 32, h // 32, seed=seed).resize((w, h), Image.BICUBIC)
    fine = noise(w // 4, h // 4, seed=seed + 1).resize((w, h), Image.BICUBIC)
    return Image.blend(coarse, fine, 0.4)


def large_files(folder: Path) -> Path:
    """1200x900 JPEGs in RGB, grayscale and CMYK, and a PNG with transparency."""
    folder.mkdir(parents=True, exist_ok=True)
    big = photo(1200, 900)
    big.save(folder / "rgb.jpg", quality=90)
    big.convert("L").save(folder / "gray.jpg", quality=90)
    big.convert("CMYK").save(folder / "cmyk.jpg", quality=90)
    rgba = big.convert("RGBA")
    rgba.paste((255, 0, 0, 0), (0, 0, 600, 900))  # left half: transparent red
    rgba.save(folder / "rgba.png")
    return folder


def mean_abs_diff(a: Image.Image | Path, b: Image.Image | Path) -> float:
    """Mean absolute difference of two same-sized images' pixels, in grey levels."""
    a, b = (np.asarray(Image.open(x) if isinstance(x, Path) else x, float) for x in (a, b))
    return float(np.abs(a - b).mean())


def test_load_rgb_draft_decodes_jpegs_smaller_but_never_below_the_size(tmp_path):
    src = large_files(tmp_path / "src")
    for name in ("rgb.jpg", "gray.jpg", "cmyk.jpg"):
        assert load_rgb(src / name).size == (1200, 900)
        # 1200x900 for 128x128: 1/4 scale (300x225); 1/8 (150x113) would be too small a height.
        small = load_rgb(src / name, draft=(128, 128))
        assert (small.size, small.mode) == ((300, 225), "RGB"), name
        assert load_rgb(src / name, draft=(256, 256)).size == (600, 450)
        assert load_rgb(src / name, draft=(640, 480)).size == (1200, 900)  # no smaller scale fits
    png = load_rgb(src / "rgba.png", draft=(128, 128))  # not a JPEG: draft does nothing
    assert (png.size, png.mode) == ((1200, 900), "RGB")
    assert png.getpixel((10, 10)) == (255, 255, 255)  # transparency still composited on white
    assert png.tobytes() == load_rgb(src / "rgba.png").tobytes()


def test_draft_outputs_match_the_plain_path_but_a_too_small_draft_does_not(tmp_path):
    src = large_files(tmp_path / "src")
    fast = resize_images(src, tmp_path / "fast", (128, 128), workers=1, progress=False)
    plain = resize_images(
        src, tmp_path / "plain", (128, 128), workers=1, progress=False, draft=False
    )
    assert fast == plain and fast.resized == 4
    for name in ("rgb.jpg", "gray.jpg", "cmyk.jpg", "rgba.png"):
        a, b = Image.open(tmp_path / "fast" / name), Image.open(tmp_path / "plain" / name)
        assert (a.size, a.mode, a.format) == (b.size, b.mode, b.format), name
        assert (a.size, a.mode) == ((128, 128), "RGB"), name
        # Saved outputs differ by about 2 grey levels; a draft below the output size gives about 6.
        assert mean_abs_diff(tmp_path / "fast" / name, tmp_path / "plain" / name) < 3, name
    assert Image.open(tmp_path / "fast" / "rgba.png").tobytes() == (
        Image.open(tmp_path / "plain" / "rgba.png").tobytes()
    )
    for name in ("rgb.jpg", "gray.jpg", "cmyk.jpg"):
        # Before re-encoding (measured ~0.5 against 4.5 to 7): decoding at 150x113 for 128x128 blurs.
        reference = load_rgb(src / name).resize((128, 128), Image.LANCZOS)
        right = load_rgb(src / name, draft=(128, 128)).resize((128, 128), Image.LANCZOS)
        too_small = load_rgb(src / name, draft=(64, 64)).resize((128, 128), Image.LANCZOS)
        assert mean_abs_diff(right, reference) < 1.5 < 3 < mean_abs_diff(too_small, reference)


def test_resize_asks_for_the_draft_at_the_output_size(tmp_path, monkeypatch):
    src = large_files(tmp_path / "src")
    calls = []
    original = JpegImagePlugin.JpegImageFile.draft

    def spy(self, mode, size):
        calls.append((Path(self.filename).name, mode, size))
        return original(self, mode, size)

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    resize_images(src, tmp_path / "fast", (128, 96), workers=1, progress=False)
    assert sorted(calls) == [(n, "RGB", (128, 96)) for n in ("cmyk.jpg", "gray.jpg", "rgb.jpg")]
    calls.clear()
    resize_images(src, tmp_path / "plain", (128, 96), workers=1, progress=False, draft=False)
    assert calls == []


def test_cli_no_draft_takes_the_plain_path(tmp_path, capsys):
    src = large_files(tmp_path / "src")
    resize_images(src, tmp_path / "plain", (100, 100), workers=1, progress=False, draft=False)
    resize_images(src, tmp_path / "fast", (100, 100), workers=1, progress=False)
    for flags, expected in (([], "fast"), (["--no-draft"], "plain")):
        out = tmp_path / f"cli{len(flags)}"
        argv = ["--src", str(src), "--dst", str(out), "--size", "100", "--quiet", "--workers", "1"]
        with pytest.raises(SystemExit) as ended:
            run_cli(images.main, [*argv, *flags])
        assert ended.value.code == 0
        assert capsys.readouterr().out == "resized 4, already done 0, skipped 0\n"
        for name in ("rgb.jpg", "gray.jpg", "cmyk.jpg", "rgba.png"):
            assert (out / name).read_bytes() == (tmp_path / expected / name).read_bytes(), name
    assert (tmp_path / "cli0" / "rgb.jpg").read_bytes() != (
        tmp_path / "cli1" / "rgb.jpg"
    ).read_bytes()


def test_corrupt_jpegs_are_still_skipped_with_their_reason_on_the_draft_path(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    buf = io.BytesIO()
    photo(1200, 900, seed=7).save(buf, "JPEG", quality=90)
    (src / "cut.jpg").write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    (src / "fake.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg" + bytes(200))
    photo(1200, 900, seed=8).save(src / "good.jpg", quality=90)
    fast = resize_images(src, tmp_path / "fast", (128, 128), workers=1, progress=False)
    plain = resize_images(
        src, tmp_path / "plain", (128, 128), workers=1, progress=False, draft=False
    )
    assert fast == plain
    assert fast.resized == 1 and [name for name, _ in fast.skipped] == ["cut.jpg", "fake.jpg"]
    reasons = dict(fast.skipped)
    assert reasons["cut.jpg"].startswith("unreadable: ") and "truncated" in reasons["cut.jpg"]
    assert reasons["fake.jpg"].startswith(("not an image", "unreadable"))
    assert sorted(p.name for p in (tmp_path / "fast").iterdir()) == ["good.jpg"]


def test_an_empty_output_is_resized_again(tmp_path):
    # What a power cut before the final sync can leave: a name with no data behind it.
    src = tmp_path / "src"
    src.mkdir()
    Image.new("RGB", (64, 48), (200, 10, 10)).save(src / "a.jpg")
    Image.new("RGB", (64, 48), (10, 200, 10)).save(src / "b.jpg")
    resize_images(src, tmp_path / "dst", 16, workers=1, progress=False)
    (tmp_path / "dst" / "a.jpg").write_bytes(b"")
    report = resize_images(src, tmp_path / "dst", 16, workers=1, progress=False)
    assert (report.resized, report.already_done) == (1, 1)
    with Image.open(tmp_path / "dst" / "a.jpg") as img:
        assert img.size == (16, 16)
