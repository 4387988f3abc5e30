"""The benchmarks' results files, and the notebooks that quote them: every quoted number matches
its file."""

import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from helpers.errors import CourseError
from helpers.evaluate.measured import (
    RESULTS,
    measured_means,
    measured_range,
    measured_rows,
    measured_table,
    measured_values,
    record_result,
    result_value,
)

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
QUOTES = (
    "measured_table(",
    "measured_range(",
    "measured_rows(",
    "measured_values(",
    "measured_means(",
)


def test_rows_are_written_one_by_one_and_a_rerun_replaces_its_row(tmp_path):
    record_result("demo", {"seed": 0, "model": {"all": 0.5}}, folder=tmp_path)
    record_result("demo", {"seed": 1, "model": {"all": 0.75}}, folder=tmp_path)
    record_result("demo", {"seed": 0, "model": {"all": 0.625}}, folder=tmp_path)
    rows = measured_rows("demo", tmp_path)
    assert [(r["seed"], r["model"]["all"]) for r in rows] == [(1, 0.75), (0, 0.625)]
    assert measured_range("demo", "model/all", folder=tmp_path) == "62.5%-75.0%"
    table = measured_table("demo", {"all right": "model/all"}, folder=tmp_path).splitlines()
    assert table[1].split() == ["seed", "1", "75.0%"] and table[-1].split() == [
        "range",
        "62.5%-75.0%",
    ]
    assert not list(tmp_path.glob(".*tmp"))  # written through a temporary file, then renamed


def test_rows_can_be_chosen_by_their_settings(tmp_path):
    for variant, seed, x in (("default", 0, 0.9), ("default", 1, 0.8), ("small lr", 0, 0.5)):
        record_result(
            "v", {"variant": variant, "seed": seed, "x": x}, ("variant", "seed"), tmp_path
        )
    assert measured_range("v", "x", where={"variant": "default"}, folder=tmp_path) == "80.0%-90.0%"
    assert measured_range("v", "x", where={"variant": "small lr"}, folder=tmp_path) == "50.0%"
    with pytest.raises(CourseError, match="no rows with {'variant': 'none'}"):
        measured_table("v", {"x": "x"}, where={"variant": "none"}, folder=tmp_path)


def test_one_value_is_shown_once(tmp_path):
    for row in ({"seed": 0, "x": 0.1234}, {"seed": 1, "x": 0.1231}):
        record_result("same", row, folder=tmp_path)
    assert measured_range("same", "x", "{:.3f}", folder=tmp_path) == "0.123"


@pytest.mark.parametrize(
    "row, message",
    [
        ({"model": 1}, "the row has no seed"),
        ({"seed": 0, "x": float("nan")}, "not plain JSON"),
        ({"seed": 0, "x": object()}, "not plain JSON"),
    ],
)
def test_a_bad_row_is_refused_in_one_line(tmp_path, row, message):
    with pytest.raises(CourseError, match=message):
        record_result("demo", row, folder=tmp_path)
    assert not (tmp_path / "demo.jsonl").exists()


def test_bad_files_and_paths_are_named(tmp_path):
    with pytest.raises(CourseError, match="no results yet .*benchmarks/missing.py"):
        measured_rows("missing", tmp_path)
    (tmp_path / "broken.jsonl").write_text('{"seed": 0}\n{"seed": \n')
    with pytest.raises(CourseError, match="broken.jsonl:2: not a JSON row"):
        measured_rows("broken", tmp_path)
    with pytest.raises(CourseError, match="'model/nothing': no 'nothing'"):
        result_value({"model": {"all": 1}}, "model/nothing")
    assert result_value({"loss": [0.5, 0.25]}, "loss/1") == 0.25  # per-epoch lists, by index
    with pytest.raises(CourseError, match="'loss/2': no '2'"):
        result_value({"loss": [0.5, 0.25]}, "loss/2")
    with pytest.raises(CourseError, match="letters, digits"):
        measured_rows("../etc/passwd", tmp_path)


def test_the_committed_results_files_are_rows_of_default_runs():
    files = sorted(RESULTS.glob("*.jsonl"))
    assert files, f"{RESULTS}: no results files"
    for path in files:
        rows = measured_rows(path.stem)
        assert rows, f"{path}: empty"
        # a run is its variant (an ablation's row, the course's notebook and mode) and seed; the
        # speed benchmarks' rows are one per variant, no seed
        names = ("variant", "row", "notebook")
        runs = [
            (next((r[k] for k in names if k in r), None), r.get("mode"), r.get("seed"))
            for r in rows
        ]
        assert all(run != (None, None, None) for run in runs), f"{path}: a row names no run"
        assert len(runs) == len(set(runs)), f"{path}: one run twice"
        for row in rows:
            assert row["benchmark"] == path.stem and row["commit"] and row["date"]


