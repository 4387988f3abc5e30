"""What the course's benchmarks measured: one results file per benchmark in benchmarks/results/,
one JSON row per run, written as each run ends; the notebooks print the numbers they quote from
these files, so a quoted number always matches its file."""

from __future__ import annotations

import datetime
import json
import os
import statistics
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from helpers.errors import CourseError
from helpers.files import atomic_path

RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


def results_path(name: str, folder: str | os.PathLike | None = None) -> Path:
    """The results file of benchmark `name`: benchmarks/results/<name>.jsonl."""
    if not name or not name.replace("_", "").isalnum():
        raise CourseError(f"{name!r}: a benchmark name is letters, digits and underscores")
    return Path(folder or RESULTS) / f"{name}.jsonl"


def about_run() -> dict:
    """What a results row should say about where it was measured: commit, date, CPU threads."""
    import torch  # only benchmarks call this; the notebooks reading results need no torch

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=RESULTS.parent,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    today = datetime.date.today().isoformat()
    return {"commit": commit, "date": today, "cpu_threads": torch.get_num_threads()}


def measured_rows(name: str, folder: str | os.PathLike | None = None) -> list[dict]:
    """Every row of a benchmark's results file, in the order written."""
    path = results_path(name, folder)
    if not path.is_file():
        raise CourseError(f"{path}: no results yet (run: python benchmarks/{name}.py)")
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise CourseError(f"{path}:{n}: not a JSON row ({err.msg})") from None
        if not isinstance(row, dict):
            raise CourseError(f"{path}:{n}: a row must be a JSON object, not {type(row).__name__}")
        rows.append(row)
    return rows


def record_result(
    name: str, row: Mapping, key: Sequence[str] = ("seed",), folder: str | os.PathLike | None = None
) -> Path:
    """Add one run's row to a benchmark's results file, atomically; a row with the same values
    of `key` (the same seed, say) is replaced, so rerunning a seed never leaves two answers."""
    missing = [k for k in key if k not in row]
    if missing:
        raise CourseError(f"{name}: the row has no {', '.join(missing)} (its key)")
    try:
        line = json.dumps(dict(row), ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as err:
        raise CourseError(f"{name}: the row is not plain JSON ({err})") from None
    path = results_path(name, folder)
    rows = measured_rows(name, folder) if path.is_file() else []
    rows = [r for r in rows if any(r.get(k) != row[k] for k in key)]
    lines = [json.dumps(r, ensure_ascii=False) for r in rows] + [line]
    with atomic_path(path) as tmp:
        tmp.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def result_value(row: Mapping, path: str) -> object:
    """One value of a nested row, by its path of keys (or list indices) joined with "/"."""
    value: object = row
    for part in path.split("/"):
        if isinstance(value, list) and part.isdigit() and int(part) < len(value):
            value = value[int(part)]  # a per-epoch list: "train_errors/0" is the first epoch's
        elif isinstance(value, Mapping) and part in value:
            value = value[part]
        else:
            raise CourseError(f"{path!r}: no {part!r} in the row")
    return value


def _format(value: object, fmt: str) -> str:
    if value is None:  # a rate with nothing to count
        return "-"
    return fmt.format(value) if isinstance(value, int | float) else str(value)


def _rows(name: str, where: Mapping | None, folder: str | os.PathLike | None) -> list[dict]:
    """The rows of a results file whose values match `where` (all rows without it)."""
    rows = [
        r
        for r in measured_rows(name, folder)
        if all(r.get(k) == v for k, v in (where or {}).items())
    ]
    if not rows:
        raise CourseError(f"{results_path(name, folder)}: no rows with {dict(where or {})}")
    return rows


def measured_values(
    name: str,
    paths: Mapping[str, str],
    by: str = "row",
    order: Sequence[str] | None = None,
    folder: str | os.PathLike | None = None,
) -> dict[str, dict[str, list[float]]]:
    """Values of a results file grouped for a figure: label -> value of `by` (a row's name) -> one
    value per seed, for each label's path; `by` values in `order` (default: as first written).
    A row without a path (the pointing game of a model without attention) gives none."""
    rows = measured_rows(name, folder)
    names = list(order or dict.fromkeys(r[by] for r in rows))

    def value(row: Mapping, path: str) -> object:
        try:
            return result_value(row, path)
        except CourseError:
            return None

    return {
        label: {
            n: [v for r in rows if r.get(by) == n and (v := value(r, path)) is not None]
            for n in names
        }
        for label, path in paths.items()
    }


def measured_means(
    name: str,
    columns: Mapping[str, str] | Iterable[tuple[str, str, str]],
    by: str = "row",
    order: Sequence[str] | None = None,
    folder: str | os.PathLike | None = None,
) -> str:
    """An ablation's results, one line per value of `by` (a row of the ablation, in `order` or as
    first written): each column's mean over that row's seeds with its lowest and highest seed,
    and how many seeds. `columns` as measured_table's; "-" where a row has no such number."""
    specs = [(h, p, "{:.1%}") for h, p in columns.items()] if isinstance(columns, Mapping) else []
    specs = specs or [tuple(c) for c in columns]
    values = measured_values(name, {h: p for h, p, _ in specs}, by, order, folder)
    names = list(next(iter(values.values())))
    cells = []
    for n in names:
        line = []
        for heading, _, fmt in specs:
            seeds = values[heading][n]
            mean = statistics.mean(seeds) if seeds else None
            low, high = (_format(min(seeds), fmt), _format(max(seeds), fmt)) if seeds else ("", "")
            line.append(
                f"{_format(mean, fmt)} ({low}-{high})" if len(seeds) > 1 else _format(mean, fmt)
            )
        counts = {len(values[h][n]) for h, _, _ in specs} - {0}
        cells.append([*line, "/".join(map(str, sorted(counts))) or "0"])
    headings = [h for h, _, _ in specs] + ["seeds"]
    width = max(len(n) for n in names)
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(headings)]
    lines = [" " * width + "".join(f"  {h:>{w}s}" for h, w in zip(headings, widths, strict=True))]
    for label, row in zip(names, cells, strict=True):
        lines.append(
            f"{label:{width}s}" + "".join(f"  {c:>{w}s}" for c, w in zip(row, widths, strict=True))
        )
    return "\n".join(lines)


