"""Sturdy downloads of COCO (2014, or 2017): resumable, verified transfers and safe zip extraction.

A 13 GB download will be interrupted sometimes, so every step can be rerun and picks up where it
stopped: bytes go to `<name>.part` and a rerun asks the server only for the rest (HTTP Range); the
file gets its final name only after its size and md5 are checked; archives are unpacked into a
temporary folder and moved into place, and a marker file records each finished extraction.
"""

from __future__ import annotations

import contextlib
import functools
import http.client
import os
import re
import shutil
import stat
import threading
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path, PurePosixPath
from urllib.parse import urlsplit

from tqdm import tqdm

from helpers.checks import parser, writable_folder
from helpers.data.paths import data_dir
from helpers.errors import CourseError, run_cli
from helpers.files import file_digest, write_json

CHUNK = 1 << 20
COCO_HOST = "http://images.cocodataset.org"


@dataclass(frozen=True)
class Remote:
    """A file on a server, with the size in bytes and md5 it must have (None: not checked)."""

    url: str
    size: int | None = None
    md5: str | None = None


# Sizes: the servers' Content-Length, quoted alike in many wget logs and download scripts.
# md5s: as listed by dataset loaders (Salesforce LAVIS, PaddleNLP, pystiche) and checked by them.
COCO_2014: dict[str, Remote] = {
    "annotations": Remote(
        f"{COCO_HOST}/annotations/annotations_trainval2014.zip",
        252_872_794,
        "0a379cfc70b0e71301e0f377548639bd",
    ),
    "train": Remote(
        f"{COCO_HOST}/zips/train2014.zip", 13_510_573_713, "0da8c0bd3d6becc4dcb32757491aca88"
    ),
    "val": Remote(
        f"{COCO_HOST}/zips/val2014.zip", 6_645_013_297, "a3d79f5ed8d289b7a7554ce06a5782b3"
    ),
}
# The same 2017 files: 5,000 val photos in 0.8 GB are the real-photo course's whole dataset.
COCO_2017: dict[str, Remote] = {
    "annotations": Remote(
        f"{COCO_HOST}/annotations/annotations_trainval2017.zip",
        252_907_541,
        "f4bbac642086de4f52a3fdda2de5fa2c",
    ),
    "train": Remote(
        f"{COCO_HOST}/zips/train2017.zip", 19_336_861_798, "cced6f7f71b7629ddf16f17bbcfab6b2"
    ),
    "val": Remote(f"{COCO_HOST}/zips/val2017.zip", 815_585_330, "442b8da7639aecaf257c1dceb8ba8c80"),
}
COCO = {"2014": COCO_2014, "2017": COCO_2017}


def _reason(err: BaseException) -> str:
    text = str(getattr(err, "reason", "") or err) or type(err).__name__
    return " ".join(text.split())


def _check_free_space(folder: Path, needed: int, what: str) -> None:
    free = shutil.disk_usage(folder).free
    if needed > free:
        raise CourseError(
            f"{folder}: {what} needs {needed / 1e9:.1f} GB free, only {free / 1e9:.1f} GB left"
        )


def _total_size(response: http.client.HTTPResponse, url: str, part: Path) -> int | None:
    """The full file size the server announces (None if it does not say)."""
    if response.status == 206:
        found = re.fullmatch(r"bytes (\d+)-\d+/(\d+|\*)", response.headers.get("Content-Range", ""))
        if not found or int(found[1]) != (part.stat().st_size if part.is_file() else 0):
            part.unlink(missing_ok=True)
            raise CourseError(f"{url}: server sent an unexpected range; a rerun starts over")
        return None if found[2] == "*" else int(found[2])
    length = response.headers.get("Content-Length")
    return int(length) if length and length.isdigit() else None


