"""Training under torchrun: two CPU processes (gloo) learn what one process learns."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from helpers.data.annotations import image_files
from helpers.data.features import extract_features, images_digest
from helpers.data.layouts import coco_split
from helpers.models.checkpoint import read_checkpoint
from helpers.models.registry import build_models
from helpers.train.loop import train

SETTINGS = {
    "embedding_size": 32,
    "hidden_size": 32,
    "resize": 40,
    "crop": 32,
    "batch_size": 16,
    "pretrain_epochs": 1,
}


def _flags(dataset: Path, out: Path, **settings) -> list[str]:
    flags = ["--dataset", str(dataset), "--out", str(out)]
    for key, value in {**SETTINGS, **settings}.items():
        name = "--" + key.replace("_", "-")
        if isinstance(value, bool):
            flags.append(name if value else name.replace("--", "--no-", 1))
        else:
            flags += [name, str(value)]
    return flags


def _torchrun(dataset: Path, out: Path, data: Path, **settings) -> subprocess.Popen:
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node=2",
        "-m",
        "helpers.train",
        *_flags(dataset, out, **settings),
        "--device",
        "cpu",
    ]
    env = {**os.environ, "COURSE_DATA_DIR": str(data), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize("decoder", ["lstm", "attention"])
def test_two_processes_match_one_with_the_same_global_batch(
    small_coco, small_config, tmp_path, monkeypatch, decoder
):
    proc = _torchrun(small_coco, tmp_path / "ddp", tmp_path / "data_ddp", epochs=2, decoder=decoder)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-2000:]
    # Only rank 0 prints and writes: one line per epoch, one last and one best checkpoint, no stray
    # temp files.
    epochs = [line for line in stdout.splitlines() if line.startswith("epoch ")]
    assert [line.split(":")[0] for line in epochs] == ["epoch 1/2", "epoch 2/2"]
    assert sum(line.startswith("done: val loss") for line in stdout.splitlines()) == 1
    assert sorted(p.name for p in (tmp_path / "ddp").iterdir()) == ["best.pt", "last.pt"]
    ddp = read_checkpoint(tmp_path / "ddp" / "last.pt")
    # Both processes took part, each on its half of every epoch: 300 captions, 150 per process in
    # batches of 8 (the last one of 6).
    assert all(
        line.endswith("2 processes trained on 150 + 150 examples in 19 + 19 batches")
        for line in epochs
    )
    assert ddp["history"]["process_examples"] == [[150, 150], [150, 150]]
    assert ddp["history"]["process_batches"] == [[19, 19], [19, 19]]

    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path / "data_one"))
    cfg = small_config(small_coco, **SETTINGS, decoder=decoder)
    one = train(cfg, out=tmp_path / "one", progress=False)
    assert ddp["step"] == 2 * 19  # 300 captions in global batches of 16: 19 steps per epoch
    assert one.process_examples == [[300], [300]] and one.process_batches == [[19], [19]]
    # Same data order and global batch; the per-process means, BatchNorm over 8 instead of 16 and
    # float sums in another order keep them from being equal to the bit.
    for got, want in zip(ddp["history"]["val_loss"], one.val_loss, strict=True):
        assert got == pytest.approx(want, rel=0.01)
    for got, want in zip(ddp["history"]["train_loss"], one.train_loss, strict=True):
        assert got == pytest.approx(want, rel=0.01)
    assert ddp["history"]["val_loss"][-1] < ddp["history"]["val_loss"][0]  # it learned
    # Each process extracted every other image for the cache; put together, they are what one
    # process extracts with the same backbone (and no share files are left behind).
    caches = sorted((tmp_path / "data_ddp" / "features").iterdir())
    assert len(caches) == 2 and all(p.suffix == ".pt" for p in caches)
    encoder, _ = build_models(ddp["config"], ddp["vocab_size"])
    encoder.load_state_dict(ddp["encoder"])
    resized = tmp_path / "data_ddp" / "resized"
    for split in ("train", "val"):
        (path,) = [p for p in caches if f"_{split}_" in p.name]
        stored = torch.load(path, weights_only=True)
        where = coco_split(small_coco, split)
        folder = next(resized.glob(f"*/{where.images.name}"))
        files = [p for _, p in sorted(image_files(where.annotations, folder).items())]
        key = stored["key"]
        assert key["images_sha256"] == images_digest(files)
        alone = extract_features(
            encoder.feature_extractor()[0],
            files,
            key["crop"],
            key["views"],
            seed=key["seed"],
            progress=False,
        )
        torch.testing.assert_close(stored["features"], alone)


def _worker(parent: int, rank: int) -> int | None:
    """The pid of torchrun's worker process with LOCAL_RANK=rank, if it runs yet."""
    for task in Path(f"/proc/{parent}/task").iterdir():
        for child in (task / "children").read_text().split():
            try:
                environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
            except OSError:
                continue
            if f"LOCAL_RANK={rank}".encode() in environ:
                return int(child)
    return None


@pytest.mark.skipif(
    not Path("/proc/self/task").is_dir(), reason="needs Linux /proc to find workers"
)
def test_a_dead_worker_fails_the_run_and_resume_finishes_it(small_coco, tmp_path):
    out, data = tmp_path / "ddp", tmp_path / "data"
    # The source's loop (no feature cache): slow enough to kill a worker in the middle.
    settings = {"epochs": 3, "batch_size": 4, "cache_features": False}
    proc = _torchrun(small_coco, out, data, **settings)
    try:
        deadline = time.time() + 240
        while not (out / "last.pt").exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert (out / "last.pt").exists(), proc.communicate()[1][-2000:]
        worker = _worker(proc.pid, 1)
        assert worker is not None
        os.kill(worker, signal.SIGKILL)
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
        proc.wait()
    assert proc.returncode != 0
    assert "FAILED" in stderr and "SIGKILL" in stderr  # torchrun names the worker and its end
    assert read_checkpoint(out / "last.pt")["epoch"] in (1, 2)

    again = _torchrun(small_coco, out, data, **settings)
    stdout, stderr = again.communicate(timeout=300)
    assert again.returncode == 0, stderr[-2000:]
    assert "resuming from" in stdout
    assert read_checkpoint(out / "last.pt")["epoch"] == 3
