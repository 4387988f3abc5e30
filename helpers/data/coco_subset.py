"""Cut a small, seeded subset of a COCO captions split, in the same layout, to iterate in minutes."""

from __future__ import annotations

import os
import random
import re
import shutil
import tempfile
from pathlib import Path

from tqdm import tqdm

from helpers.checks import arg, non_negative, parser, positive, writable_folder
from helpers.data.annotations import load_captions
from helpers.data.layouts import YEARS
from helpers.errors import CourseError, run_cli
from helpers.files import read_json, write_json

MANIFEST = "coco_subset.json"
SPLIT_YEAR = re.compile(r"(train|val|test)(\d{4})")


def _split_name(annotations: Path, images: Path, data: dict, split: str | None) -> str:
    """The split and year, e.g. 'val2014': from `split`, the annotations name, or the image folder."""
    if split and SPLIT_YEAR.fullmatch(split):
        return split
    for name in (annotations.stem.removeprefix("captions_"), images.name):
        found = SPLIT_YEAR.fullmatch(name)
        if found and (split is None or found[1] == split):
            return found[0]
    if split:
        # A split without a year (e.g. a filtered val2017 file): the file's own year, else 2014.
        year = str((data.get("info") or {}).get("year", ""))
        return f"{split}{year if year in YEARS else YEARS[0]}"
    raise CourseError(
        f"{annotations}: cannot tell the split from its name or from {images.name}/; pass --split (e.g. val or val2014)"
    )


def coco_subset(
    annotations: str | os.PathLike,
    images: str | os.PathLike,
    n: int,
    out: str | os.PathLike,
    seed: int = 0,
    split: str | None = None,
    progress: bool = True,
) -> Path:
    """Copy `n` randomly chosen images and all their captions into `out`, laid out like COCO."""
    annotations, images, out = Path(annotations), Path(images), Path(out)
    data = load_captions(annotations)
    if not images.is_dir():
        raise CourseError(f"{images}: image folder not found (for {annotations})")
    name = _split_name(annotations, images, data, split)
    captioned = sorted({a["image_id"] for a in data["annotations"]})
    if not isinstance(n, int) or n < 1:
        raise CourseError(f"{annotations}: n must be a positive whole number, got {n!r}")
    if n > len(captioned):
        raise CourseError(
            f"{annotations}: asked for {n} images but it has only {len(captioned)} with captions"
        )
    writable_folder(out, inputs=[annotations, images], create=False)
    params = {
        "annotations": str(annotations.resolve()),
        "size": annotations.stat().st_size,
        "mtime_ns": annotations.stat().st_mtime_ns,
        "images": str(images.resolve()),
        "n": n,
        "seed": seed,
        "split": name,
    }
    manifest = _read_manifest(out)
    if all(manifest["splits"].get(name, {}).get(k) == v for k, v in params.items()):
        return out
    chosen = set(random.Random(seed).sample(captioned, n))
    # File order is kept, so the subset reads like the original file.
    entries = [im for im in data["images"] if im["id"] in chosen]
    missing = [im["file_name"] for im in entries if not (images / im["file_name"]).is_file()]
    if missing:
        raise CourseError(
            f"{images / missing[0]}: image file not found ({len(missing)} of the {n} chosen images are missing)"
        )
    subset = {k: v for k, v in data.items() if k not in ("images", "annotations")}
    subset["images"] = entries
    subset["annotations"] = [a for a in data["annotations"] if a["image_id"] in chosen]
    ann_name = f"annotations/captions_{name}.json"

    out.parent.mkdir(parents=True, exist_ok=True)
    # Build beside the target, then rename: an interrupted copy never looks like a subset.
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (tmp / name).mkdir()
        for im in tqdm(
            entries, desc=f"copying {name} images", unit="img", leave=False, disable=not progress
        ):
            shutil.copyfile(images / im["file_name"], tmp / name / im["file_name"])
        write_json(tmp / ann_name, subset)
        manifest["splits"].pop(name, None)
        if not out.exists() or not manifest["splits"]:
            manifest["splits"][name] = {**params, "captions": len(subset["annotations"])}
            write_json(tmp / MANIFEST, manifest, indent=1)
            if out.exists():
                shutil.rmtree(out)  # only ever an empty folder or a subset of this one split
            tmp.rename(out)
        else:
            # Another split (say val beside train) joins an earlier subset; the manifest lists
            # this split only once its files are in place, so an interruption means a rebuild.
            write_json(out / MANIFEST, manifest, indent=1)
            shutil.rmtree(out / name, ignore_errors=True)
            (tmp / name).rename(out / name)
            (out / "annotations").mkdir(exist_ok=True)
            os.replace(tmp / ann_name, out / ann_name)
            manifest["splits"][name] = {**params, "captions": len(subset["annotations"])}
            write_json(out / MANIFEST, manifest, indent=1)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out


def _read_manifest(out: Path) -> dict:
    """The subsets already in `out` (none for a missing or empty folder); refuse any other folder."""
    if out.exists() and not out.is_dir():
        raise CourseError(f"{out}: exists and is not a folder")
    if (out / MANIFEST).is_file():
        manifest = read_json(out / MANIFEST, "subset manifest")
        if isinstance(manifest, dict) and isinstance(manifest.get("splits"), dict):
            return manifest
        raise CourseError(
            f"{out / MANIFEST}: not a subset manifest (delete the folder to start again)"
        )
    if out.exists() and any(out.iterdir()):
        raise CourseError(
            f"{out}: folder is not empty and is not a COCO subset; refusing to overwrite it"
        )
    return {"format": "coco_subset", "splits": {}}


def main(argv: list[str] | None = None) -> int:
    p = parser("python -m helpers.data.coco_subset", __doc__)
    p.add_argument("--annotations", type=Path, required=True, help="COCO captions JSON")
    p.add_argument("--images", type=Path, required=True, help="its image folder")
    p.add_argument("--n", type=arg(positive), required=True, help="how many images to keep")
    p.add_argument("--out", type=Path, required=True, help="output folder (COCO layout)")
    p.add_argument("--seed", type=arg(non_negative), default=0, help="which images are chosen")
    p.add_argument(
        "--split", default=None, help="e.g. val or val2014, when the file names do not tell"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    args = p.parse_args(argv)
    out = coco_subset(
        args.annotations, args.images, args.n, args.out, args.seed, args.split, not args.quiet
    )
    for name, made in read_json(out / MANIFEST, "subset manifest")["splits"].items():
        print(f"{name}: {made['n']} images, {made['captions']} captions (seed {made['seed']})")
    print(f"subset ready in {out}")
    return 0


if __name__ == "__main__":
    run_cli(main)
