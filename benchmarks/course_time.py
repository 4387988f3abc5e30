"""How long the course takes from an empty data_dir: each notebook in order, as a learner runs it
(later notebooks reuse what earlier ones built), and each notebook alone, in a fresh kernel with a
data_dir of its own (what a learner who opens it first waits).

Writes one row per notebook and mode to benchmarks/results/course_time.jsonl as soon as it is
measured (the book's landing page and the README read it), and a row for the whole course in
order. Nothing is stored back into the notebooks.
Run: python benchmarks/course_time.py [--modes in-order alone] [--only 07 11]
"""

import argparse
import os
import shutil
import tempfile
import time
from pathlib import Path

from helpers.course import notebook_paths, run_notebook
from helpers.evaluate.measured import about_run, record_result

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--modes", nargs="+", choices=("in-order", "alone"), default=["in-order", "alone"])
p.add_argument("--only", nargs="*", help="notebooks whose name starts with these, e.g. 07 11")
p.add_argument("--timeout", type=int, default=1200, help="seconds allowed per cell")
p.add_argument("--no-record", action="store_true", help="print only; leave the results file alone")
p.add_argument(
    "--results", type=Path, default=None, help="results folder (default: benchmarks/results)"
)
args = p.parse_args()
paths = notebook_paths(only=args.only)


def run(path: Path, folder: Path) -> float:
    """One notebook in a fresh kernel whose data_dir is `folder`; its wall time in seconds."""
    os.environ["COURSE_DATA_DIR"] = str(folder)  # the kernel inherits it
    (folder / "executed").mkdir(parents=True, exist_ok=True)
    return run_notebook(path, folder / "executed", {}, args.timeout)


def record(row: dict) -> None:
    row = {"benchmark": "course_time", **row} | about_run()
    if not args.no_record:
        record_result("course_time", row, ("mode", "notebook"), args.results)
    print(f"{row['mode']}: {row['notebook']} {row['seconds']:.1f} s", flush=True)


with tempfile.TemporaryDirectory(prefix="course-time-") as scratch:
    for mode in args.modes:
        shared = Path(scratch) / "in-order"
        total = 0.0
        for path in paths:
            folder = shared if mode == "in-order" else Path(scratch) / path.stem
            folder.mkdir(exist_ok=True)
            began = time.perf_counter()
            seconds = run(path, folder)
            total += seconds
            record({"mode": mode, "notebook": path.stem, "seconds": round(seconds, 1)})
            if mode == "alone":
                shutil.rmtree(folder)  # disk: each notebook's data_dir goes when it is measured
        if mode == "in-order" and not args.only:
            record({"mode": mode, "notebook": "all", "seconds": round(total, 1)})
