"""Atomic file writing: a reader never sees a half-written checkpoint, vocabulary or cache."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import tempfile
import time
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
        # mkstemp makes the file private (0600); the result gets the user's usual permissions.
        os.chmod(tmp, 0o666 & ~_umask())
        yield tmp
        if durable:  # the data must be on disk before the rename makes it visible
            with open(tmp, "rb+") as f:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _umask() -> int:
    """The process's file-creation mask (reading it means setting it: set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


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


# Digests already computed in this process, by file and state: a captions file asked about by the
# vocabulary, the resized folder and the run's record is read once while it stays unchanged. A file
# changed in the last seconds is read again each time: a second edit within the clock's grain
# (milliseconds on many file systems) would leave its size and time as they were.
_DIGESTS: dict[tuple, str] = {}
_SETTLED_NS = 3_000_000_000


def file_digest(path: str | os.PathLike, algorithm: str = "sha256", progress: bool = False) -> str:
    """Hex digest of a file read in chunks (a progress bar for files over 1 GB if asked)."""
    path = Path(path)
    info = path.stat()
    key = (str(path.resolve()), info.st_size, info.st_mtime_ns, info.st_ino, algorithm)
    if key in _DIGESTS:
        return _DIGESTS[key]
    digest = _digest(path, algorithm, progress)
    if time.time_ns() - max(info.st_mtime_ns, info.st_ctime_ns) > _SETTLED_NS:
        _DIGESTS[key] = digest
    return digest


def _digest(path: Path, algorithm: str, progress: bool) -> str:
    from tqdm import tqdm

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


@contextlib.contextmanager
def folder_lock(folder: str | os.PathLike, what: str) -> Iterator[None]:
    """Hold the one writer's lock of `folder` (a file beside it) while the block runs; a second
    writer is refused in one line naming the first. The system drops the lock of a process that
    dies, so a killed run's lock is taken over."""
    folder = Path(folder)
    lock = folder.parent / f".{folder.name}.lock"
    try:
        lock.parent.mkdir(parents=True, exist_ok=True)
        f = open(lock, "a+", encoding="utf-8")  # noqa: SIM115 (closed by the with below)
    except OSError as err:  # a read-only data_dir, a file where a folder should be, a full disk
        raise CourseError(f"{folder}: cannot write here ({err.strerror or err})") from None
    with f:
        if not _try_lock(f):
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise CourseError(
                f"{folder}: {holder} is writing here; wait for it to finish, or use another folder"
            )
        f.seek(0)
        f.truncate()
        f.write(f"{what} (process {os.getpid()}, since {time.strftime('%H:%M:%S')})")
        f.flush()
        try:
            yield
        finally:
            f.seek(0)
            f.truncate()  # the lock itself goes with the file's closing


def _try_lock(f) -> bool:
    """Take an exclusive lock on an open file without waiting; False if another process has it."""
    try:
        import fcntl
    except ImportError:  # Windows: a lock on the first byte, dropped when the process ends
        import msvcrt

        try:
            msvcrt.locking(f.fileno(), msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    try:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


@contextlib.contextmanager
def replaced_folder(out: str | os.PathLike, marker: str, what: str) -> Iterator[Path]:
    """Yield an empty folder to build `out` in; on success it replaces `out` whole. `out` must be
    new, empty, or an earlier result of the same tool (it holds `marker`): nothing else in it is
    ever overwritten. One writer at a time; an interrupted build leaves the earlier `out` intact."""
    out = Path(out)
    if out.is_dir() and any(out.iterdir()) and not (out / marker).is_file():
        raise CourseError(
            f"{out}: holds files that {what} did not make; choose a new or empty folder"
        )
    with folder_lock(out, what):
        for stale in out.parent.glob(f".{out.name}.*.tmp"):  # left by a killed run
            shutil.rmtree(stale, ignore_errors=True)
        build = out.parent / f".{out.name}.{os.getpid()}.tmp"
        build.mkdir()  # with the user's usual permissions, which the swapped-in folder keeps
        try:
            yield build
            if out.exists():
                old = out.parent / f".{out.name}.{os.getpid()}.old.tmp"
                out.rename(old)
                build.rename(out)
                shutil.rmtree(old, ignore_errors=True)
            else:
                build.rename(out)
        finally:
            shutil.rmtree(build, ignore_errors=True)
