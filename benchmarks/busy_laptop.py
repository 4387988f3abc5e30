"""Print how much slower the course's training gets beside one other CPU-bound process (a browser
tab, a video call): the chapter's model trained briefly on the tiny COCO (pretraining and
captioning epochs, from the feature cache), timed alone and then beside a busy loop, in the same
run, for each thread setting. The ratio busy / alone is the figure; the course's goal is at most
2x. "policy" is what the course sets by itself (helpers.environment.thread_policy); "2 threads"
is PyTorch's own default on this machine. Rows go to benchmarks/results/busy_laptop.jsonl.
Run: python benchmarks/busy_laptop.py [--epochs 2] [--pretrain-epochs 3] [--no-record]
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from helpers.environment import usable_cores
from helpers.evaluate.measured import about_run, record_result

ROOT = Path(__file__).resolve().parents[1]

TRAIN = """
import json, sys, time
import torch
from helpers.train import TrainConfig, train
cfg = TrainConfig(epochs={epochs}, pretrain_epochs={pretrain})
began = time.perf_counter()
train(cfg, sys.argv[1], resume=False, progress=False)
print(json.dumps({{"seconds": time.perf_counter() - began, "threads": torch.get_num_threads()}}))
"""

BUSY = "while True:\n    pass\n"


def timed(data_dir: Path, env: dict, epochs: int, pretrain: int) -> dict:
    """Train once in a child process; its seconds and the threads PyTorch used."""
    with tempfile.TemporaryDirectory(dir=data_dir) as out:
        code = TRAIN.format(epochs=epochs, pretrain=pretrain)
        run = subprocess.run(
            [sys.executable, "-c", code, out],
            env={**env, "COURSE_DATA_DIR": str(data_dir)},
            capture_output=True,
            text=True,
            check=True,
        )
    return json.loads(run.stdout.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=2, help="captioning epochs (2)")
    p.add_argument("--pretrain-epochs", type=int, default=3, help="pretraining epochs (3)")
    p.add_argument("--no-record", action="store_true", help="print only")
    args = p.parse_args()
    base = {k: v for k, v in os.environ.items() if k not in ("COURSE_THREADS", "OMP_NUM_THREADS")}
    settings = {"policy": base, "2 threads": {**base, "COURSE_THREADS": "2"}}
    with tempfile.TemporaryDirectory() as tmp:
        data_dir = Path(tmp)
        timed(data_dir, base, 1, 1)  # the tiny COCO, its vocabulary and resized copies, once
        for name, env in settings.items():
            alone = timed(data_dir, env, args.epochs, args.pretrain_epochs)
            busy = subprocess.Popen([sys.executable, "-c", BUSY])
            try:
                time.sleep(1.0)  # the busy loop is running before the training starts
                beside = timed(data_dir, env, args.epochs, args.pretrain_epochs)
            finally:
                busy.kill()
                busy.wait()
            row = {
                "benchmark": "busy_laptop",
                "variant": name,
                "threads": alone["threads"],
                "threads_busy": beside["threads"],
                "usable_cores": usable_cores(),
                "alone_s": round(alone["seconds"], 1),
                "busy_s": round(beside["seconds"], 1),
                "ratio": round(beside["seconds"] / alone["seconds"], 2),
                "epochs": args.epochs,
                "pretrain_epochs": args.pretrain_epochs,
            }
            print(
                f"{name:10s} alone: {row['threads']} threads, {row['alone_s']:6.1f} s; beside a "
                f"busy process: {row['threads_busy']} threads, {row['busy_s']:6.1f} s; "
                f"{row['ratio']:.2f}x",
                flush=True,
            )
            if not args.no_record:
                record_result("busy_laptop", {**row, **about_run()}, key=("variant",))


if __name__ == "__main__":
    main()
