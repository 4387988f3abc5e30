"""Print what checking a run's inputs costs before each reuse, on the tiny COCO and on a
COCO-sized stand-in of empty image files with 5 captions per image: a train folder of --entries
files (COCO 2014 train: 82,783 images, 414,113 captions) and a val folder of 40,504 (COCO 2014
val). Times split_inputs (one split: its captions digest and its folder's listing) and run_inputs
(train and val), cold (the first call in the process reads the captions files) and warm (the
digest of an unchanged file is remembered; the folders are listed again each time).
Rows go to benchmarks/results/digest_cost.jsonl (key: "variant").
Run: python benchmarks/digest_cost.py [--entries 100000] [--no-record]
"""

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from helpers.data.inputs import run_inputs, split_inputs
from helpers.data.registry import dataset_split
from helpers.evaluate.measured import about_run, record_result
from helpers.files import _DIGESTS


def coco_sized(root: Path, entries: int) -> Path:
    """A COCO-layout folder of `entries` empty train images, COCO's 40,504 val, and captions."""
    (root / "annotations").mkdir(parents=True)
    for split, count in (("train", entries), ("val", 40_504)):
        folder = root / f"{split}2014"
        folder.mkdir()
        images, captions = [], []
        for i in range(count):
            name = f"COCO_{split}2014_{i:012d}.jpg"
            (folder / name).touch()
            images.append({"id": i, "file_name": name, "width": 640, "height": 480})
            captions += [
                {"id": 5 * i + k, "image_id": i, "caption": f"a photo of thing {i} seen {k} ways"}
                for k in range(5)
            ]
        data = {"images": images, "annotations": captions}
        (root / "annotations" / f"captions_{split}2014.json").write_text(json.dumps(data))
    return root


def timed(dataset) -> dict[str, float]:
    """Seconds for split_inputs (train) and run_inputs, cold (nothing remembered) and warm."""
    times = {}
    for name, check in (
        ("train_split", lambda: split_inputs(dataset, "train")),
        ("run", lambda: run_inputs(dataset)),
    ):
        _DIGESTS.clear()
        for state in ("cold", "warm"):
            began = time.perf_counter()
            check()
            times[f"{name}_{state}_s"] = round(time.perf_counter() - began, 3)
    return times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--entries", type=int, default=100_000, help="train images (100000)")
    p.add_argument("--no-record", action="store_true", help="print only")
    args = p.parse_args()
    tiny = dataset_split("tiny", "train").images  # the tiny COCO, generated if missing
    rows = [{"variant": "tiny COCO", "train_images": len(os.listdir(tiny)), **timed("tiny")}]
    with tempfile.TemporaryDirectory() as tmp:
        root = coco_sized(Path(tmp) / "coco", args.entries)
        # Digests of files written in the last seconds are not kept: let the stand-in settle.
        time.sleep(3.5)
        size = (root / "annotations" / "captions_train2014.json").stat().st_size
        rows.append(
            {
                "variant": f"{args.entries:,} train and 40,504 val images, empty",
                "train_images": args.entries,
                "train_captions_mb": round(size / 1e6, 1),
                **timed(root),
            }
        )
    print(f"{'':46s} {'one split (train)':>19s} {'train and val':>19s}")
    print(f"{'seconds':46s} {'cold':>9s} {'warm':>9s} {'cold':>9s} {'warm':>9s}")
    for row in rows:
        print(
            f"{row['variant']:46s} {row['train_split_cold_s']:9.3f} {row['train_split_warm_s']:9.3f}"
            f" {row['run_cold_s']:9.3f} {row['run_warm_s']:9.3f}"
        )
        if not args.no_record:
            record_result(
                "digest_cost", {"benchmark": "digest_cost", **row, **about_run()}, key=("variant",)
            )


if __name__ == "__main__":
    main()
