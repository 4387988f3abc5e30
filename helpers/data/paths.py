"""Where the course keeps its data, caches and checkpoints: data_dir, and paths shown relative to
it."""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "COURSE_DATA_DIR"


def in_data_dir(path: str | os.PathLike) -> str:
    """A path for progress messages: relative to data_dir when inside it, so outputs read the same
    on every machine (error messages keep the full path)."""
    path = Path(path)
    try:
        return str(path.resolve().relative_to(data_dir()))
    except ValueError:
        return str(path)


def data_dir() -> Path:
    """The folder for data, caches and checkpoints: $COURSE_DATA_DIR, else the repo's data_dir/."""
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser().resolve()
    repo = Path(__file__).resolve().parents[2]  # helpers/data/paths.py -> the repository
    if (repo / "pyproject.toml").is_file():
        return repo / "data_dir"
    return Path.cwd() / "data_dir"