def _fetch(url: str, part: Path, size: int | None, progress: bool, timeout: float) -> None:
    """Append the rest of `url` to `part` (all of it when the server ignores Range)."""
    have = part.stat().st_size if part.is_file() else 0
    request = urllib.request.Request(url, headers={"Range": f"bytes={have}-"} if have else {})
    total = None
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            if response.status != 206:
                have = 0  # a whole file came back: overwrite what we had, never append to it
            total = _total_size(response, url, part)
            if size is not None and total is not None and total != size:
                part.unlink(missing_ok=True)
                raise CourseError(f"{url}: server offers {total} bytes, expected {size}")
            bar = tqdm(
                total=total or size,
                initial=have,
                unit="B",
                unit_scale=True,
                desc=part.name.removesuffix(".part"),
                disable=not progress,
            )
            with open(part, "ab" if have else "wb") as f, bar:
                while chunk := response.read(CHUNK):
                    f.write(chunk)
                    bar.update(len(chunk))
    except urllib.error.HTTPError as err:
        err.close()
        # 416: we asked for bytes after the end, so the .part may be complete already.
        if err.code == 416 and err.headers.get("Content-Range") == f"bytes */{have}":
            return
        if err.code == 416:
            part.unlink(missing_ok=True)
            raise CourseError(
                f"{url}: the partial download is longer than the file; deleted, a rerun starts over"
            ) from None
        raise CourseError(f"{url}: HTTP {err.code} {err.reason}") from None
    except ValueError as err:
        raise CourseError(f"{url}: not a valid URL ({_reason(err)})") from None
    except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
        done = part.stat().st_size if part.is_file() else 0
        raise CourseError(
            f"{url}: download stopped at {done} bytes ({_reason(err)}); a rerun resumes"
        ) from None
    done = part.stat().st_size
    if done < (total or size or 0):
        raise CourseError(
            f"{url}: connection closed after {done} of {total or size} bytes; a rerun resumes"
        )


def download(
    url: str,
    dest: str | os.PathLike,
    size: int | None = None,
    md5: str | None = None,
    progress: bool = True,
    timeout: float = 60,
) -> Path:
    """Download `url` to `dest` resumably; it appears under its name only once verified."""
    dest = Path(dest)
    if dest.is_file():
        if size is None or dest.stat().st_size == size:
            if progress:
                print(f"{dest.name}: already downloaded, skipped")
            return dest
        raise CourseError(
            f"{dest}: has {dest.stat().st_size} bytes, expected {size}; delete it and rerun"
        )
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    have = part.stat().st_size if part.is_file() else 0
    if size is None or have < size:
        _check_free_space(dest.parent, (size or 0) - have, f"downloading {dest.name}")
        _fetch(url, part, size, progress, timeout)
    got = part.stat().st_size
    if size is not None and got != size:
        part.unlink()
        raise CourseError(f"{url}: got {got} bytes, expected {size}; deleted, a rerun starts over")
    if md5 is not None and (found := file_digest(part, "md5", progress)) != md5.lower():
        part.unlink()
        raise CourseError(f"{url}: md5 is {found}, expected {md5}; deleted, a rerun starts over")
    os.replace(part, dest)
    return dest


def _checked_members(zf: zipfile.ZipFile, archive: Path) -> list[zipfile.ZipInfo]:
    """All members, refusing any that could land outside the target folder."""
    members = zf.infolist()
    for info in members:
        name = PurePosixPath(info.filename.replace("\\", "/"))
        drive = bool(name.parts) and name.parts[0].endswith(":")
        if name.is_absolute() or drive or ".." in name.parts:
            raise CourseError(
                f"{archive}: member {info.filename!r} would land outside the target (refused)"
            )
        # A link could point anywhere, and later members could be written through it.
        if stat.S_ISLNK(info.external_attr >> 16):
            raise CourseError(f"{archive}: member {info.filename!r} is a symbolic link (refused)")
    return members


def _move_into(src: Path, dst: Path) -> None:
    """Move `src` onto `dst`, merging folders, so a rerun after an interrupted move completes it."""
    if src.is_dir() and dst.is_dir():
        for child in src.iterdir():
            _move_into(child, dst / child.name)
        src.rmdir()
    else:
        os.replace(src, dst)


def extract(archive: str | os.PathLike, target: str | os.PathLike, progress: bool = True) -> Path:
    """Unpack a zip into `target` safely; a marker file makes a rerun skip finished work."""
    archive, target = Path(archive), Path(target)
    marker = target / f".extracted-{archive.name}"
    if marker.is_file():
        if progress:
            print(f"{archive.name}: already extracted, skipped")
        return target
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as err:
        raise CourseError(f"{archive}: not a readable zip archive ({_reason(err)})") from None
    with zf:
        # Every member is checked before anything is written, so a refusal leaves no trace.
        members = _checked_members(zf, archive)
        target.mkdir(parents=True, exist_ok=True)
        _check_free_space(target, sum(m.file_size for m in members), f"unpacking {archive.name}")
        tmp = target / f".extracting-{archive.name}"
        shutil.rmtree(tmp, ignore_errors=True)  # left by an extraction that was killed
        try:
            tmp.mkdir()
            for info in tqdm(
                members, unit="file", desc=f"unzip {archive.name}", disable=not progress
            ):
                zf.extract(info, tmp)
            for entry in sorted(tmp.iterdir()):
                _move_into(entry, target / entry.name)
        except (zipfile.BadZipFile, zlib.error, EOFError) as err:
            raise CourseError(f"{archive}: corrupt archive ({_reason(err)})") from None
        except OSError as err:
            raise CourseError(f"{archive}: extraction failed ({_reason(err)})") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    write_json(marker, {"archive": archive.name, "members": len(members)})
    return target


