"""The resize benchmark runs end to end and reports what draft decoding did."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def run_resize_speed(*args: str) -> dict:
    """Run benchmarks/resize_speed.py on a few photos, one round, and parse its JSON line."""
    cmd = [sys.executable, "benchmarks/resize_speed.py", "--images", "6", "--rounds", "1", *args]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize(("size", "reduced"), [(256, 0), (64, 6)])
def test_resize_speed_reports_draft_use(size, reduced):
    # 640x480 photos: halving 480 falls below 256, so draft decodes in full; 64 px allows 1/4 scale.
    result = run_resize_speed("--size", str(size))
    assert result["draft_reduced"] == reduced
    assert set(result["images_per_second"]) == {
        "a_chapter_serial",
        "b_fast_draft_pool",
        "c_draft_one_process",
        "d_pool_no_draft",
    }
    assert all(v > 0 for v in result["images_per_second"].values())
    stages = result["ms_per_image_one_process"]
    assert all(v > 0 for v in stages.values())
    if reduced:  # decoded smaller, so a little different from the full decode
        assert 0 < result["mean_abs_diff_draft_vs_plain"] < 5
    else:
        assert result["mean_abs_diff_draft_vs_plain"] == 0


def test_resize_speed_on_real_photos(coco_sample):
    result = run_resize_speed("--photos", str(coco_sample / "images"))
    assert result["photos"].endswith("images")
    assert result["images"] == 6 and result["fast_over_chapter"] > 0


def test_real_photos_speed_projects_every_stage():
    cmd = [sys.executable, "benchmarks/real_photos_speed.py", "--photos", "4", "--captions", "64"]
    out = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    rates = result["rates_1_thread"]
    assert set(rates) == {
        "resize_photos_per_s",
        "resnet18_images_per_s",
        "resnet50_images_per_s",
        "decoder_s_per_1000_captions",
    }
    assert all(v > 0 for v in rates.values())
    # ResNet-50 costs several times ResNet-18's arithmetic: it must be measured slower.
    assert rates["resnet50_images_per_s"] < rates["resnet18_images_per_s"]
    minutes = result["projected_minutes_here"]
    assert minutes["features_resnet50"] > minutes["features_resnet18"] > 0
    assert set(result["estimated_minutes_8_cores"]) == set(minutes)
