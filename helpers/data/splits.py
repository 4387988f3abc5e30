"""Splitting one COCO captions file into train / val / test with a fixed seed, as a COCO-layout
folder whose image folders link to the one original folder (no copies); and the named dataset
"coco2017-val": COCO 2017's 5,000 val photos as about 4,000 train, 500 val and 500 test. CLI.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from helpers.checks import arg, non_negative, parser, writable_folder
from helpers.data.annotations import load_captions
from helpers.data.karpathy import SPLITS
from helpers.data.paths import data_dir
from helpers.errors import CourseError, run_cli
from helpers.files import file_digest, link_file, read_json, replaced_folder, write_json

MANIFEST = "split.json"
COCO2017_VAL = "coco2017-val"


def split_coco(
    annotations: str | os.PathLike,
    images: str | os.PathLike,
    out: str | os.PathLike,
    n_val: int = 500,
    n_test: int = 500,
    seed: int = 0,
    year: str = "2017",
) -> dict[str, int]:
    """Write `out`/annotations/captions_<split><year>.json and `out`/<split><year>/ (links) for a
    seeded split of the images of one captions file; image counts per split.

    The same file and seed give the same split; every image with a file goes to exactly one split,
    and images whose file is missing are left out and counted under "missing".
    """
    annotations, images, out = Path(annotations), Path(images), Path(out)
    non_negative("n_val", n_val)
    non_negative("n_test", n_test)
    data = load_captions(annotations)
    if not images.is_dir():
        raise CourseError(f"{images}: image folder not found")
    if n_val + n_test >= len(data["images"]):
        raise CourseError(
            f"{annotations}: {len(data['images'])} images leave none for training after "
            f"{n_val} val and {n_test} test"
        )
    writable_folder(out, inputs=[annotations, images], create=False)
    # Built whole beside the target, then swapped in: a rerun (another seed, other images)
    # replaces the earlier split entirely, and an interrupted one leaves the earlier intact.
    with replaced_folder(out, MANIFEST, "a split") as build:
        return _write_split(data, annotations, images, build, n_val, n_test, seed, year)


def _write_split(
    data: dict,
    annotations: Path,
    images: Path,
    out: Path,
    n_val: int,
    n_test: int,
    seed: int,
    year: str,
) -> dict[str, int]:
    # Sorted by id first, so the split depends on the seed only, not on the file's order.
    entries = sorted(data["images"], key=lambda img: img["id"])
    random.Random(seed).shuffle(entries)
    split_of = {}
    for k, img in enumerate(entries):
        split_of[img["id"]] = "val" if k < n_val else "test" if k < n_val + n_test else "train"
    counts = dict.fromkeys((*SPLITS, "missing"), 0)
    files: dict[str, list[dict]] = {s: [] for s in SPLITS}
    for split in SPLITS:  # every split has its folder, even one whose images are all missing
        (out / f"{split}{year}").mkdir()
    for img in entries:
        src = images / img["file_name"]
        if not src.is_file():
            counts["missing"] += 1
            split_of.pop(img["id"])
            continue
        split = split_of[img["id"]]
        link_file(src, out / f"{split}{year}" / img["file_name"])
        files[split].append(img)
        counts[split] += 1
    for split in SPLITS:
        keep = {img["id"] for img in files[split]}
        anns = [a for a in data["annotations"] if a["image_id"] in keep]
        info = {"description": f"{split} split (seed {seed}) of {annotations.name}"}
        body = {"info": info, "images": sorted(files[split], key=lambda i: i["id"])}
        write_json(
            out / "annotations" / f"captions_{split}{year}.json", {**body, "annotations": anns}
        )
    manifest = {"source_sha256": file_digest(annotations), "seed": seed, "n_val": n_val}
    write_json(out / MANIFEST, {**manifest, "n_test": n_test, "counts": counts})
    return counts


def ensure_coco2017_val(root: str | os.PathLike | None = None, seed: int = 0) -> Path:
    """The "coco2017-val" folder (data_dir/coco2017-val): data_dir/coco's val2017 split into about
    4,000 train, 500 val and 500 test photos, made when missing or made from other captions."""
    root = Path(root) if root is not None else data_dir() / "coco"
    source = root / "annotations" / "captions_val2017.json"
    if not source.is_file() or not (root / "val2017").is_dir():
        raise CourseError(
            f"{root}: COCO 2017 val not downloaded yet "
            "(python -m helpers.data.download --year 2017 --parts annotations val)"
        )
    out = data_dir() / COCO2017_VAL
    manifest = out / MANIFEST
    if manifest.is_file():
        done = read_json(manifest, "split manifest")
        if done.get("source_sha256") == file_digest(source) and done.get("seed") == seed:
            return out
    # 500 val and 500 test of the 5,000 photos; a smaller download (a sample) keeps 10% each.
    held_out = min(500, len(load_captions(source)["images"]) // 10)
    split_coco(source, root / "val2017", out, held_out, held_out, seed)
    return out


def main(argv: list[str] | None = None) -> int:
    p = parser("python -m helpers.data.splits", __doc__.split(";")[0])
    p.add_argument("--annotations", type=Path, required=True, help="a COCO captions JSON")
    p.add_argument("--images", type=Path, required=True, help="the folder of its images")
    p.add_argument("--out", type=Path, required=True, help="the COCO-layout folder to write")
    p.add_argument("--val", type=arg(non_negative), default=500, help="val images (500)")
    p.add_argument("--test", type=arg(non_negative), default=500, help="test images (500)")
    p.add_argument("--seed", type=arg(non_negative), default=0, help="the split's seed (0)")
    p.add_argument("--year", default="2017", help="the year in the files' names (2017)")
    args = p.parse_args(argv)
    counts = split_coco(
        args.annotations, args.images, args.out, args.val, args.test, args.seed, args.year
    )
    print(", ".join(f"{n} {k}" for k, n in counts.items()) + f" images; written to {args.out}")
    return 0


if __name__ == "__main__":
    run_cli(main)
