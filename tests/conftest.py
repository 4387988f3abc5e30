"""Shared fixtures: a small tiny COCO built once per test session, and the real COCO sample."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers.tiny_coco import generate_tiny_coco
from helpers.train import TrainConfig

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
