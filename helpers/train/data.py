"""The data a run trains on: captions with images, cached image features or cached clip
features, the vocabulary, and one sampler for one process or many."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data.distributed import DistributedSampler

from helpers.data.clip_cache import ClipCaptions, ensure_clip_features
from helpers.data.features import CachedCaptions, ensure_features
from helpers.data.images import eval_transform, train_transform
from helpers.data.loaders import CocoCaptionDataset, caption_loader
from helpers.data.paths import data_dir
from helpers.data.resize import ensure_resized
from helpers.data.video import VideoItem, load_videos
from helpers.data.vocabulary import action_vocabulary, ensure_vocabulary
from helpers.distributed import Distributed
from helpers.environment import worker_count
from helpers.errors import CourseError
from helpers.train.config import TrainConfig


def image_captions(cfg: TrainConfig, vocab, split: str, transform=None) -> CocoCaptionDataset:
    """A split's captions with its images, resized once to cfg.resize (resized when missing)."""
    where = cfg.data.split(split)
    return CocoCaptionDataset(
        ensure_resized(cfg.data, split, cfg.resize), where.annotations, vocab, transform
    )


def feature_cache_path(cfg: TrainConfig, split: str) -> Path:
    """Where the cached features of a split live: data_dir/features/<dataset>_<split>_<...>.pt."""
    # One vector per image and a grid per image are different caches: both decoders keep theirs.
    what = cfg.kind.cache_tag(dataclasses.asdict(cfg))
    if cfg.data.video:
        what = what + f"_t{cfg.frames}" + ("_motion" if cfg.motion else "")
    # Another seed crops (and pretrains) differently: its own file, so seeds do not evict each other.
    seed = f"_seed{cfg.seed}" if cfg.seed else ""
    name = f"{cfg.data.key}_{split}_{cfg.backbone}_{cfg.resize}_{cfg.crop}{what}{seed}.pt"
    return data_dir() / "features" / name


def _cached(cfg: TrainConfig, vocab, split: str, encoder, run: Distributed, progress: bool):
    """A split's captions with its cached features (each process extracts a share when building)."""
    captions = image_captions(cfg, vocab, split)
    extractor, kind = encoder.feature_extractor()
    features = ensure_features(
        feature_cache_path(cfg, split),
        extractor,
        cfg.backbone,
        captions.image_files(),
        cfg.crop,
        cfg.views if split == "train" else 1,
        cfg.flip,
        cfg.seed,
        progress,
        cfg.num_workers,
        run,
        kind,
    )
    return CachedCaptions(captions, features)


def video_items(cfg: TrainConfig, split: str, report: bool = True) -> list[VideoItem]:
    """A video split's clips that have a file and captions; those left out are counted and named."""
    where = cfg.data.video_split(split)
    items, skipped = load_videos(where.annotations, where.videos, where.name)
    if skipped and report:
        print(f"{where.name}: {len(skipped)} videos left out, e.g. {skipped[0]}")
    if not items:
        raise CourseError(f"{where.annotations}: no usable video in split {where.name!r}")
    return items


def clip_cache(
    cfg: TrainConfig, split: str, encoder: nn.Module, items: list[VideoItem], progress: bool = True
) -> torch.Tensor:
    """The frozen CNN's features of every clip of a video split, (clips, T, F), or one tube per
    place (clips, L, T*C) for a grid encoder: built when missing."""
    extractor, output = encoder.feature_extractor()
    return ensure_clip_features(
        feature_cache_path(cfg, split),
        extractor,
        cfg.backbone,
        items,
        cfg.frames,
        cfg.resize,
        cfg.crop,
        progress,
        cfg.motion,
        output,
    )


def _clips(cfg: TrainConfig, vocab, split: str, encoder, run: Distributed, progress: bool):
    """A video split's captions (or actions, for lrcn) with the cached features of its frames."""
    items = video_items(cfg, split, report=run.main)  # left-out videos are said, bars or not
    if not run.main:
        dist.barrier()  # rank 0 builds the cache, the others read it
    features = clip_cache(cfg, split, encoder, items, progress)
    if run.main and run.world > 1:
        dist.barrier()
    data = ClipCaptions(items, features, vocab, actions=cfg.kind.labels)
    if cfg.kind.labels and run.main and len(data) < len(items):
        print(f"{split}: {len(items) - len(data)} clips with two actors left out (one label each)")
    return data


def run_vocabulary(cfg: TrainConfig, progress: bool):
    """The words to caption with, or for a classifier (lrcn) the action names of the train clips."""
    if cfg.kind.labels:
        return action_vocabulary(video_items(cfg, "train", report=False))
    return ensure_vocabulary(cfg.data, cfg.threshold, progress=progress)


def loaders(cfg: TrainConfig, vocab, encoder, run: Distributed, progress: bool):
    """Train and val loaders (this process's share of each), and the train dataset for set_epoch."""
    if cfg.batch_size % run.world:
        raise CourseError(
            f"batch size {cfg.batch_size} does not split over {run.world} processes; "
            f"use a multiple of {run.world}"
        )
    if cfg.data.video:
        train_data = _clips(cfg, vocab, "train", encoder, run, progress)
        val_data = _clips(cfg, vocab, "val", encoder, run, progress)
        workers = 0
    elif cfg.cached:
        train_data = _cached(cfg, vocab, "train", encoder, run, progress)
        val_data = _cached(cfg, vocab, "val", encoder, run, progress)
        workers = 0  # the features are in memory: extra processes would only copy them
    else:
        train_data = image_captions(cfg, vocab, "train", train_transform(cfg.crop, cfg.flip))
        val_data = image_captions(cfg, vocab, "val", eval_transform(cfg.crop))
        workers = worker_count(cfg.num_workers)  # never more processes than cores
    # One sampler for one process or many: epoch e's order is the same whether or not we resumed,
    # and a single process sees exactly the union of what the processes of a distributed run see.
    sampler = DistributedSampler(train_data, run.world, run.rank, shuffle=True, seed=cfg.seed)
    per_process = cfg.batch_size // run.world
    pin = run.device.type == "cuda"
    train = caption_loader(
        train_data, per_process, sampler=sampler, num_workers=workers, pin_memory=pin
    )
    val_share = range(run.rank, len(val_data), run.world)  # each val caption counted once
    val = caption_loader(
        val_data, per_process, sampler=val_share, num_workers=workers, pin_memory=pin
    )
    return train, val, sampler
