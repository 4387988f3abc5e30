"""Resizing a folder of images once, on every core, into stamped copies that a rerun keeps when
they still match; and the resized copy of a dataset's split that training reads. CLI."""

from __future__ import annotations

import os
import shutil
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

from PIL import Image, PngImagePlugin, UnidentifiedImageError
from tqdm import tqdm

from helpers.checks import arg, parser, positive, writable_folder
from helpers.data.annotations import image_files
from helpers.data.images import ImageTooLarge, load_rgb, resize_image
from helpers.data.inputs import folder_listing
from helpers.data.paths import data_dir
from helpers.data.registry import Dataset, resolve_dataset
from helpers.environment import usable_cores
from helpers.errors import CourseError, run_cli
from helpers.files import atomic_path, file_digest, read_json, write_json


@dataclass
class ResizeReport:
    """What resize_images did: files resized, outputs already there, and files skipped with why."""

    resized: int = 0
    already_done: int = 0
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file name, reason)

    def __str__(self) -> str:
        line = (
            f"resized {self.resized}, already done {self.already_done}, skipped {len(self.skipped)}"
        )
        if self.skipped:
            # A reason reads "kind: detail"; the summary counts the kinds.
            kinds = Counter(why.split(":")[0] for _, why in self.skipped)
            line += " (" + ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items())) + ")"
        return line


def _why_unusable(path: Path, err: CourseError) -> str:
    """Say why load_rgb refused a file: not an image at all, too large, or failing to decode."""
    if isinstance(err, ImageTooLarge):
        return f"too large: {err.size}"
    if not path.is_file():
        return "not an image: a folder" if path.is_dir() else "not an image: not a regular file"
    try:
        with Image.open(path) as img:
            img.load()
    except UnidentifiedImageError:
        return "not an image"
    except Exception as decode_error:  # any decoder error: we only want its message
        return f"unreadable: {decode_error}"
    return "unreadable"


def _save_format(path: Path) -> str:
    """The format the output's name asks for; JPEG when Pillow cannot write that one."""
    fmt = Image.registered_extensions().get(path.suffix.lower(), "JPEG")
    return fmt if fmt in Image.SAVE else "JPEG"


def _resize_file(src: Path, dst: Path, size: tuple[int, int], draft: bool = True) -> str | None:
    """Resize one file into `dst` under the same name; return why it was skipped, or None."""
    try:
        # The draft size is the output size: a JPEG is never decoded smaller than what we keep.
        img = load_rgb(src, draft=size if draft else None)
    except CourseError as err:
        return _why_unusable(src, err)
    out = dst / src.name
    fmt = _save_format(out)
    # The copy carries what it was made with, so a rerun with another size or decoding redoes it.
    stamp = _stamp(size, draft)
    if fmt == "JPEG":
        options = {"quality": 95, "comment": stamp}
    elif fmt == "PNG":
        info = PngImagePlugin.PngInfo()
        info.add_text(STAMP_KEY, stamp)
        options = {"pnginfo": info}
    else:
        options = {}
    try:
        # The temporary file's name has no image extension, hence the explicit format.
        # No fsync per file (it cost as much as the resize): resize_images syncs once at the end.
        with atomic_path(out, durable=False) as tmp:
            resize_image(img, size).save(tmp, format=fmt, **options)
    except OSError as err:
        raise CourseError(f"{out}: cannot write the resized image ({err})") from None
    return None


STAMP_KEY = "resized"  # the PNG text key of the stamp


def _stamp(size: tuple[int, int], draft: bool) -> str:
    """What a copy was made with, written into the copy itself (a JPEG comment, a PNG text)."""
    # The words stay those of the copies made before the package had subpackages: still reused.
    return f"helpers.images resize {size[0]}x{size[1]} draft={'on' if draft else 'off'}"


def _reusable(src: Path, out: Path, size: tuple[int, int], draft: bool) -> bool:
    """Whether the copy `out` of `src` is done: complete, newer than its source, made as asked."""
    try:
        made, source = out.stat(), src.stat()
    except OSError:
        return False
    # An output exists only once fully written (atomic rename); an empty one is what a power cut
    # before the final sync can leave. A source changed (or restored) after its copy is redone.
    if out.is_dir() or made.st_size == 0 or made.st_mtime_ns < source.st_mtime_ns:
        return False
    try:
        with Image.open(out) as img:  # the header only: cheap even for a whole COCO split
            stamp = img.info.get("comment", img.info.get(STAMP_KEY))
            if isinstance(stamp, bytes):
                stamp = stamp.decode("utf-8", "replace")
            stamped = img.format in ("JPEG", "PNG")
            return (
                img.size == tuple(size)
                and img.mode == "RGB"
                and (not stamped or stamp == _stamp(size, draft))
            )
    except (OSError, SyntaxError, ValueError):
        return False