def _quoting_cells():
    for path in sorted(NOTEBOOKS.glob("[0-9][0-9]_*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for k, cell in enumerate(nb.cells):
            if cell.cell_type == "code" and any(q in cell.source for q in QUOTES):
                yield pytest.param(cell, id=f"{path.stem}-cell{k}")


@pytest.mark.parametrize("cell", list(_quoting_cells()))
def test_every_quoted_number_matches_its_results_file(cell, monkeypatch):
    """A cell that quotes a results file prints, run again now, exactly what the notebook stores."""
    stored = "".join(
        o.get("text", "") for o in cell.outputs if o.output_type == "stream" and o.name == "stdout"
    )
    printed = io.StringIO()
    monkeypatch.chdir(NOTEBOOKS)
    with contextlib.redirect_stdout(printed):
        exec(compile(cell.source, "<cell>", "exec"), {})  # a quoting cell imports what it needs
    assert printed.getvalue() == stored, "re-store the notebook: its results file has changed"


def test_a_changed_results_file_is_noticed(tmp_path):
    record_result("demo", {"seed": 0, "x": 0.5}, folder=tmp_path)
    before = measured_table("demo", {"x": "x"}, folder=tmp_path)
    record_result("demo", {"seed": 0, "x": 0.25}, folder=tmp_path)
    assert measured_table("demo", {"x": "x"}, folder=tmp_path) != before
    assert json.loads((tmp_path / "demo.jsonl").read_text())["x"] == 0.25


def test_the_readme_quotes_the_results_files():
    """The README's tables of measured results are the ones the results files give now."""
    root = Path(__file__).resolve().parents[1]
    assert (root / "README.md").read_text().count("<!-- measured: ") >= 3
    done = subprocess.run(
        [sys.executable, "benchmarks/readme_tables.py", "--check"],
        cwd=root,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr


def test_rows_of_two_variants_for_one_seed_must_be_chosen(tmp_path):
    record_result(
        "demo", {"variant": "default", "seed": 0, "x": 0.5}, ("variant", "seed"), tmp_path
    )
    record_result("demo", {"variant": "other", "seed": 0, "x": 0.25}, ("variant", "seed"), tmp_path)
    with pytest.raises(CourseError, match="several rows with seed 0; choose one with where="):
        measured_table("demo", {"x": "x"}, folder=tmp_path)
    table = measured_table("demo", {"x": "x"}, where={"variant": "other"}, folder=tmp_path)
    assert "25.0%" in table and "50.0%" not in table


def test_rows_of_different_settings_are_named_by_them_without_a_range(tmp_path):
    for variant, rate in (("default", 124.0), ("size 224", 141.0)):
        record_result("speed", {"variant": variant, "rate": rate}, ("variant",), tmp_path)
    table = measured_table(
        "speed", [("img/s", "rate", "{:.0f}")], by="variant", folder=tmp_path, spread=False
    ).splitlines()
    assert [line.split() for line in table] == [
        ["img/s"],
        ["variant", "default", "124"],
        ["variant", "size", "224", "141"],
    ]


def test_values_for_a_figure_are_grouped_by_row_and_skip_what_a_row_lacks(tmp_path):
    for row, seed, hit in (("attention", 0, 0.9), ("chapter", 0, None), ("attention", 1, 0.8)):
        line = {"row": row, "seed": seed, "objects": {"two": seed / 10}}
        record_result(
            "ablate", line | ({"pointing": {"hit": hit}} if hit else {}), ("row", "seed"), tmp_path
        )
    values = measured_values(
        "ablate", {"two": "objects/two", "pointing": "pointing/hit"}, folder=tmp_path
    )
    assert values == {
        "two": {"attention": [0.0, 0.1], "chapter": [0.0]},
        "pointing": {"attention": [0.9, 0.8], "chapter": []},
    }
    order = measured_values("ablate", {"two": "objects/two"}, order=["chapter"], folder=tmp_path)
    assert order == {"two": {"chapter": [0.0]}}


def test_an_ablation_table_gives_each_row_its_mean_and_range_over_seeds(tmp_path):
    for row, seed, hit in (("attention", 0, 0.9), ("chapter", 0, None), ("attention", 1, 0.8)):
        line = {"row": row, "seed": seed, "objects": {"two": 0.5 + seed / 10}}
        record_result(
            "ablate", line | ({"pointing": {"hit": hit}} if hit else {}), ("row", "seed"), tmp_path
        )
    table = measured_means(
        "ablate", {"two shapes": "objects/two", "pointing": "pointing/hit"}, folder=tmp_path
    )
    head, attention, chapter = table.splitlines()
    assert head.split() == ["two", "shapes", "pointing", "seeds"]
    assert attention.split() == [
        "attention",
        "55.0%",
        "(50.0%-60.0%)",
        "85.0%",
        "(80.0%-90.0%)",
        "2",
    ]
    assert chapter.split() == ["chapter", "50.0%", "-", "1"]
