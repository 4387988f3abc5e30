"""The resize benchmark runs end to end and reports what draft decoding did."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from helpers.evaluate.ablation import slug
from helpers.evaluate.measured import measured_rows, measured_values
from helpers.plots.ablation import plot_ablation

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
    # Projected from a second, shorter measurement: only its presence is checked, not its order
    # (a busy machine can swap two timings of a few photos).
    assert minutes["features_resnet50"] > 0 and minutes["features_resnet18"] > 0
    assert set(result["estimated_minutes_8_cores"]) == set(minutes)


QUICK = ["embedding_size=16", "hidden_size=16", "attention_size=8", "resize=40", "crop=32"]
QUICK += ["batch_size=16", "epochs=1", "pretrain_epochs=1", "views=1"]


def test_the_attention_ablation_writes_a_row_per_row_and_seed(small_coco, tmp_path):
    rows = ["attention", "chapter", "attention, beam 3", "attention, no gate"]
    rows += ["attention, word pairs in pretraining"]
    cmd = [sys.executable, "benchmarks/attention_ablation.py", "--dataset", str(small_coco)]
    cmd += ["--rows", *rows, "--seeds", "0", "1", "--results", str(tmp_path)]
    cmd += [f"--base={b}" for b in QUICK]
    env = {**os.environ, "COURSE_DATA_DIR": str(tmp_path / "data"), "OMP_NUM_THREADS": "1"}
    subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=True)
    written = measured_rows("attention_ablation", tmp_path)
    assert [(r["row"], r["seed"]) for r in written] == [(r, s) for r in rows for s in (0, 1)]
    for r in written:
        groups = r["objects"]
        assert groups["all"]["images"] == 20
        assert 0 <= groups["all"]["all_right"] <= 1
        wrong = round((1 - groups["all"]["all_right"]) * 20)
        assert sum(r["failures"].values()) == wrong  # every wrong caption has one kind
        assert ("pointing" in r) == (r["model"] == "attention")
        assert r["config"]["epochs"] == 1 and r["train_seconds"]["epochs"] > 0
    by = {(r["row"], r["seed"]): r for r in written}
    assert by["attention, no gate", 0]["config"]["gate"] is False
    assert by["attention, beam 3", 0]["beam"] == 3 and by["attention", 0]["beam"] == 1
    # The beam row decodes the attention row's model: the same training, other captions.
    assert by["attention, beam 3", 0]["train_seconds"] == by["attention", 0]["train_seconds"]
    # A row that changes the lent backbone trains its own chapter run and its own attention run.
    pairs = by["attention, word pairs in pretraining", 0]
    assert pairs["backbone"] == {"pretrain_pairs": 256}
    runs = tmp_path / "data" / "checkpoints" / "-".join(["ablation", *map(slug, QUICK)])
    assert {p.name for p in runs.iterdir()} == {
        "attention",
        "chapter",
        "attention-gate-false",
        "chapter-pretrain-pairs-256",
        "attention-backbone-pretrain-pairs-256",
    }
    figure = plot_ablation(
        measured_values(
            "attention_ablation", {"two shapes": "objects/two shapes/all_right"}, folder=tmp_path
        ),
        targets={"two shapes": 0.95},
    )
    assert len(figure.axes[0].patches) == len(rows)


def test_the_video_ablation_scores_captions_and_actions_per_row_and_seed(small_coco, tmp_path):
    from helpers.data.tiny_video import generate_tiny_video

    video = generate_tiny_video(tmp_path / "video", seed=1, n_train=16, n_val=6, progress=False)
    rows = ["attention, 8 frames", "chapter's decoder, middle frame", "LRCN actions, 8 frames"]
    cmd = [sys.executable, "benchmarks/video_ablation.py", "--dataset", str(video)]
    cmd += ["--images", str(small_coco), "--rows", *rows, "--seeds", "0"]
    cmd += ["--results", str(tmp_path), "--base=threshold=2", *(f"--base={b}" for b in QUICK)]
    env = {**os.environ, "COURSE_DATA_DIR": str(tmp_path / "data"), "OMP_NUM_THREADS": "1"}
    subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=True)
    written = {r["row"]: r for r in measured_rows("video_ablation", tmp_path)}
    assert list(written) == rows
    attention = written["attention, 8 frames"]
    assert attention["config"]["decoder"] == "attention" and attention["config"]["grid"] == 4
    assert attention["clips"] == 6 and 0 <= attention["both right, two actors"] <= 1
    assert written["chapter's decoder, middle frame"]["config"]["frames"] == 1
    lrcn = written["LRCN actions, 8 frames"]
    assert 0 <= lrcn["accuracy"] <= 1 and "both right" not in lrcn
    assert lrcn["backbone_seconds"] == attention["backbone_seconds"]  # one chapter run for both


def test_the_course_benchmark_times_each_notebook_from_an_empty_data_dir(tmp_path):
    cmd = [sys.executable, "benchmarks/course_time.py", "--only", "00", "--results", str(tmp_path)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600, check=True)
    rows = measured_rows("course_time", tmp_path)
    assert [(r["mode"], r["notebook"]) for r in rows] == [
        ("in-order", "00_setup"),
        ("alone", "00_setup"),
    ]
    assert all(r["seconds"] > 0 for r in rows)


def test_an_ablation_command_line_takes_rows_seeds_and_quick_settings(capsys):
    from helpers.evaluate.ablation import ablation_args

    rows = {"attention": {}, "chapter, lr / 2": {"lr": 1e-3}}
    args, base = ablation_args("An ablation.", rows, "tiny", argv=["--base", "epochs=2"])
    assert args.rows == list(rows) and args.seeds == [0, 1, 2] and base == {"epochs": 2}
    with pytest.raises(SystemExit):
        ablation_args("An ablation.", rows, "tiny", argv=["--base", "epochs=two"])
    assert "--base 'epochs=two': expected NAME=VALUE" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ablation_args("An ablation.", rows, "tiny", argv=["--rows", "attention, typo"])
    with pytest.raises(SystemExit):
        ablation_args("An ablation.", rows, "tiny", argv=["--list"])
    assert "chapter, lr / 2: {'lr': 0.001}" in capsys.readouterr().out
    assert slug("chapter, lr / 2") == "chapter-lr-2" and slug("lr 0.001") == "lr-0.001"


def test_the_digest_benchmark_times_a_split_and_a_run(tmp_path):
    cmd = [sys.executable, "benchmarks/digest_cost.py", "--entries", "300", "--no-record"]
    env = {**os.environ, "COURSE_DATA_DIR": str(tmp_path)}
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = {line[:46].strip(): line[46:].split() for line in out.stdout.splitlines()[2:]}
    assert set(rows) == {"tiny COCO", "300 train and 40,504 val images, empty"}
    assert all(len(times) == 4 and all(float(t) > 0 for t in times) for times in rows.values())
