"""Real photos on a laptop: the rates of each stage, measured here, and the minutes they project for
the 5,000-photo COCO 2017 val run with the laptop preset (python -m helpers.train --preset laptop).

Measures, with 1 thread and with all of this machine's threads: resizing photos to 256 px
(photos/s), the frozen ResNet-18 and ResNet-50 at the 224 crop (images/s; weights do not change the
speed, so none are downloaded), and the chapter's LSTM (embedding 256, hidden 512) trained from
cached features (seconds per 1,000 captions). The photos are ../shared/coco_sample's real COCO
photos when present, else generated 640x480 noise. Projections for a typical 8-core laptop assume
each doubling of threads gains what the last doubling gained here: an estimate, labelled so.
A run with the default settings on the real photos is also written to
benchmarks/results/real_photos_speed.jsonl as its "default" row (the README's table); a run on
generated noise, or with other settings, is only printed.
Run: python benchmarks/real_photos_speed.py [--no-record]   (about a minute)
"""

import argparse
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from helpers.data.images import eval_transform
from helpers.data.resize import resize_images
from helpers.evaluate.measured import about_run, record_result
from helpers.models.backbones import build_backbone
from helpers.models.cnn_lstm import LSTMModel

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--photos", type=int, default=48, help="photos to time (48)")
p.add_argument("--captions", type=int, default=3200, help="captions to train on when timing (3200)")
p.add_argument(
    "--no-record",
    action="store_true",
    help="print only (runs of other settings, or on noise, are never recorded)",
)
args = p.parse_args()
default = args.photos == p.get_default("photos") and args.captions == p.get_default("captions")

SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "coco_sample" / "images"
# The 5,000-photo run: 4,000 train photos (centre crop and mirror), 500 val (centre), 500 test
# (captioned once at evaluation); 5 captions per photo; the preset's 10 epochs.
RUN = {"photos": 5000, "feature_passes": 4000 * 2 + 500 + 500, "captions": 20000, "epochs": 10}
VOCABULARY = 2500  # about what 20,000 COCO captions keep at threshold 4


def photos(folder: Path) -> tuple[list[Path], str]:
    if SAMPLE.is_dir():
        return sorted(SAMPLE.glob("*.jpg"))[: args.photos], "coco_sample"
    print(
        f"{SAMPLE}: absent, so generated 640x480 noise is timed instead (and not recorded)",
        file=sys.stderr,
    )
    rng = np.random.default_rng(0)
    files = []
    for k in range(args.photos):
        path = folder / f"{k:04d}.jpg"
        Image.fromarray(rng.integers(0, 256, (480, 640, 3), dtype=np.uint8)).save(path)
        files.append(path)
    return files, "generated 640x480 noise"


def resize_rate(files: list[Path], work: Path) -> float:
    src = work / "src"
    src.mkdir(exist_ok=True)
    for f in files:
        if not (src / f.name).exists():
            (src / f.name).symlink_to(f.resolve())
    out = work / f"out{time.perf_counter_ns()}"
    began = time.perf_counter()
    resize_images(src, out, (256, 256), progress=False, workers=torch.get_num_threads())
    return len(files) / (time.perf_counter() - began)


@torch.inference_mode()
def feature_rate(name: str, batch: torch.Tensor) -> float:
    backbone = build_backbone(name, None).eval()
    backbone(batch[:4])  # warm-up
    began = time.perf_counter()
    for chunk in batch.split(16):
        backbone(chunk)
    return len(batch) / (time.perf_counter() - began)


def decoder_seconds_per_1000(features: int = 2048) -> float:
    torch.manual_seed(0)
    encoder = nn.Sequential(nn.Linear(features, 256), nn.BatchNorm1d(256))
    decoder = LSTMModel(256, 512, VOCABULARY)
    params = [*encoder.parameters(), *decoder.parameters()]
    optimizer = torch.optim.Adam(params, 1e-3)
    lengths = [12] * 32  # COCO captions: about 10 words plus <start> and <end>
    began = time.perf_counter()
    for _ in range(args.captions // 32):
        x = torch.randn(32, features)
        captions = torch.randint(4, VOCABULARY, (32, 12))
        targets = pack_padded_sequence(captions, lengths, batch_first=True).data
        loss = nn.functional.cross_entropy(decoder(encoder(x), captions, lengths), targets)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return (time.perf_counter() - began) / (args.captions // 32 * 32) * 1000


def project(rates: dict) -> dict:
    """Minutes of each stage of the 5,000-photo run at these rates, and of the ResNet-50 run."""
    minutes = {
        "resize": RUN["photos"] / rates["resize_photos_per_s"] / 60,
        "features_resnet18": RUN["feature_passes"] / rates["resnet18_images_per_s"] / 60,
        "features_resnet50": RUN["feature_passes"] / rates["resnet50_images_per_s"] / 60,
        "decoder_10_epochs": (
            RUN["captions"] * RUN["epochs"] / 1000 * rates["decoder_s_per_1000_captions"] / 60
        ),
    }
    minutes["total_resnet50"] = sum(
        minutes[k] for k in ("resize", "features_resnet50", "decoder_10_epochs")
    )
    return {k: round(v, 1) for k, v in minutes.items()}


def measure(threads: int, files: list[Path], work: Path) -> dict:
    torch.set_num_threads(threads)
    images = torch.stack([eval_transform(224)(Image.open(f).convert("RGB")) for f in files])
    return {
        "resize_photos_per_s": round(resize_rate(files, work), 1),
        "resnet18_images_per_s": round(feature_rate("resnet18", images), 1),
        "resnet50_images_per_s": round(feature_rate("resnet50", images), 1),
        "decoder_s_per_1000_captions": round(decoder_seconds_per_1000(), 2),
    }


with tempfile.TemporaryDirectory() as tmp:
    files, kind = photos(Path(tmp))
    cores = os.cpu_count() or 1
    one = measure(1, files, Path(tmp))
    here = measure(cores, files, Path(tmp))
# Each further doubling of threads is assumed to gain what a doubling gained here (1 -> cores).
doublings = math.log2(8 / cores) if cores < 8 else 0.0


def per_doubling(key: str) -> float:
    speedup = here[key] / one[key] if "per_s" in key else one[key] / here[key]
    return speedup ** (1 / math.log2(cores)) if cores > 1 else 1.0


eight = {
    k: round(
        v * per_doubling(k) ** doublings if "per_s" in k else v / per_doubling(k) ** doublings, 2
    )
    for k, v in here.items()
}
row = {
    "benchmark": "real_photos_speed",
    "variant": "default" if default and kind == "coco_sample" else "custom",
    "photos": kind,
    "n_photos": len(files),
    "cores_here": cores,
    "rates_1_thread": one,
    f"rates_{cores}_threads": here,
    "rates_all_threads": here,  # the same, under a name that does not depend on the machine
    "projected_minutes_here": project(here),
    "estimated_rates_8_cores": eight,
    "estimated_minutes_8_cores": project(eight),
    "run": RUN,
} | about_run()
# The results file the README quotes holds the default run on the real photos only.
if row["variant"] == "default" and not args.no_record:
    record_result("real_photos_speed", row, key=("variant",))
print(json.dumps(row))
