"""Foundation helpers: data folder, dataset lookup, atomic writes, environment report, course runner."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from helpers import environment
from helpers.data.images import load_rgb
from helpers.data.layouts import coco_split
from helpers.data.paths import data_dir
from helpers.data.registry import dataset_split
from helpers.errors import CourseError
from helpers.files import atomic_path, read_json, write_json


def test_data_dir_follows_environment_variable(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    assert data_dir() == tmp_path.resolve()
    monkeypatch.delenv("COURSE_DATA_DIR")
    assert data_dir().name == "data_dir"


def test_coco_split_finds_2014_layout(small_coco):
    split = coco_split(small_coco, "val")
    assert split.images == small_coco / "val2014"
    assert split.annotations.name == "captions_val2014.json"


def test_dataset_lookup_errors_are_one_line(tmp_path):
    with pytest.raises(CourseError, match="no annotations/captions_train2014.json"):
        coco_split(tmp_path, "train")
    with pytest.raises(CourseError, match="dataset folder not found"):
        dataset_split(tmp_path / "nope")


def test_dataset_split_builds_tiny_when_missing(monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    monkeypatch.setattr("helpers.data.tiny_coco.DEFAULTS", {"seed": 0, "n_train": 3, "n_val": 2})
    split = dataset_split("tiny", "val")
    assert split.annotations.is_file() and len(list(split.images.iterdir())) == 2


def test_atomic_write_keeps_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "vocab.json"
    write_json(target, {"a": 1})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("half")
        raise RuntimeError("interrupted")
    assert read_json(target) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["vocab.json"]


def test_read_json_errors_name_the_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(CourseError, match="bad.json: not valid JSON"):
        read_json(bad)
    with pytest.raises(CourseError, match="missing.json: .* not found"):
        read_json(tmp_path / "missing.json")


def test_load_rgb_bad_files(tmp_path):
    (tmp_path / ".DS_Store").write_bytes(b"\x00\x00\x00\x01Bud1")
    with pytest.raises(CourseError, match=r"\.DS_Store: cannot be read as an image"):
        load_rgb(tmp_path / ".DS_Store")
    with pytest.raises(CourseError, match="image file not found"):
        load_rgb(tmp_path / "gone.jpg")


def test_environment_report_names_what_missing_java_disables(monkeypatch):
    monkeypatch.setattr(environment.shutil, "which", lambda _: None)
    rows = dict(environment.environment_report())
    assert "METEOR" in rows["java"] and "unofficial" in rows["java"]
    assert rows["torch"][0].isdigit()


def _notebook(folder: Path, name: str, code: str) -> None:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    nb.cells = [
        nbformat.v4.new_code_cell("X = 1", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(code),
    ]
    nbformat.write(nb, folder / name)


def test_course_runner_reports_failing_notebook_and_cell(tmp_path):
    nbs, out = tmp_path / "nbs", tmp_path / "out"
    nbs.mkdir()
    _notebook(nbs, "00_ok.ipynb", "assert X == 2")
    _notebook(nbs, "01_bad.ipynb", "1 / 0")
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "helpers.course",
            "--folder",
            str(nbs),
            "--out",
            str(out),
            "--param",
            "X=2",
        ],
        capture_output=True,
        text=True,
    )
    assert run.returncode != 0
    assert "[1/2] 00_ok.ipynb ... ok" in run.stdout
    assert "01_bad.ipynb: cell 2 failed with ZeroDivisionError" in run.stderr
    assert "Traceback" not in run.stderr
    # only our one line: the kernels' own stderr (start-up warnings) goes to a log per notebook
    assert len(run.stderr.strip().splitlines()) == 1
    assert (out / "00_ok.kernel.log").is_file()
    executed = nbformat.read(out / "00_ok.ipynb", as_version=4)
    assert json.dumps(executed.cells[1].source) == '"X = 2"'  # the injected override


def test_course_runner_says_in_one_line_which_notebook_ran_too_long(tmp_path):
    nbs, out = tmp_path / "nbs", tmp_path / "out"
    nbs.mkdir()
    _notebook(nbs, "00_slow.ipynb", "import time\ntime.sleep(30)")
    command = [sys.executable, "-m", "helpers.course", "--folder", str(nbs), "--out", str(out)]
    run = subprocess.run([*command, "--timeout", "2"], capture_output=True, text=True)
    assert run.returncode == 2
    assert run.stderr.strip().splitlines() == [
        f"error: 00_slow.ipynb: cell 1 ran longer than 2 s (a busy machine? raise --timeout; "
        f"executed copy up to it: {out / '00_slow.ipynb'}, kernel log: {out / '00_slow.kernel.log'})"
    ]
    assert (out / "00_slow.ipynb").is_file()


def test_course_runner_refuses_a_parameter_no_notebook_has(tmp_path):
    nbs = tmp_path / "nbs"
    nbs.mkdir()
    _notebook(nbs, "00_ok.ipynb", "assert X == 1")
    command = [sys.executable, "-m", "helpers.course", "--folder", str(nbs)]
    env = {**os.environ, "COURSE_DATA_DIR": str(tmp_path / "data_dir")}
    for param, says in (
        ("Y=2", "--param Y: no parameters cell of these notebooks sets it (they set X)"),
        ("XX=2", "--param XX: no parameters cell of these notebooks sets it (did you mean X?)"),
        ("X=two", "--param X=two: not a Python literal"),
    ):
        run = subprocess.run([*command, "--param", param], env=env, capture_output=True, text=True)
        assert run.returncode == 2 and run.stderr.startswith(f"error: {says}")
        assert len(run.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "data_dir").exists()  # refused before anything was written


def test_image_files_maps_ids_to_paths(small_coco):
    from helpers.data.annotations import image_files

    files = image_files(
        small_coco / "annotations" / "captions_val2014.json", small_coco / "val2014"
    )
    assert len(files) == 20 and all(p.is_file() for p in files.values())
    assert files[1_000_001].name == "COCO_val2014_000001000001.jpg"


def test_show_source_is_the_code_that_runs():
    from helpers.models.cnn_lstm import LSTMModel
    from helpers.notebook import show_source

    shown = show_source(LSTMModel.sample)
    assert shown.where == "helpers.models.LSTMModel.sample"
    assert shown.text.startswith("@torch.no_grad()\ndef sample(")
    assert "argmax" in shown.text and "```python" in shown._repr_markdown_()
    assert show_source(LSTMModel.sample, lines=(2, 2)).text.startswith("def sample(")


def test_clean_outputs_keeps_the_last_state_of_a_progress_bar():
    import nbformat

    from helpers.course import clean_outputs

    cell = nbformat.v4.new_code_cell("train()")
    cell.outputs = [
        nbformat.v4.new_output("stream", name="stderr", text="epoch 1:   0%|  | 0/9\r"),
        nbformat.v4.new_output("stream", name="stderr", text="epoch 1:  50%|# | 4/9\r"),
        nbformat.v4.new_output("stream", name="stderr", text="epoch 1: 100%|##| 9/9\n"),
        nbformat.v4.new_output("stream", name="stdout", text="val loss 0.5\n"),
    ]
    nb = nbformat.v4.new_notebook(cells=[cell])
    clean_outputs(nb)
    assert [o["text"] for o in nb.cells[0].outputs] == ["epoch 1: 100%|##| 9/9\n", "val loss 0.5\n"]


def test_stored_notebooks_are_clean_and_small():
    import nbformat

    from helpers.course import notebook_paths

    for path in notebook_paths():
        assert path.stat().st_size < 1_000_000, f"{path.name} is over 1 MB"
        nb = nbformat.read(path, as_version=4)
        assert any("parameters" in c.metadata.get("tags", []) for c in nb.cells), path.name
        for i, cell in enumerate(nb.cells):
            for out in cell.get("outputs", []):
                text = out.get("text", "")
                assert "\r" not in text, f"{path.name} cell {i}: progress-bar fragments stored"


def test_a_clip_shown_as_a_gif_keeps_every_frame_and_a_colour_only_its_last_frame_has():
    import io

    import numpy as np
    from PIL import Image

    from helpers.notebook import as_gif

    rng = np.random.default_rng(0)
    frames = (rng.random((8, 32, 32, 3)) * 60).astype(np.uint8)  # dark noise, like a background
    frames[-1, 8:24, 8:24] = (250, 20, 20)  # a red square in the last frame alone
    gif = Image.open(io.BytesIO(as_gif(frames, scale=2, colors=16).data))
    assert (gif.n_frames, gif.size) == (8, (64, 64))
    gif.seek(7)
    assert np.abs(np.asarray(gif.convert("RGB"))[32, 32].astype(int) - (250, 20, 20)).max() < 40
