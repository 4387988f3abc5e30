"""Atomic file writing: a reader never sees a half-written checkpoint, vocabulary or cache."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from helpers.errors import CourseError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary path next to `path`; rename it onto `path` only if the block succeeds.

    durable=False skips the fsync: still never half-written after a crash of the program, but a
    power cut may lose it. For many small files that a caller syncs once at the end (os.sync).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp)
    try:
        yield tmp
        if durable:  # the data must be on disk before the rename makes it visible
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json(path: str | os.PathLike, data: Any, indent: int | None = None) -> None:
    """Write `data` as JSON to `path` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=indent, ensure_ascii=False) + "\n", encoding="utf-8")


def read_json(path: str | os.PathLike, what: str = "JSON file") -> Any:
    """Read a JSON file, turning a missing or malformed file into a one-line CourseError."""
    path = Path(path)
    if not path.is_file():
        raise CourseError(f"{path}: {what} not found")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CourseError(f"{path}: not valid JSON ({err})") from None


def file_digest(path: str | os.PathLike, algorithm: str = "sha256", progress: bool = False) -> str:
    """Hex digest of a file read in chunks (a progress bar for files over 1 GB if asked)."""
    from tqdm import tqdm

    path = Path(path)
    digest = hashlib.new(algorithm, usedforsecurity=False)
    size = path.stat().st_size
    bar = tqdm(
        total=size, unit="B", unit_scale=True, desc=algorithm, disable=not progress or size < 1e9
    )
    with open(path, "rb") as f, bar:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            bar.update(len(chunk))
    return digest.hexdigest()


def link_file(src: Path, dst: Path) -> None:
    """`dst` as a link to `src` (symlink, else a hard link): a split that copies no image."""
    if dst.exists():
        return
    try:
        dst.symlink_to(src.resolve())
    except OSError:
        try:  # Windows without the symlink privilege: a hard link, on the same drive
            os.link(src, dst)
        except OSError as err:
            raise CourseError(f"{dst}: cannot link to {src} ({err.strerror})") from None
