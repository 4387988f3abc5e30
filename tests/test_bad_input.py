"""Bad input, tried as a careless user would: one clear line, nothing lost, nothing silently wrong."""

from __future__ import annotations

import os
import shutil
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import folder_snapshot, write_untrained_checkpoint
from PIL import Image

from helpers import course
from helpers.caption import __main__ as caption
from helpers.caption import video as caption_video
from helpers.data import coco_subset, download, karpathy, tiny_coco, tiny_video, vocabulary
from helpers.data import resize as images
from helpers.data.images import load_rgb
from helpers.data.resize import ensure_resized
from helpers.data.vocabulary import build_vocabulary
from helpers.errors import CourseError, run_cli
from helpers.evaluate import __main__ as evaluate
from helpers.train import __main__ as train
from helpers.train import loop

ROOT = Path(__file__).resolve().parents[1]


# --- 1. every PIL mode becomes RGB by value ------------------------------------------------------


def _saved(img: Image.Image, tmp_path: Path, fmt: str = "PNG", **options) -> Path:
    path = tmp_path / f"{img.mode.replace(';', '_')}.{fmt.lower()}"
    img.save(path, fmt, **options)
    return path


def _palette_with_transparency() -> Image.Image:
    img = Image.new("P", (4, 4), 1)
    img.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    img.putpixel((0, 0), 0)
    img.info["transparency"] = 0
    return img


MODES = [
    # (image, where it is stored, expected RGB of pixel (0, 0) after loading)
    (lambda: Image.fromarray(np.full((4, 4), 32768, np.uint16)), "PNG", (128, 128, 128)),
    (lambda: Image.fromarray(np.full((4, 4), 65535, np.uint16)), "PNG", (255, 255, 255)),
    (lambda: Image.fromarray(np.full((4, 4), 1000, np.int32), "I"), "TIFF", (4, 4, 4)),
    (lambda: Image.fromarray(np.full((4, 4), 0.5, np.float32), "F"), "TIFF", (128, 128, 128)),
    (lambda: Image.new("LA", (4, 4), (100, 0)), "PNG", (255, 255, 255)),
    (lambda: Image.new("LA", (4, 4), (100, 255)), "PNG", (100, 100, 100)),
    (lambda: Image.new("CMYK", (4, 4), (0, 255, 255, 0)), "JPEG", (254, 0, 0)),
    (_palette_with_transparency, "PNG", (255, 255, 255)),
    (lambda: Image.new("RGBA", (4, 4), (10, 20, 30, 0)), "PNG", (255, 255, 255)),
    (lambda: Image.new("1", (4, 4), 1), "PNG", (255, 255, 255)),
    (lambda: Image.new("L", (4, 4), 77), "PNG", (77, 77, 77)),
]


@pytest.mark.parametrize(("make", "fmt", "rgb"), MODES, ids=lambda m: getattr(m, "__name__", m))
def test_every_mode_converts_by_value(tmp_path, make, fmt, rgb):
    original = make()
    path = _saved(original, tmp_path, fmt)
    loaded = load_rgb(path)
    assert loaded.mode == "RGB"
    got = loaded.getpixel((0, 0))
    # JPEG (CMYK) is lossy by a level or two; the others must be exact.
    tolerance = 3 if fmt == "JPEG" else 0
    assert all(abs(a - b) <= tolerance for a, b in zip(got, rgb, strict=True)), (
        Image.open(path).mode,
        got,
    )


def test_a_16_bit_photo_keeps_its_picture(tmp_path):
    # The white image the bug gave: a 16-bit grey ramp must stay a ramp, not clip to 255.
    ramp = (np.arange(64, dtype=np.uint16)[None, :] * 1024).repeat(8, 0)
    path = tmp_path / "ramp16.png"
    Image.fromarray(ramp).save(path)
    assert Image.open(path).mode.startswith("I")
    row = np.asarray(load_rgb(path))[0, :, 0]
    assert row[0] == 0 and row[-1] == round(63 * 1024 / 257) and np.all(np.diff(row) >= 0)


# --- 2. resizing again with another size or decoding -------------------------------------------


def _photos(folder: Path, n: int = 3) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (90, 120, 3), np.uint8)).save(folder / f"p{i}.jpg")
    return folder


def test_resizing_again_with_another_size_redoes_the_copies(tmp_path, capsys):
    src, dst = _photos(tmp_path / "src"), tmp_path / "out"
    assert images.main(["--src", str(src), "--dst", str(dst), "--size", "16", "--quiet"]) == 0
    assert images.main(["--src", str(src), "--dst", str(dst), "--size", "24", "--quiet"]) == 0
    assert {Image.open(p).size for p in dst.iterdir()} == {(24, 24)}
    assert "resized 3, already done 0" in capsys.readouterr().out
    # Same size, other decoding: redone too; the same command again reuses everything.
    images.main(["--src", str(src), "--dst", str(dst), "--size", "24", "--no-draft", "--quiet"])
    assert "resized 3, already done 0" in capsys.readouterr().out
    images.main(["--src", str(src), "--dst", str(dst), "--size", "24", "--no-draft", "--quiet"])
    assert "resized 0, already done 3" in capsys.readouterr().out


# --- 3. a stale marker never outlives the fix --------------------------------------------------


def test_an_emptied_then_restored_image_is_named_then_resized(small_coco, tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    root = tmp_path / "copy"
    shutil.copytree(small_coco, root)
    victim = sorted((root / "train2014").iterdir())[5]
    original = victim.read_bytes()
    victim.write_bytes(b"")
    with pytest.raises(CourseError) as err:
        ensure_resized(str(root), "train", 32)
    assert str(err.value).startswith(f"{victim}: not an image")  # the source, not the copy
    with pytest.raises(CourseError, match=str(victim)):  # no marker trusted in between
        ensure_resized(str(root), "train", 32)
    victim.write_bytes(original)
    out = ensure_resized(str(root), "train", 32)
    assert Image.open(out / victim.name).size == (32, 32)


def test_a_source_changed_after_its_copy_is_resized_again(small_coco, tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    root = tmp_path / "copy"
    shutil.copytree(small_coco, root)
    out = ensure_resized(str(root), "train", 32)
    victim = sorted((root / "train2014").iterdir())[2]
    Image.new("RGB", (50, 50), (255, 0, 0)).save(victim)  # the user fixed a wrong picture
    out = ensure_resized(str(root), "train", 32)
    assert Image.open(out / victim.name).getpixel((16, 16))[0] > 240


# --- 4. one huge image ------------------------------------------------------------------------


def _png_claiming(path: Path, width: int, height: int) -> Path:
    """A few hundred bytes whose header claims a width x height RGB picture."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = zlib.compress(b"\x00" * 300)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data))
    return path


def test_a_header_claiming_12000_pixels_a_side_takes_no_gigabytes(tmp_path):
    path = _png_claiming(tmp_path / "liar.png", 12000, 12000)
    assert path.stat().st_size < 1000
    code = (
        "import resource, sys\n"
        "from helpers.errors import CourseError\n"
        "from helpers.data.images import load_rgb\n"
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
        "try:\n"
        f"    load_rgb({str(path)!r})\n"
        "except CourseError as err:\n"
        "    print(err)\n"
        "print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True
    )
    message, grown_mb = done.stdout.strip().splitlines()
    assert message.startswith(f"{path}: image too large (12000x12000 pixels")
    assert int(grown_mb) < 100  # decoding it would take 432 MB


@pytest.fixture(scope="module")
def checkpoint(small_coco, small_config, tmp_path_factory) -> Path:
    """An untrained checkpoint of the fixture's sizes: enough to caption with, made in a second."""
    cfg = small_config(small_coco, pretrain_epochs=0)
    vocab = build_vocabulary(small_coco / "annotations" / "captions_train2014.json", 4, False)
    return write_untrained_checkpoint(tmp_path_factory.mktemp("run") / "best.pt", cfg, vocab)


def test_one_huge_image_is_one_error_and_the_others_are_captioned(checkpoint, tmp_path, capsys):
    huge = tmp_path / "huge.png"
    Image.new("1", (20000, 20000)).save(huge)  # 400 million pixels, a small file
    good = tmp_path / "good.png"
    Image.new("RGB", (64, 64), (200, 30, 30)).save(good)
    liar = _png_claiming(tmp_path / "liar.png", 12000, 12000)
    with pytest.raises(SystemExit) as exit_:
        run_cli(caption.main, [str(huge), str(good), str(liar), "--checkpoint", str(checkpoint)])
    assert exit_.value.code == 1
    out, err = capsys.readouterr()
    assert out.startswith(f"{good}\t") and len(out.splitlines()) == 1
    errors = err.strip().splitlines()
    assert len(errors) == 2 and all("image too large" in line for line in errors)
    assert str(huge) in errors[0] and str(liar) in errors[1]


# --- the table: every command, every class of bad value ----------------------------------------


def _make_bad_checkpoint(tmp_path: Path, checkpoint: Path) -> Path:
    state = torch.load(checkpoint, weights_only=True)
    del state["config"]["crop"]
    path = tmp_path / "old.pt"
    torch.save(state, path)
    return path


def _table(small_coco: Path, checkpoint: Path, tmp: Path) -> list[tuple]:
    """(command, arguments, what the one line must say); {tmp}, {ckpt} etc. filled in by the test."""
    ann = small_coco / "annotations" / "captions_val2014.json"
    imgs = small_coco / "val2014"
    afile = tmp / "afile"
    afile.write_text("not a folder\n")
    notes = tmp / "notes.txt"
    notes.write_text("not a checkpoint\n")
    c = ["--checkpoint", str(checkpoint)]
    ev = ["--checkpoint", str(checkpoint), "--annotations", str(ann), "--images", str(imgs)]
    return [
        # caption
        (caption, [str(imgs / "x.png"), *c, "--batch-size", "-1"], "--batch-size: must be"),
        (caption, [str(imgs / "x.png"), *c, "--batch-size", "0"], "--batch-size: must be"),
        (caption, [str(imgs / "x.png"), *c, "--batch-size", "many"], "expected a whole number"),
        (caption, [str(imgs / "x.png"), *c, "--beam-size", "0"], "--beam-size: must be"),
        (caption, [str(imgs / "x.png"), *c, "--length-penalty", "nan"], "finite"),
        (caption, [str(imgs / "x.png"), *c, "--length-penalty", "inf"], "finite"),
        (caption, [str(imgs / "x.png"), "--checkpoint", str(notes)], str(notes)),
        (caption, [str(imgs / "x.png"), "--checkpoint", str(tmp / "none.pt")], "not found"),
        (caption, [str(imgs / "x.png"), "--checkpoint", "{oldckpt}"], "missing config key crop"),
        (caption, [str(imgs / "x.png"), *c, "--device", "tpu"], "--device tpu"),
        (caption, [str(imgs / "x.png"), *c, "--attention-map", "m.png"], "--decoder attention"),
        # caption_video
        (caption_video, ["x.mp4", "--checkpoint", str(tmp / "none.pt")], "not found"),
        (caption_video, ["x.mp4", "--checkpoint", str(notes)], str(notes)),
        (caption_video, ["x.mp4", *c, "--beam-size", "0"], "--beam-size: must be"),
        (caption_video, ["x.mp4", *c, "--device", "tpu"], "--device tpu"),
        (caption_video, [*c], "the following arguments are required: videos"),
        # evaluate
        (evaluate, [*ev, "--beam-size", "0"], "--beam-size: must be"),
        (evaluate, [*ev, "--batch-size", "-3"], "--batch-size: must be"),
        (evaluate, [*ev, "--length-penalty", "nan"], "finite"),
        (evaluate, [*ev, "--out", str(afile / "r.json")], f"{afile} is a file"),
        (evaluate, [*ev, "--out", str(ann)], "is also an input"),
        (evaluate, [*ev, "--skip", "FOO"], "FOO"),
        (
            evaluate,
            ["--checkpoint", str(notes), "--annotations", str(ann), "--images", str(imgs)],
            str(notes),
        ),
        # train
        (train, ["--epochs", "-1"], "--epochs: must be"),
        (train, ["--batch-size", "0"], "--batch-size: must be"),
        (train, ["--lr", "nan"], "--lr: must be a finite"),
        (train, ["--lr", "-0.1"], "--lr: must be above 0"),
        (train, ["--clip", "inf"], "--clip: must be a finite"),
        (train, ["--views", "0"], "--views: must be"),
        (train, ["--threshold", "0"], "--threshold: must be"),
        (train, ["--max-seq-len", "0"], "--max-seq-len: must be"),
        (train, ["--num-workers", "-1"], "--num-workers: must be"),
        (train, ["--backbone", "vgg"], "backbone must be one of"),
        (train, ["--resize", "32", "--crop", "64"], "crop 64 is larger than resize 32"),
        (train, ["--out", str(afile)], f"{afile}: is a file"),
        (train, ["--device", "tpu"], "--device tpu"),
        (train, ["--dataset", str(tmp / "nowhere")], str(tmp / "nowhere")),
        (train, ["--decoder", "transformer"], "decoder must be one of lstm, attention"),
        (train, ["--decoder", "attention", "--num-layers", "2"], "num_layers must be 1"),
        (train, ["--grid", "-1"], "--grid: must be"),
        (train, ["--attention-size", "0"], "--attention-size: must be"),
        (train, ["--attention-penalty", "-1"], "--attention-penalty: must be at least 0"),
        (train, ["--weights", str(tmp / "gone.pt")], "gone.pt: weights file not found"),
        # vocabulary
        (vocabulary, ["--annotations", str(ann), "--out", str(ann)], "is also an input"),
        (
            vocabulary,
            ["--annotations", str(ann), "--out", "v.json", "--threshold", "0"],
            "--threshold: must be",
        ),
        (vocabulary, ["--annotations", str(tmp / "none.json"), "--out", "v.json"], "none.json"),
        (
            vocabulary,
            ["--annotations", str(ann), "--out", str(afile / "v.json")],
            f"{afile} is a file",
        ),
        # images
        (images, ["--src", str(imgs), "--dst", "out", "--size", "0"], "--size: must be"),
        (images, ["--src", str(imgs), "--dst", "out", "--size", "-5"], "--size: must be"),
        (images, ["--src", str(imgs), "--dst", "out", "--workers", "0"], "--workers: must be"),
        (images, ["--src", str(imgs), "--dst", str(imgs)], "is also an input"),
        (images, ["--src", str(imgs), "--dst", str(imgs / "small")], "inside the input folder"),
        (images, ["--src", str(tmp / "none"), "--dst", "out"], "image folder not found"),
        (images, ["--src", str(imgs), "--dst", str(afile)], f"{afile}: is a file"),
        # coco_subset
        (
            coco_subset,
            ["--annotations", str(ann), "--images", str(imgs), "--n", "0", "--out", "s"],
            "--n: must be",
        ),
        (
            coco_subset,
            ["--annotations", str(ann), "--images", str(imgs), "--n", "2", "--out", str(afile)],
            f"{afile}: is a file",
        ),
        (
            coco_subset,
            [
                "--annotations",
                str(tmp / "none.json"),
                "--images",
                str(imgs),
                "--n",
                "2",
                "--out",
                "s",
            ],
            "none.json",
        ),
        # tiny_coco
        (tiny_coco, ["--train", "0", "--out", "t"], "--train: must be"),
        (tiny_coco, ["--val", "-1", "--out", "t"], "--val: must be"),
        (tiny_coco, ["--seed", "-1", "--out", "t"], "--seed: must be"),
        (tiny_coco, ["--out", str(afile)], str(afile)),
        (tiny_video, ["--train", "0", "--out", "t"], "--train: must be"),
        (tiny_video, ["--val", "-1", "--out", "t"], "--val: must be"),
        (tiny_video, ["--out", str(afile)], str(afile)),
        # karpathy
        (karpathy, [str(tmp / "dataset_coco.json"), "--out", "k"], "dataset_coco.json"),
        (karpathy, [str(ann), "--restval", "keep"], "invalid choice"),
        # download
        (download, ["--parts", "everything"], "invalid choice"),
        (download, ["--root", str(afile)], f"{afile}: is a file"),
        # course
        (course, ["--timeout", "0"], "--timeout: must be"),
        (course, ["--only", "99"], "no notebooks found"),
        (course, ["--out", str(afile)], f"{afile}: is a file"),
    ]


def test_every_command_says_what_is_wrong_in_one_line(
    small_coco, checkpoint, tmp_path, monkeypatch, capsys
):
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data"))
    # Nothing may start working: a check that let a bad value through fails here, not later.
    for module, name in ((loop, "_train"), (evaluate, "evaluate_checkpoint")):
        monkeypatch.setattr(module, name, lambda *a, **k: pytest.fail("work started"))
    old = _make_bad_checkpoint(tmp_path, checkpoint)
    cases = _table(small_coco, checkpoint, tmp_path)
    watched = {"dataset": small_coco, "checkpoint": checkpoint.parent, "repo": ROOT / "helpers"}
    before = {k: folder_snapshot(v) for k, v in watched.items()}
    failures = []
    for module, args, says in cases:
        args = [a.replace("{oldckpt}", str(old)) for a in args]
        with pytest.raises(SystemExit) as exit_:
            run_cli(module.main, args)
        out, err = capsys.readouterr()
        lines = err.strip().splitlines()
        if (
            exit_.value.code not in (1, 2)
            or len(lines) != 1
            or says not in err
            or "Traceback" in err
        ):
            failures.append(f"{module.__name__} {args}: exit {exit_.value.code}, stderr {err!r}")
    assert not failures, "\n".join(failures)
    assert {k: folder_snapshot(v) for k, v in watched.items()} == before
    # No output folder or file was left by the refused commands (the parsers never got that far).
    assert sorted(p.name for p in work.iterdir()) == []


def test_the_cli_line_is_one_line_from_a_real_process(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "helpers.caption",
            "x.png",
            "--checkpoint",
            "c.pt",
            "--batch-size",
            "-1",
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == (
        "error: python -m helpers.caption: argument --batch-size: must be a whole number of at "
        "least 1, got -1 (see --help)\n"
    )


def test_cuda_without_a_gpu_names_the_way_out():
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA GPU")
    with pytest.raises(
        CourseError, match=r"--device cuda: no CUDA GPU on this machine; use --device cpu"
    ):
        caption.Captioner("unused.pt", device="cuda")


# --- values that are legal but probably a mistake ----------------------------------------------


def test_a_threshold_that_keeps_no_word_warns(small_coco, capsys):
    vocab = build_vocabulary(small_coco / "annotations" / "captions_train2014.json", 10**9, False)
    assert len(vocab) == 4
    assert "warning:" in capsys.readouterr().err


def test_zero_epochs_on_a_fresh_run_warns(small_coco, small_config, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(loop, "_train", lambda *a, **k: None)
    train.train(small_config(small_coco, epochs=0), out=tmp_path / "run", progress=False)
    assert capsys.readouterr().err.startswith("warning: epochs is 0 on a fresh run")


def test_library_calls_get_the_same_one_line_errors(small_coco, small_config, tmp_path):
    with pytest.raises(
        CourseError, match="batch_size must be a whole number of at least 1, got -1"
    ):
        train.train(small_config(small_coco, batch_size=-1), out=tmp_path / "run")
    with pytest.raises(CourseError, match="batch size must be a whole number of at least 1"):
        caption.caption_files(None, [], batch_size=0)
    with pytest.raises(CourseError, match="is a file"):
        (tmp_path / "afile").write_text("x")
        train.train(small_config(small_coco), out=tmp_path / "afile")


def test_quiet_silences_every_progress_bar(small_coco, tmp_path, capsys):
    ann = small_coco / "annotations" / "captions_train2014.json"
    vocabulary.main(["--annotations", str(ann), "--out", str(tmp_path / "v.json"), "--quiet"])
    images.main(["--src", str(small_coco / "val2014"), "--dst", str(tmp_path / "r"), "--quiet"])
    tiny_coco.main(["--out", str(tmp_path / "t"), "--train", "3", "--val", "2", "--quiet"])
    assert capsys.readouterr().err == ""


def test_readme_describes_what_happens_when_something_goes_wrong():
    readme = (ROOT / "README.md").read_text()
    assert "## What happens when something goes wrong" in readme
    for promised in ("checked before", "skipped", "resume"):
        assert promised in readme.split("## What happens when something goes wrong")[1].lower()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders, so no refusal")
def test_a_read_only_output_folder_is_refused_before_training(small_coco, small_config, tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    try:
        with pytest.raises(CourseError, match=f"{locked}: cannot write there"):
            train.train(small_config(small_coco), out=locked)
    finally:
        locked.chmod(0o700)