def resize_images(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    size: tuple[int, int] | int = (256, 256),
    workers: int | None = None,
    progress: bool = True,
    draft: bool = True,
) -> ResizeReport:
    """Resize every image in `src` to `size` RGB into `dst` (same names), on all CPU cores.

    With `draft` (the default) a JPEG at least twice `size` on both sides is decoded at 1/2, 1/4 or
    1/8 scale before the LANCZOS resize: faster, with pixels a grey level or so from `draft=False`.
    """
    src, dst = Path(src), Path(dst)
    if not src.is_dir():
        raise CourseError(f"{src}: image folder not found")
    if isinstance(size, int):
        size = (size, size)
    if len(size) != 2 or not all(isinstance(n, int) and n > 0 for n in size):
        raise CourseError(f"{dst}: size must be two positive whole numbers, got {size!r}")
    if workers is None:
        workers = usable_cores()
    if workers < 1:
        raise CourseError(f"{dst}: workers must be at least 1, got {workers}")
    writable_folder(dst, inputs=[src])
    report = ResizeReport()
    todo = []
    for path in sorted(src.iterdir()):
        if _reusable(path, dst / path.name, size, draft):
            report.already_done += 1
        else:
            todo.append(path)
    work = partial(_resize_file, dst=dst, size=tuple(size), draft=draft)
    bar = tqdm(total=len(todo), desc=f"resizing {src.name}", unit="img", disable=not progress)
    workers = min(workers, len(todo))
    pool = ProcessPoolExecutor(workers) if workers > 1 else None
    try:
        if pool is None:
            results = map(work, todo)
        else:
            # Chunks keep the inter-process traffic small next to the work on ~80k small files.
            results = pool.map(work, todo, chunksize=max(1, min(64, len(todo) // (4 * workers))))
        for path, why in zip(todo, results, strict=True):
            if why is None:
                report.resized += 1
            else:
                report.skipped.append((path.name, why))
            bar.update()
        os.sync()  # one flush for all the files written above
    finally:
        bar.close()
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    return report


def ensure_resized(
    dataset: str | os.PathLike | Dataset = "tiny",
    split: str = "train",
    size: int = 256,
    progress: bool = True,
) -> Path:
    """Return the folder of `size`x`size` RGB copies of a split's images, resizing what is missing.

    A split image that cannot be used (not an image, damaged, too large) is a one-line error
    naming that source file: training could not use its captions.
    """
    dataset = resolve_dataset(dataset)
    images = dataset.split(split)
    out = data_dir() / "resized" / f"{dataset.key}_{size}" / images.images.name
    # The marker sits beside the folder and is written last: its counts catch a partial folder,
    # and the listing digest a source image changed, emptied or restored since.
    marker = out.parent / f"{out.name}.resized.json"
    source = {
        "images": str(images.images.resolve()),
        "annotations_sha256": file_digest(images.annotations),
        "size": size,
        "draft": True,  # copies made by another decoding differ by a grey level or so: redo them
        "listing_sha256": folder_listing(images.images),
    }
    if marker.is_file():
        done = read_json(marker, "resize marker")
        if (
            {k: done.get(k) for k in source} == source
            and out.is_dir()
            and done.get("counts") == [len(os.listdir(images.images)), len(os.listdir(out))]
        ):
            return out
        if done.get("images") != source["images"]:
            # Different source images under the same name: the old copies are stale.
            shutil.rmtree(out, ignore_errors=True)
        marker.unlink()
    needed = image_files(images.annotations, images.images)
    missing = sorted({path.name for path in needed.values() if not path.is_file()})
    if missing:
        # Checked before any resizing: a copy left from before must not stand in for it.
        raise CourseError(
            f"{images.images / missing[0]}: image not found ({len(missing)} images that "
            f"{images.annotations.name} captions are missing, e.g. {', '.join(missing[:3])})"
        )
    if out.is_dir():
        # Copies of images no longer in the source folder are stale: this folder is ours alone.
        gone = set(os.listdir(out)) - set(os.listdir(images.images))
        for name in gone:
            (out / name).unlink(missing_ok=True)
    report = resize_images(images.images, out, (size, size), progress=progress)
    if (report.resized and progress) or report.skipped:  # what was skipped is always said
        print(report)
    used = {f.name for f in needed.values()}
    unusable = [(name, why) for name, why in report.skipped if name in used]
    if unusable:
        # No marker: the next call retries these files, so fixing them is all it takes.
        name, why = unusable[0]
        raise CourseError(
            f"{images.images / name}: {why} ({len(unusable)} images of {images.annotations.name} "
            "cannot be used; fix or replace them, or remove their entries)"
        )
    for file_name, why in report.skipped[:10]:
        print(f"  skipped {file_name}: {why} (no caption uses it)")
    if len(report.skipped) > 10:
        print(f"  ... and {len(report.skipped) - 10} more, listed in {marker}")
    counts = [len(os.listdir(images.images)), len(os.listdir(out))]
    write_json(marker, {**source, "counts": counts, "skipped": report.skipped}, indent=1)
    return out


def main(argv: list[str] | None = None) -> int:
    p = parser(
        "python -m helpers.data.resize",
        "Resize every image in a folder to SIZE x SIZE RGB (same file names), skipping files "
        "that are not images and copies already made with the same settings.",
    )
    p.add_argument("--src", type=Path, required=True, help="folder of images")
    p.add_argument("--dst", type=Path, required=True, help="output folder (created)")
    p.add_argument(
        "--size", type=arg(positive), default=256, help="width and height in pixels (256)"
    )
    p.add_argument(
        "--workers", type=arg(positive), default=None, help="processes (default: all cores)"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--no-draft",
        action="store_true",
        help="decode JPEGs at full size (slower; the plain path, for comparison)",
    )
    args = p.parse_args(argv)
    report = resize_images(
        args.src,
        args.dst,
        (args.size, args.size),
        args.workers,
        progress=not args.quiet,
        draft=not args.no_draft,
    )
    print(report)
    for file_name, why in report.skipped:
        print(f"skipped {file_name}: {why}")
    return 0


if __name__ == "__main__":
    run_cli(main)
