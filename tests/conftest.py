"""Shared fixtures: a small tiny COCO built once per test session, the real COCO sample, and
untrained checkpoints made in a second."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import torch

from helpers.data.tiny_coco import generate_tiny_coco
from helpers.models.checkpoint import save_checkpoint
from helpers.models.registry import build_models
from helpers.train.config import TrainConfig

SHARED_SAMPLE = Path(__file__).resolve().parents[2] / "shared" / "coco_sample"


@pytest.fixture(scope="session")
def small_coco(tmp_path_factory) -> Path:
    """A tiny COCO of 60 train and 20 val images (built in well under a second)."""
    return generate_tiny_coco(
        tmp_path_factory.mktemp("data") / "tiny", seed=3, n_train=60, n_val=20
    )


@pytest.fixture(scope="session")
def coco_sample() -> Path:
    """The real COCO val2017 sample beside the project; skipped when absent (a user's clone)."""
    if not (SHARED_SAMPLE / "captions.json").is_file():
        pytest.skip(
            f"real COCO sample not found at {SHARED_SAMPLE} (only the course's CI machines have it)"
        )
    return SHARED_SAMPLE


@pytest.fixture(scope="session")
def small_config():
    """Make a TrainConfig that trains in a second or two per epoch on the small_coco fixture."""

    def make(dataset: Path, **changes) -> TrainConfig:
        base = dict(dataset=str(dataset), embedding_size=32, hidden_size=32, resize=40, crop=32)
        base.update(batch_size=16, epochs=2, pretrain_epochs=1)
        return TrainConfig(**{**base, **changes})

    return make


def write_untrained_checkpoint(path: Path, cfg: TrainConfig, vocab, prepare=None) -> Path:
    """An untrained checkpoint of a config and vocabulary (seeded): enough to load and caption with.
    `prepare(encoder)` may change the encoder's weights before they are saved."""
    torch.manual_seed(0)
    encoder, decoder = build_models(dataclasses.asdict(cfg), len(vocab))
    if prepare is not None:
        prepare(encoder)
    save_checkpoint(
        path,
        encoder=encoder.state_dict(),
        decoder=decoder.state_dict(),
        optimizer={},
        epoch=1,
        step=1,
        config=dataclasses.asdict(cfg),
        vocab_size=len(vocab),
        vocabulary=list(vocab.id_to_word),
        history={},
    )
    return path


def write_audio_only(path: Path) -> Path:
    """A short AAC file with no video stream, in an MP4 container (what a video reader must refuse)."""
    import av
    import numpy as np

    with av.open(str(path), mode="w") as container:
        stream = container.add_stream("aac", rate=16000)
        samples = np.zeros((1, 1024), np.float32)
        for _ in range(4):
            frame = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
            frame.sample_rate = 16000
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def folder_snapshot(folder: Path) -> dict[str, str]:
    """Every file under `folder` (links as their targets) with a hash of its bytes."""
    import hashlib

    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }
