"""Atomic file writing: a reader never sees a half-written checkpoint, vocabulary or cache."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any


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
    from helpers.errors import CourseError

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


def generated_folder(
    out: str | os.PathLike,
    params: dict,
    manifest: str,
    what: str,
    write: Callable[[Path], dict],
    force: bool = False,
) -> Path:
    """A folder a generator writes: kept when its manifest matches `params` (unless `force`), else
    built by `write(tmp)` beside it and swapped in, so an interrupted run never leaves half of
    it. `write` returns more entries for the manifest. A folder the generator did not write (no
    manifest, not empty) is never overwritten."""
    import shutil

    from helpers.errors import CourseError

    out = Path(out)
    if out.exists():
        if not out.is_dir():
            raise CourseError(f"{out}: exists and is not a folder")
        if (out / manifest).is_file():
            stored = read_json(out / manifest, f"{what} manifest")
            if not force and all(stored.get(k) == v for k, v in params.items()):
                return out
        elif any(out.iterdir()):
            raise CourseError(
                f"{out}: folder is not empty and is not a {what}; refusing to overwrite it"
            )
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        extra = write(tmp)
        write_json(tmp / manifest, {**params, **extra}, indent=1)
        if out.exists():
            shutil.rmtree(out)  # only ever an empty folder or one holding our manifest
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out


def generator_params(
    generator: str | os.PathLike, out: str | os.PathLike, version: int, seed: int, **counts: int
) -> dict:
    """The manifest key of a generated dataset: version, a digest of the generator's own source
    (a changed generator rebuilds the data), seed and counts (whole numbers of at least 1)."""
    from helpers.errors import CourseError

    for name, value in counts.items():
        if not isinstance(value, int) or value < 1:
            raise CourseError(f"{out}: {name} must be a positive whole number, got {value!r}")
    source = hashlib.sha256(Path(generator).read_bytes()).hexdigest()[:16]
    return {"version": version, "generator": source, "seed": seed, **counts}


def link_file(src: Path, dst: Path) -> None:
    """`dst` as a link to `src` (symlink, else a hard link): a split that copies no image."""
    from helpers.errors import CourseError

    if dst.exists():
        return
    try:
        dst.symlink_to(src.resolve())
    except OSError:
        try:  # Windows without the symlink privilege: a hard link, on the same drive
            os.link(src, dst)
        except OSError as err:
            raise CourseError(f"{dst}: cannot link to {src} ({err.strerror})") from None
