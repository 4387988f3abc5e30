"""Karpathy's COCO split (the 5,000 val and 5,000 test images of most papers) in COCO layout; CLI.

Reads Karpathy's `dataset_coco.json` and writes a folder laid out like COCO, which every helper
and notebook reads unchanged (`DATASET = "<that folder>"`): annotations/captions_<split>2014.json
and a <split>2014/ folder of links to the images in the COCO download (train2014/, val2014/).
"""

from __future__ import annotations

import os
from pathlib import Path

from helpers.checks import parser, writable_folder
from helpers.data.paths import data_dir
from helpers.errors import CourseError, run_cli
from helpers.files import file_digest, link_file, read_json, replaced_folder, write_json

SPLITS = ("train", "val", "test")

MANIFEST = "karpathy.json"


def _check(path: Path, data: object) -> list[dict]:
    if not isinstance(data, dict) or not isinstance(data.get("images"), list):
        raise CourseError(f"{path}: not Karpathy's dataset_coco.json (needs an 'images' list)")
    for k, img in enumerate(data["images"]):
        ok = (
            isinstance(img, dict)
            and all(isinstance(img.get(f), str) for f in ("filepath", "filename", "split"))
            and isinstance(img.get("cocoid"), int)
            and isinstance(img.get("sentences"), list)
            and all(isinstance(s, dict) and isinstance(s.get("raw"), str) for s in img["sentences"])
        )
        if not ok:
            raise CourseError(
                f"{path}: image entry {k} lacks filepath, filename, cocoid, split or sentences[].raw"
            )
        if img["split"] not in (*SPLITS, "restval"):
            raise CourseError(f"{path}: image entry {k} has unknown split {img['split']!r}")
    return data["images"]


def karpathy_split(
    dataset_json: str | os.PathLike,
    coco_root: str | os.PathLike,
    out: str | os.PathLike,
    restval: str = "train",
) -> dict[str, int]:
    """Write Karpathy's train/val/test as a COCO-layout folder `out`; image counts per split.

    restval: "train" adds the 30k 'restval' images to train (as Karpathy trained), "drop" leaves
    them out. Images missing from `coco_root` are left out and counted under "missing".
    """
    if restval not in ("train", "drop"):
        raise CourseError(f"restval must be 'train' or 'drop', got {restval!r}")
    path, coco_root, out = Path(dataset_json), Path(coco_root), Path(out)
    images = _check(path, read_json(path, "Karpathy dataset file"))
    if not coco_root.is_dir():
        raise CourseError(f"{coco_root}: COCO folder not found (it holds train2014/ and val2014/)")
    writable_folder(out, inputs=[path, coco_root], create=False)
    with replaced_folder(out, MANIFEST, "a Karpathy split") as build:
        counts = _write_split(path, images, coco_root, build, restval)
        write_json(build / MANIFEST, {"source_sha256": file_digest(path), "restval": restval})
    return counts


def _write_split(
    path: Path, images: list[dict], coco_root: Path, out: Path, restval: str
) -> dict[str, int]:
    seen: set[int] = set()
    split_of = {"restval": "train" if restval == "train" else None}
    files: dict[str, list[dict]] = {s: [] for s in SPLITS}
    anns: dict[str, list[dict]] = {s: [] for s in SPLITS}
    counts = dict.fromkeys((*SPLITS, "missing"), 0)
    for img in images:
        if img["cocoid"] in seen:
            raise CourseError(f"{path}: image {img['cocoid']} is listed twice")
        seen.add(img["cocoid"])
        split = split_of.get(img["split"], img["split"])
        if split is None:
            continue
        src = coco_root / img["filepath"] / img["filename"]
        if not src.is_file():
            counts["missing"] += 1
            continue
        folder = out / f"{split}2014"
        folder.mkdir(parents=True, exist_ok=True)
        link_file(src, folder / img["filename"])
        files[split].append({"id": img["cocoid"], "file_name": img["filename"]})
        for s in img["sentences"]:
            anns[split].append(
                {"id": len(anns[split]) + 1, "image_id": img["cocoid"], "caption": s["raw"]}
            )
        counts[split] += 1
    for split in SPLITS:
        info = {"description": f"Karpathy's {split} split of COCO 2014, from {path.name}"}
        data = {"info": info, "images": files[split], "annotations": anns[split]}
        write_json(out / "annotations" / f"captions_{split}2014.json", data)
    return counts


def main(argv: list[str] | None = None) -> int:
    p = parser("python -m helpers.data.karpathy", __doc__)
    p.add_argument("dataset_json", type=Path, help="Karpathy's dataset_coco.json")
    p.add_argument(
        "--coco",
        type=Path,
        default=None,
        help="the COCO 2014 folder holding train2014/ and val2014/ (default: data_dir/coco)",
    )
    p.add_argument(
        "--out", type=Path, default=None, help="the folder to write (default: data_dir/karpathy)"
    )
    p.add_argument("--restval", choices=("train", "drop"), default="train")
    args = p.parse_args(argv)
    out = args.out or data_dir() / "karpathy"
    counts = karpathy_split(args.dataset_json, args.coco or data_dir() / "coco", out, args.restval)
    print(", ".join(f"{n} {s}" for s, n in counts.items()) + f" images; written to {out}")
    if counts["missing"]:
        print(f"{counts['missing']} images of {args.dataset_json} are not in the COCO folder")
    return 1 if counts["missing"] else 0


if __name__ == "__main__":
    run_cli(main)
