"""Real photos on a laptop: COCO 2017 val split into train / val / test (links, no copies), the
"coco2017-val" named dataset, the laptop preset, and the whole path on the real COCO sample."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import torchvision

from helpers.caption.captioner import Captioner
from helpers.data.paths import DATA_DIR_ENV
from helpers.data.registry import dataset_split
from helpers.data.splits import ensure_coco2017_val, split_coco
from helpers.errors import CourseError
from helpers.evaluate.split import evaluate_checkpoint
from helpers.train import __main__ as train_module
from helpers.train.config import PRESETS, TrainConfig
from helpers.train.loop import History, train

ROOT = Path(__file__).resolve().parents[1]


def _split_ids(out: Path) -> dict[str, list[int]]:
    return {
        s: [
            img["id"]
            for img in json.loads((out / "annotations" / f"captions_{s}2017.json").read_text())[
                "images"
            ]
        ]
        for s in ("train", "val", "test")
    }


def test_the_split_is_seeded_disjoint_and_covers_every_photo(coco_sample, tmp_path):
    source = coco_sample / "captions.json"
    counts = split_coco(source, coco_sample / "images", tmp_path / "a", 10, 10, seed=0)
    assert counts == {"train": 80, "val": 10, "test": 10, "missing": 0}
    ids = _split_ids(tmp_path / "a")
    everything = [i for split in ids.values() for i in split]
    assert sorted(everything) == sorted(
        img["id"] for img in json.loads(source.read_text())["images"]
    )
    assert len(set(everything)) == len(everything)  # disjoint
    split_coco(source, coco_sample / "images", tmp_path / "b", 10, 10, seed=0)
    for name in ("train", "val", "test"):  # the same seed, byte-identical files
        a = (tmp_path / "a" / "annotations" / f"captions_{name}2017.json").read_bytes()
        assert a == (tmp_path / "b" / "annotations" / f"captions_{name}2017.json").read_bytes()
    split_coco(source, coco_sample / "images", tmp_path / "c", 10, 10, seed=1)
    assert _split_ids(tmp_path / "c")["val"] != ids["val"]
    # Every caption goes with its photo; the image folders hold links to the one original folder.
    anns = json.loads((tmp_path / "a" / "annotations" / "captions_val2017.json").read_text())
    assert {a["image_id"] for a in anns["annotations"]} == set(ids["val"])
    assert len(anns["annotations"]) == sum(
        1 for a in json.loads(source.read_text())["annotations"] if a["image_id"] in set(ids["val"])
    )
    linked = next((tmp_path / "a" / "val2017").iterdir())
    assert os.path.samefile(linked, coco_sample / "images" / linked.name)
    assert linked.is_symlink() or linked.stat().st_nlink > 1


def test_a_split_without_training_photos_is_one_line(coco_sample, tmp_path):
    with pytest.raises(CourseError, match="leave none for training") as err:
        split_coco(coco_sample / "captions.json", coco_sample / "images", tmp_path, 50, 50)
    assert "\n" not in str(err.value)


@pytest.fixture
def coco2017(coco_sample, tmp_path, monkeypatch) -> Path:
    """data_dir/coco laid out as the 2017 download would leave it, holding the real sample."""
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "data"))
    root = tmp_path / "data" / "coco"
    (root / "annotations").mkdir(parents=True)
    (root / "annotations" / "captions_val2017.json").write_bytes(
        (coco_sample / "captions.json").read_bytes()
    )
    (root / "val2017").symlink_to(coco_sample / "images")
    return root


def test_coco2017_val_is_a_named_dataset(coco2017, tmp_path, monkeypatch):
    train_split = dataset_split("coco2017-val", "train")
    assert train_split.annotations.parent.parent == tmp_path / "data" / "coco2017-val"
    assert len(list(train_split.images.iterdir())) == 80  # 10% each for val and test here
    assert len(list(dataset_split("coco2017-val", "test").images.iterdir())) == 10
    made = train_split.annotations.stat().st_mtime_ns
    ensure_coco2017_val()  # made once, then reused
    assert train_split.annotations.stat().st_mtime_ns == made
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "empty"))
    with pytest.raises(CourseError, match="--year 2017 --parts annotations val"):
        dataset_split("coco2017-val", "train")


def test_the_laptop_preset_sets_defaults_that_flags_override(monkeypatch, tmp_path):
    seen = {}

    def fake_train(cfg, out=None, resume=True, progress=True, device=None):
        seen["cfg"] = cfg
        return History()

    monkeypatch.setattr(train_module, "train", fake_train)
    train_module.main(["--preset", "laptop", "--backbone", "resnet18", "--quiet"])
    cfg = seen["cfg"]
    assert cfg.backbone == "resnet18"  # the flag wins
    assert (cfg.resize, cfg.crop, cfg.views, cfg.flip) == (256, 224, 2, True)
    assert (cfg.weights, cfg.freeze, cfg.cache_features) == ("IMAGENET1K_V1", True, True)
    assert cfg.hidden_size == PRESETS["laptop"]["hidden_size"] == 512


def test_real_photos_end_to_end_with_local_weights(coco2017, tmp_path, capsys):
    """Split, vocabulary, feature cache of a ResNet from a local weights file, training, captions,
    evaluation: the laptop path on real COCO photos, small enough for a test."""
    weights = tmp_path / "resnet18.pth"
    torch.manual_seed(0)
    # A saved torchvision ResNet-18 (random weights): the file an offline user gives instead of
    # ImageNet's download.
    torch.save(torchvision.models.resnet18(weights=None).state_dict(), weights)
    settings = {**PRESETS["laptop"], "backbone": "resnet18", "weights": str(weights)}
    settings.update(resize=72, crop=64, epochs=2, threshold=2, batch_size=32, hidden_size=64)
    cfg = TrainConfig(dataset="coco2017-val", **settings)
    history = train(cfg, tmp_path / "run", resume=False, progress=True)
    out = capsys.readouterr().out
    assert "time: feature cache" in out and "time: training, 2 epochs" in out
    assert len(history.val_loss) == 2 and history.features_seconds > 0
    features = list((tmp_path / "data" / "features").glob("coco2017-val_train_resnet18_72_64*.pt"))
    assert len(features) == 1
    assert torch.load(features[0], weights_only=True)["features"].shape[:2] == (80, 2)
    test = dataset_split("coco2017-val", "test")
    photo = next(test.images.iterdir())
    captioner = Captioner(tmp_path / "run", device="cpu")
    (caption,) = captioner.caption(torch.stack([captioner.load_image(photo)]))
    assert isinstance(caption, str) and caption.split()
    results, report = evaluate_checkpoint(
        captioner, test.annotations, test.images, skip=["SPICE", "METEOR"], progress=False
    )
    assert len(results) == 10 and 0 <= report.scores["CIDEr"]


def test_notebooks_07_to_09_run_unchanged_on_real_photos(coco2017, tmp_path):
    """Notebooks 07, 08 and 09 with DATASET = "coco2017-val" and the laptop preset (the weights from
    a local file, two epochs): every cell runs on real photos, the tiny-only checks say they skip."""
    weights = tmp_path / "resnet50.pth"
    torch.manual_seed(0)
    torch.save(torchvision.models.resnet50(weights=None).state_dict(), weights)
    settings = {"weights": str(weights), "epochs": 2, "threshold": 2}
    command = [sys.executable, "-m", "helpers.course", "--only", "07", "08", "09"]
    command += ["--out", str(tmp_path / "executed"), "--param", 'DATASET="coco2017-val"']
    command += ["--param", 'PRESET="laptop"', "--param", f"SETTINGS={settings!r}"]
    command += ["--param", "OVERFIT_STEPS=5", "--param", "BEAM_SIZES=[1, 3]"]
    env = {**os.environ, DATA_DIR_ENV: str(tmp_path / "data")}
    run = subprocess.run(command, capture_output=True, text=True, env=env, timeout=600, cwd=ROOT)
    assert run.returncode == 0, run.stdout + run.stderr
    executed = (tmp_path / "executed" / "08_generate_captions.ipynb").read_text()
    assert "no truth file" in executed
    assert (tmp_path / "data" / "checkpoints" / "coco2017-val-resnet50" / "best.pt").is_file()
