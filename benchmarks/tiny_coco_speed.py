"""Print how long generating the default tiny COCO takes (target: under 20 s on 2 cores)."""

import json
import tempfile
import time
from pathlib import Path

import torch

from helpers.data.tiny_coco import DEFAULTS, generate_tiny_coco

with tempfile.TemporaryDirectory() as tmp:
    start = time.perf_counter()
    root = generate_tiny_coco(Path(tmp) / "tiny", **DEFAULTS)
    seconds = time.perf_counter() - start
    size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
print(
    json.dumps(
        {
            "benchmark": "tiny_coco_generation",
            **DEFAULTS,
            "seconds": round(seconds, 2),
            "megabytes": round(size / 2**20, 1),
            "cpu_threads": torch.get_num_threads(),
        }
    )
)