def download_coco(
    root: str | os.PathLike | None = None,
    parts: tuple[str, ...] | list[str] = ("annotations", "train", "val"),
    base_url: str | None = None,
    keep_archives: bool = False,
    progress: bool = True,
    year: str = "2014",
) -> Path:
    """Download and unpack COCO parts of a year into `root` (default data_dir/coco), COCO layout;
    2014 and 2017 live side by side there (annotations/captions_val2017.json, val2017/, ...)."""
    root = Path(root) if root is not None else data_dir() / "coco"
    if str(year) not in COCO:
        raise CourseError(f"COCO year must be one of {', '.join(COCO)}, got {year!r}")
    remotes = COCO[str(year)]
    unknown = [p for p in parts if p not in remotes]
    if unknown:
        raise CourseError(f"unknown COCO {year} part(s) {unknown} (choose from {list(remotes)})")
    for name in parts:
        remote = remotes[name]
        path = urlsplit(remote.url).path
        url = remote.url if base_url is None else base_url.rstrip("/") + path
        archive = root / PurePosixPath(path).name
        if (root / f".extracted-{archive.name}").is_file():
            print(f"{archive.name}: already extracted, skipped")
            continue
        download(url, archive, remote.size, remote.md5, progress=progress)
        extract(archive, root, progress)
        if not keep_archives:
            archive.unlink()
    return root


class _RangeHandler(SimpleHTTPRequestHandler):
    """Serves files with HTTP Range support, and can simulate the faults of a real server."""

    log: list | None = None
    cut_after: int | None = None  # close the first response after this many bytes
    ignore_range: bool = False
    served = 0

    def do_GET(self) -> None:
        if self.log is not None:
            self.log.append((self.path, self.headers.get("Range")))
        path = Path(self.translate_path(self.path))
        if not path.is_file():
            self.send_error(404)
            return
        size = path.stat().st_size
        asked = None if self.ignore_range else self.headers.get("Range")
        found = re.fullmatch(r"bytes=(\d+)-", asked or "")
        start = int(found[1]) if found else 0
        if start >= size > 0:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{size}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(206 if found else 200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Length", str(size - start))
        if found:
            self.send_header("Content-Range", f"bytes {start}-{size - 1}/{size}")
        self.end_headers()
        first = type(self).served == 0
        type(self).served += 1
        with open(path, "rb") as f:
            f.seek(start)
            limit = self.cut_after if first and self.cut_after is not None else size
            self.wfile.write(f.read(limit))

    def log_message(self, format: str, *args) -> None:
        pass  # keep notebooks and test output clean


@contextlib.contextmanager
def serve_directory(
    folder: str | os.PathLike,
    log: list | None = None,
    cut_after: int | None = None,
    ignore_range: bool = False,
) -> Iterator[str]:
    """Serve `folder` over HTTP on 127.0.0.1 with Range support; yield the base URL."""
    # For tests and demos: `log` collects (path, Range header) per request, `cut_after` hangs up
    # the first response after that many bytes, `ignore_range` always sends the whole file (200).
    settings = {"log": log, "cut_after": cut_after, "ignore_range": ignore_range, "served": 0}
    handler = type("Handler", (_RangeHandler,), settings)
    server = ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(handler, directory=str(folder))
    )
    server.daemon_threads = True
    # A short poll interval lets the `with` block end at once instead of after half a second.
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def main(argv: list[str] | None = None) -> int:
    """Command line: download and unpack parts of COCO 2014 or 2017."""
    p = parser(
        "python -m helpers.data.download",
        "Download and unpack COCO 2014 or 2017 (resumable: rerun after an interruption).",
    )
    p.add_argument("--year", choices=list(COCO), default="2014", help="2014 (default) or 2017")
    p.add_argument("--parts", nargs="+", choices=list(COCO_2014), default=list(COCO_2014))
    p.add_argument("--root", type=Path, default=None, help="target folder (default data_dir/coco)")
    p.add_argument("--base-url", default=None, help=f"a mirror to use instead of {COCO_HOST}")
    p.add_argument("--keep-archives", action="store_true", help="keep the zips after unpacking")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    writable_folder(args.root or data_dir() / "coco")
    root = download_coco(
        args.root, args.parts, args.base_url, args.keep_archives, not args.quiet, args.year
    )
    print(f"COCO {args.year} ({', '.join(args.parts)}) ready in {root}")
    return 0


if __name__ == "__main__":
    run_cli(main)
