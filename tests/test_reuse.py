"""A result is reused only when its inputs are the same: checkpoints, resume, resized copies and
the records of what each was made from."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from helpers.data.inputs import changed_inputs, run_inputs
from helpers.data.resize import ensure_resized
from helpers.errors import CourseError
from helpers.files import file_digest
from helpers.models.checkpoint import read_checkpoint
from helpers.train.loop import ensure_checkpoint, train


@pytest.fixture
def own_coco(small_coco, tmp_path, monkeypatch) -> Path:
    """A copy of the small tiny COCO that a test may edit, and a data_dir of its own."""
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data_dir"))
    return Path(shutil.copytree(small_coco, tmp_path / "coco", symlinks=False))


def edit_captions(root: Path, split: str, change) -> None:
    """Rewrite a split's captions file with `change(text) -> text` applied to every caption."""
    path = root / "annotations" / f"captions_{split}2014.json"
    data = json.loads(path.read_text())
    for ann in data["annotations"]:
        ann["caption"] = change(ann["caption"])
    path.write_text(json.dumps(data))


def swap_words(a: str, b: str):
    """A caption change that keeps every word, so the vocabulary keeps its size."""
    return lambda text: text.replace(a, "\0").replace(b, a).replace("\0", b)


def test_a_run_records_what_it_was_trained_on(own_coco, small_config, tmp_path):
    cfg = small_config(own_coco, epochs=1)
    train(cfg, tmp_path / "run", progress=False)
    ckpt = read_checkpoint(tmp_path / "run" / "last.pt")
    assert ckpt["inputs"] == run_inputs(cfg.data)
    assert ckpt["inputs"]["train"]["captions_sha256"] == file_digest(
        own_coco / "annotations" / "captions_train2014.json"
    )


def test_resume_refuses_captions_changed_with_the_same_vocabulary_size(
    own_coco, small_config, tmp_path
):
    out = tmp_path / "run"
    train(small_config(own_coco, epochs=1), out, progress=False)
    edit_captions(own_coco, "train", swap_words("circle", "square"))
    with pytest.raises(CourseError, match="the train captions changed since epoch 1.*--fresh"):
        train(small_config(own_coco, epochs=2), out, progress=False)
    assert read_checkpoint(out / "last.pt")["epoch"] == 1  # nothing was overwritten


def test_resume_refuses_a_grown_vocabulary_in_one_line(own_coco, small_config, tmp_path):
    out = tmp_path / "run"
    train(small_config(own_coco, epochs=1), out, progress=False)
    edit_captions(own_coco, "train", lambda text: text + " zebra zebra zebra zebra")
    with pytest.raises(CourseError) as err:
        train(small_config(own_coco, epochs=2), out, progress=False)
    assert "\n" not in str(err.value) and "changed since epoch 1" in str(err.value)


def test_resume_refuses_a_changed_vocabulary_even_without_records(own_coco, small_config, tmp_path):
    out = tmp_path / "run"
    cfg = small_config(own_coco, epochs=1)
    train(cfg, out, progress=False)
    # A checkpoint whose record matches today's data but whose words do not (a vocabulary file
    # edited by hand, or a checkpoint from elsewhere): its word ids cannot be continued.
    ckpt = read_checkpoint(out / "last.pt")
    ckpt["vocabulary"] = [*ckpt["vocabulary"][:4], *reversed(ckpt["vocabulary"][4:])]
    import torch

    torch.save(ckpt, out / "last.pt")
    with pytest.raises(CourseError, match="the vocabulary changed since epoch 1"):
        train(small_config(own_coco, epochs=2), out, progress=False)


def test_ensure_checkpoint_trains_again_when_the_captions_changed(
    own_coco, small_config, tmp_path, capsys
):
    cfg = small_config(own_coco, epochs=1)
    out = tmp_path / "run"
    first = ensure_checkpoint(cfg, out, progress=False)
    assert ensure_checkpoint(cfg, out, progress=False) == first  # unchanged: reused as it is
    capsys.readouterr()
    edit_captions(own_coco, "train", lambda text: text.replace("circle", "disc"))
    best = ensure_checkpoint(cfg, out, progress=False)
    assert (
        "the train captions changed since it was trained; training again" in capsys.readouterr().out
    )
    assert "disc" in read_checkpoint(best)["vocabulary"]
    assert read_checkpoint(best)["inputs"] == run_inputs(cfg.data)


def test_ensure_checkpoint_trains_again_when_its_weights_changed(own_coco, small_config, tmp_path):
    chapter = ensure_checkpoint(small_config(own_coco, epochs=1), tmp_path / "chapter", False)
    cfg = small_config(own_coco, epochs=1, pretrain_epochs=0, weights=str(chapter))
    ensure_checkpoint(cfg, tmp_path / "on_top", progress=False)
    before = read_checkpoint(tmp_path / "on_top" / "last.pt")["inputs"]["weights_sha256"]
    train(
        small_config(own_coco, epochs=1, seed=1), tmp_path / "chapter", resume=False, progress=False
    )
    ensure_checkpoint(cfg, tmp_path / "on_top", progress=False)
    after = read_checkpoint(tmp_path / "on_top" / "last.pt")["inputs"]["weights_sha256"]
    assert before != after == file_digest(chapter)


def test_a_deleted_training_image_stops_training_by_name(own_coco, small_config, tmp_path):
    cfg = small_config(own_coco, epochs=1)
    train(cfg, tmp_path / "run", progress=False)  # the resized copies exist now
    gone = sorted((own_coco / "train2014").iterdir())[5]
    gone.unlink()
    for out in (tmp_path / "run", tmp_path / "fresh"):
        with pytest.raises(CourseError, match=f"{gone.name}: image not found"):
            train(small_config(own_coco, epochs=2), out, progress=False)


def test_a_resized_copy_whose_source_went_is_removed(own_coco, tmp_path):
    resized = ensure_resized(own_coco, "val", 40, progress=False)
    extra = own_coco / "val2014" / "unused.png"
    shutil.copy(next((own_coco / "val2014").iterdir()), extra)  # an image no caption uses
    ensure_resized(own_coco, "val", 40, progress=False)
    assert (resized / "unused.png").is_file()
    extra.unlink()
    ensure_resized(own_coco, "val", 40, progress=False)
    assert not (resized / "unused.png").exists()


def test_changed_inputs_names_each_change():
    old = {
        "train": {"captions_sha256": "a", "images": "b"},
        "val": {"captions_sha256": "c", "images": "d"},
    }
    new = {
        "train": {"captions_sha256": "a", "images": "B"},
        "val": {"captions_sha256": "C", "images": "d"},
        "weights_sha256": "w",
    }
    assert changed_inputs(old, old) == ""
    assert (
        changed_inputs(old, new) == "the train images, the val captions, the weights it starts from"
    )
    assert "predates" in changed_inputs(None, new)
