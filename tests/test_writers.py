"""One writer per folder, and nothing overwritten that the user did not name: training runs and
the split tools."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import folder_snapshot

from helpers.data.annotations import load_captions
from helpers.data.splits import split_coco
from helpers.errors import CourseError
from helpers.files import folder_lock
from helpers.train.loop import train

HOLD = """
import sys, time
from helpers.files import folder_lock
with folder_lock(sys.argv[1], "a training run"):
    print("holding", flush=True)
    time.sleep(120)
"""


def test_a_second_run_into_the_same_folder_is_refused_naming_the_first(
    small_coco, small_config, tmp_path, monkeypatch
):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data_dir"))
    out = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        with pytest.raises(CourseError) as err:
            train(small_config(small_coco, epochs=1), out, progress=False)
        message = str(err.value)
        assert f"a training run (process {holder.pid}, since" in message and "\n" not in message
        assert not (out / "last.pt").exists()
        # A run killed while writing leaves its lock file behind; the next run takes it over.
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        train(small_config(small_coco, epochs=1), out, progress=False)
        assert (out / "last.pt").is_file()
    finally:
        holder.kill()
        holder.wait(timeout=30)


def test_the_lock_is_free_again_after_a_run_and_after_an_error(tmp_path):
    with folder_lock(tmp_path / "out", "a test"):
        pass
    with pytest.raises(ValueError), folder_lock(tmp_path / "out", "a test"):
        raise ValueError
    with folder_lock(tmp_path / "out", "a test"):
        with pytest.raises(CourseError, match="a test .* is writing here"):
            with folder_lock(tmp_path / "out", "another"):
                pass


@pytest.fixture
def root(small_coco, tmp_path) -> Path:
    """A dataset folder of the tiny COCO's val images and captions, for the split tools."""
    folder = tmp_path / "mine"
    (folder / "annotations").mkdir(parents=True)
    (folder / "images").symlink_to(small_coco / "val2014")
    source = small_coco / "annotations" / "captions_val2014.json"
    (folder / "annotations" / "captions.json").write_bytes(source.read_bytes())
    return folder


def test_a_split_into_the_folder_holding_its_input_is_refused_before_writing(root):
    before = folder_snapshot(root)
    with pytest.raises(CourseError, match="holds the input"):
        split_coco(root / "annotations" / "captions.json", root / "images", root, 4, 4)
    assert folder_snapshot(root) == before


def test_a_split_into_a_folder_of_other_files_is_refused(root, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(CourseError, match="holds files that a split did not make"):
        split_coco(root / "annotations" / "captions.json", root / "images", other, 4, 4)
    assert [p.name for p in other.iterdir()] == ["notes.txt"]


def test_a_split_run_again_replaces_the_earlier_one_whole(root, tmp_path):
    out = tmp_path / "split"
    captions = root / "annotations" / "captions.json"
    split_coco(captions, root / "images", out, 4, 4, seed=0, year="2014")
    # Another seed, and fewer images (some captions now name files that are gone).
    fewer = tmp_path / "fewer"
    fewer.mkdir()
    for path in sorted((root / "images").iterdir())[:12]:
        (fewer / path.name).symlink_to(path)
    counts = split_coco(captions, fewer, out, 2, 2, seed=1, year="2014")
    for split in ("train", "val", "test"):
        listed = {
            img["file_name"]
            for img in load_captions(out / "annotations" / f"captions_{split}2014.json")["images"]
        }
        linked = {p.name for p in (out / f"{split}2014").iterdir()}
        assert linked == listed and len(linked) == counts[split]
        assert all(
            (out / f"{split}2014" / n).resolve().parent == root.joinpath("images").resolve()
            for n in linked
        )
    assert json.loads((out / "split.json").read_text())["seed"] == 1
    assert not list(tmp_path.glob(".split.*.tmp"))  # nothing left beside it


def test_an_interrupted_split_leaves_the_earlier_one_and_the_rerun_finishes(root, tmp_path):
    out = tmp_path / "split"
    captions = root / "annotations" / "captions.json"
    split_coco(captions, root / "images", out, 4, 4, seed=0)
    before = folder_snapshot(out)
    code = (
        "import os, signal, sys\n"
        "import helpers.files as files\n"
        "real = files.link_file\n"
        "calls = []\n"
        "def link(src, dst):\n"
        "    calls.append(dst)\n"
        "    if len(calls) == 5:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    real(src, dst)\n"
        "import helpers.data.splits as splits\n"
        "splits.link_file = link\n"
        f"splits.split_coco({str(captions)!r}, {str(root / 'images')!r}, {str(out)!r}, 3, 3, 7)\n"
    )
    killed = subprocess.run([sys.executable, "-c", code], timeout=120)
    assert killed.returncode == -signal.SIGKILL
    assert folder_snapshot(out) == before  # the earlier split, untouched
    assert list(tmp_path.glob(".split.*.tmp"))  # the killed run's half-built folder
    counts = split_coco(captions, root / "images", out, 3, 3, seed=7)
    assert (counts["val"], counts["test"]) == (3, 3)
    assert not list(tmp_path.glob(".split.*.tmp"))
    assert json.loads((out / "split.json").read_text())["seed"] == 7


def test_a_lock_file_names_no_one_once_its_run_ended(tmp_path):
    with folder_lock(tmp_path / "out", "a test"):
        assert "a test (process" in (tmp_path / ".out.lock").read_text()
    assert (tmp_path / ".out.lock").read_text() == ""
