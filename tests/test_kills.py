"""Each long write killed (SIGKILL) midway: a checkpoint, the resized copies, the feature cache and
the clip cache. The rerun reuses nothing partial and finishes. (The split tools: test_writers.)"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from helpers.data.features import read_cache
from helpers.models.checkpoint import read_checkpoint

ROOT = Path(__file__).resolve().parents[1]

# torch.save writing part of the file, then the process killed: what a power cut or an OOM kill
# leaves behind mid-write.
HALF_SAVE = """
import os, signal, torch
real = torch.save
def half_save(obj, f, *a, **k):
    real(obj, f, *a, **k)
    with open(f, "r+b") as out:
        out.truncate(os.path.getsize(f) // 2)
    os.kill(os.getpid(), signal.SIGKILL)
"""

TRAIN = """
import sys
from helpers.train import TrainConfig, train
cfg = TrainConfig(dataset=sys.argv[1], embedding_size=16, hidden_size=16, resize=40, crop=32,
                  batch_size=16, epochs=int(sys.argv[3]), pretrain_epochs=1)
train(cfg, sys.argv[2], progress=False)
"""


def child(code: str, *args: str, data_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "COURSE_DATA_DIR": str(data_dir)}
    return subprocess.run(
        [sys.executable, "-c", code, *map(str, args)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )


def killed(run: subprocess.CompletedProcess) -> None:
    assert run.returncode == -signal.SIGKILL, run.stderr


def test_a_checkpoint_killed_mid_save_leaves_the_last_epoch_and_the_rerun_finishes(
    small_coco, tmp_path
):
    out = tmp_path / "run"
    assert child(TRAIN, small_coco, out, 1, data_dir=tmp_path).returncode == 0
    # Epoch 2's save is cut in half: last.pt must still be epoch 1, whole.
    patch = HALF_SAVE + "import helpers.models.checkpoint as c\nc.torch.save = half_save\n"
    killed(child(patch + TRAIN, small_coco, out, 2, data_dir=tmp_path))
    assert read_checkpoint(out / "last.pt")["epoch"] == 1
    assert child(TRAIN, small_coco, out, 2, data_dir=tmp_path).returncode == 0
    assert read_checkpoint(out / "last.pt")["epoch"] == 2


def test_resizing_killed_midway_is_finished_by_the_rerun(small_coco, tmp_path):
    code = (
        "import os, signal, sys\n"
        "import helpers.data.resize as r\n"
        "r.usable_cores = lambda: 1  # in this process, so the kill lands mid-folder\n"
        "real, done = r._resize_file, []\n"
        "def some(*a, **k):\n"
        "    done.append(1)\n"
        "    if len(done) == 7:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    return real(*a, **k)\n"
        "r._resize_file = some\n"
        "r.ensure_resized(sys.argv[1], 'val', 40, progress=False)\n"
    )
    killed(child(code, small_coco, data_dir=tmp_path))
    folder = next((tmp_path / "resized").iterdir()) / "val2014"
    assert len(list(folder.glob("*.jpg"))) == 6  # six whole copies, no marker
    assert not list(folder.parent.glob("*.resized.json"))
    finish = "import sys\nfrom helpers.data.resize import ensure_resized\n"
    finish += "print(ensure_resized(sys.argv[1], 'val', 40, progress=False))\n"
    assert child(finish, small_coco, data_dir=tmp_path).returncode == 0
    assert len(list(folder.glob("*.jpg"))) == 20 and list(folder.parent.glob("*.resized.json"))


@pytest.mark.parametrize("cache", ["features", "clip features"])
def test_a_cache_killed_mid_save_is_rebuilt(small_coco, tmp_path, cache):
    from helpers.data.tiny_video import generate_tiny_video

    if cache == "features":
        files = sorted((small_coco / "val2014").iterdir())[:6]
        make = (
            "from helpers.data.features import ensure_features as build\n"
            f"files = [Path(p) for p in {[str(f) for f in files]!r}]\n"
            "result = build(Path(sys.argv[1]), backbone, 'small', files, 32, 1, progress=False)\n"
        )
    else:
        tiny = generate_tiny_video(tmp_path / "v", seed=4, n_train=4, n_val=1, progress=False)
        make = (
            "from helpers.data.clip_cache import ensure_clip_features as build\n"
            "from helpers.data.video import load_videos\n"
            f"items, _ = load_videos({str(tiny / 'videodatainfo.json')!r}, "
            f"{str(tiny / 'videos')!r}, 'train')\n"
            "result = build(Path(sys.argv[1]), backbone, 'small', items, 2, 40, 32, False)\n"
        )
    code = (
        "import sys\nfrom pathlib import Path\nimport torch\n"
        "from helpers.models.backbones import SmallCNN\n"
        "torch.manual_seed(0)\nbackbone = SmallCNN(4).eval()\n"
        + make
        + "print(tuple(result.shape))\n"
    )
    path = tmp_path / "cache.pt"
    patch = HALF_SAVE + "import helpers.data.features as f\nf.torch.save = half_save\n"
    killed(child(patch + code, path, data_dir=tmp_path))
    assert not path.exists()  # the half-written file never took the cache's name
    again = child(code, path, data_dir=tmp_path)
    assert again.returncode == 0, again.stderr
    features, why = read_cache(path, torch.load(path, weights_only=True)["key"])
    assert features is not None and why == ""