def measured_range(
    name: str,
    path: str,
    fmt: str = "{:.1%}",
    where: Mapping | None = None,
    folder: str | os.PathLike | None = None,
) -> str:
    """One number over the rows of a results file (those matching `where`), as "low-high"; one
    value when they agree."""
    values = [v for r in _rows(name, where, folder) if (v := result_value(r, path)) is not None]
    if not values:
        return "-"
    low, high = _format(min(values), fmt), _format(max(values), fmt)
    return low if low == high else f"{low}-{high}"


def measured_table(
    name: str,
    columns: Mapping[str, str] | Iterable[tuple[str, str, str]],
    by: str = "seed",
    where: Mapping | None = None,
    folder: str | os.PathLike | None = None,
    spread: bool = True,
) -> str:
    """Chosen numbers of a results file, one line per row (named by `by`; only rows matching
    `where`) and their range.

    `columns` maps a heading to a path in the row ("chapter/two shapes/all_right") shown as a
    percentage, or is (heading, path, format) triples, e.g. ("BLEU-4", "chapter/Bleu_4", "{:.3f}").
    spread=False leaves the range line out: rows of different settings (one run per size, say)
    are no sample of one quantity, so their range would say nothing.
    """
    specs = [(h, p, "{:.1%}") for h, p in columns.items()] if isinstance(columns, Mapping) else []
    specs = specs or [tuple(c) for c in columns]
    rows = _rows(name, where, folder)
    labels = [r.get(by) for r in rows]
    if len(set(map(repr, labels))) < len(labels):
        twice = next(x for x in labels if labels.count(x) > 1)
        raise CourseError(
            f"{results_path(name, folder)}: several rows with {by} {twice}; choose one with where="
        )
    cells = [[_format(result_value(r, p), f) for _, p, f in specs] for r in rows]
    names = [f"{by} {r.get(by, '?')}" for r in rows]
    if spread:
        cells.append([measured_range(name, p, f, where, folder) for _, p, f in specs])
        names.append("range")
    width = max(len(n) for n in names)
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, (h, _, _) in enumerate(specs)]
    lines = [
        " " * width + "".join(f"  {h:>{w}s}" for (h, _, _), w in zip(specs, widths, strict=True))
    ]
    for label, row in zip(names, cells, strict=True):
        lines.append(
            f"{label:{width}s}" + "".join(f"  {c:>{w}s}" for c, w in zip(row, widths, strict=True))
        )
    return "\n".join(lines)
