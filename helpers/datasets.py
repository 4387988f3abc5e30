"""Where things live: the data folder and the named datasets, as (image folder, captions file), or
for videos (video folder, MSR-VTT annotations file)."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from helpers.errors import CourseError

DATA_DIR_ENV = "COURSE_DATA_DIR"
YEARS = ("2014", "2017")
NAMED = ("tiny", "coco2014", "coco2017-val", "tiny_video")  # datasets known by name


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
    repo = Path(__file__).resolve().parents[1]
    if (repo / "pyproject.toml").is_file():
        return repo / "data_dir"
    return Path.cwd() / "data_dir"


@dataclass(frozen=True)
class Split:
    """One split of a COCO-layout dataset: its image folder and its captions file."""

    name: str
    images: Path
    annotations: Path


def coco_split(root: str | os.PathLike, split: str = "train") -> Split:
    """Find `split` in a folder laid out like COCO (annotations/captions_<split><year>.json)."""
    root = Path(root)
    for year in YEARS:
        ann = root / "annotations" / f"captions_{split}{year}.json"
        if ann.is_file():
            return Split(split, root / f"{split}{year}", ann)
    raise CourseError(
        f"{root}: no annotations/captions_{split}2014.json or captions_{split}2017.json "
        "(is this a COCO-layout folder?)"
    )


def dataset_split(dataset: str | os.PathLike = "tiny", split: str = "train") -> Split:
    """Resolve 'tiny' (built when missing), 'coco2014' (data_dir/coco), 'coco2017-val' (its val
    photos split into train / val / test, made when missing) or a folder to a Split."""
    if str(dataset) == "tiny":
        from helpers.tiny_coco import ensure_tiny_coco

        return coco_split(ensure_tiny_coco(), split)
    if str(dataset) == "coco2014":
        root = data_dir() / "coco"
        if not root.is_dir():
            raise CourseError(f"{root}: COCO 2014 not downloaded yet (see notebook 02)")
        return coco_split(root, split)
    if str(dataset) == "coco2017-val":  # COCO 2017's val photos, split (helpers.splits)
        from helpers.splits import ensure_coco2017_val

        return coco_split(ensure_coco2017_val(), split)
    return coco_split(known_dataset(dataset), split)


# MSR-VTT calls its files train_val_videodatainfo.json and TrainValVideo/; the tiny set is shorter.
VIDEO_ANNOTATIONS = ("videodatainfo.json", "train_val_videodatainfo.json")
VIDEO_FOLDERS = ("videos", "TrainValVideo")
VIDEO_SPLITS = {"train": "train", "val": "validate", "test": "test"}  # the course's: MSR-VTT's


@dataclass(frozen=True)
class VideoSplit:
    """One split of an MSR-VTT-layout dataset: the split's name in the file, videos, annotations."""

    name: str
    videos: Path
    annotations: Path


def known_dataset(dataset: str | os.PathLike) -> str | Path:
    """A dataset's name when it is a named one, else its folder, which must exist (one line if not)."""
    if str(dataset) in NAMED:
        return str(dataset)
    if not Path(dataset).is_dir():
        raise CourseError(
            f"{dataset}: dataset folder not found (use {', '.join(map(repr, NAMED))} or a folder)"
        )
    return Path(dataset)


def is_video_dataset(dataset: str | os.PathLike) -> bool:
    """'tiny_video', or a folder holding an MSR-VTT annotations file."""
    if str(dataset) in NAMED:
        return str(dataset) == "tiny_video"
    root = Path(dataset)
    return str(dataset) == "tiny_video" or any((root / a).is_file() for a in VIDEO_ANNOTATIONS)


def video_split(dataset: str | os.PathLike = "tiny_video", split: str = "train") -> VideoSplit:
    """Resolve 'tiny_video' (built when missing) or an MSR-VTT-layout folder to a VideoSplit."""
    if str(dataset) == "tiny_video":
        from helpers.tiny_video import ensure_tiny_video

        root = ensure_tiny_video()
    else:
        root = Path(dataset)
    annotations = next((root / a for a in VIDEO_ANNOTATIONS if (root / a).is_file()), None)
    videos = next((root / v for v in VIDEO_FOLDERS if (root / v).is_dir()), None)
    if annotations is None or videos is None:
        raise CourseError(
            f"{root}: not a video dataset folder (needs {' or '.join(VIDEO_ANNOTATIONS)} and a "
            f"{' or '.join(VIDEO_FOLDERS)} folder)"
        )
    return VideoSplit(VIDEO_SPLITS.get(split, split), videos, annotations)


def dataset_name(dataset: str | os.PathLike) -> str:
    """A file-name-safe key: 'tiny', 'coco2014', or a folder's name plus a hash of its full path."""
    if str(dataset) in NAMED:
        return str(dataset)
    # A folder's name alone could clash with a named dataset or another folder of that name.
    digest = hashlib.sha1(str(Path(dataset).resolve()).encode()).hexdigest()[:8]
    return f"{Path(dataset).name}-{digest}"


def generator_main(
    argv: list[str] | None, doc: str, name: str, generate, defaults: dict, units: str, what: str
) -> int:
    """The command line of a dataset generator (tiny COCO, tiny video): parse, check, generate."""
    from helpers.checks import arg, non_negative, parser, positive, writable_folder

    p = parser(f"python -m helpers.{name}", doc.splitlines()[0])
    p.add_argument(
        "--out", type=Path, default=None, help=f"output folder (default: data_dir/{name})"
    )
    p.add_argument("--seed", type=arg(non_negative), default=defaults["seed"])
    for flag, key in (("--train", "n_train"), ("--val", "n_val")):
        help_text = f"number of {flag[2:]} {units}"
        p.add_argument(flag, type=arg(positive), default=defaults[key], help=help_text)
    p.add_argument(
        "--force", action="store_true", help="regenerate even if an identical one exists"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    out = args.out or data_dir() / name
    writable_folder(out, create=False)  # built beside it, then renamed into place
    out = generate(out, args.seed, args.train, args.val, args.force, not args.quiet)
    print(f"{what} ready in {out}")
    return 0
