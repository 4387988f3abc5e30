"""The chapter's training loop, made real: validation, atomic checkpoints each epoch, resume; CLI.

Also fast and scalable: with a frozen backbone its features are computed once and cached
(helpers.features), and the same loop runs under torchrun on many GPUs or processes (DDP).
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import math
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.nn.utils.rnn import pack_padded_sequence
from torch.utils.data.distributed import DistributedSampler
from tqdm import tqdm

from helpers.checkpoint import BEST, LAST, SIZES, best_checkpoint, read_checkpoint, save_checkpoint
from helpers.checks import arg, finite, non_negative, parser, positive, warn, writable_folder
from helpers.checks import device as check_device
from helpers.coco import CocoCaptionDataset, caption_loader
from helpers.datasets import (
    data_dir,
    dataset_name,
    dataset_split,
    in_data_dir,
    is_video_dataset,
    known_dataset,
    video_split,
)
from helpers.distributed import Distributed, setup_distributed, sum_across
from helpers.errors import CourseError, run_cli
from helpers.features import CachedCaptions, ensure_features
from helpers.images import ensure_resized, eval_transform, load_rgb, train_transform
from helpers.models import BACKBONES, DECODERS, build_models, weights_file
from helpers.video import (
    ClipCaptions,
    VideoItem,
    action_vocabulary,
    ensure_clip_features,
    load_videos,
)
from helpers.vocabulary import ensure_vocabulary

# A run may be resumed with more epochs, other loader workers or mixed precision; any other change
# is a new run.
RESUMABLE = ("epochs", "num_workers", "amp")


# Settings that are counts or sizes of at least 1.
POSITIVE = ("views", "threshold", "batch_size", "attention_size", "frames", *SIZES)
# Weights that may be 0 (off); the other floats must be above 0.
OPTIONAL_WEIGHTS = ("attention_penalty",)


@dataclass
class TrainConfig:
    """Everything that defines a run; stored in each checkpoint so the model can be rebuilt."""

    dataset: str = "tiny"  # "tiny", "coco2014" (data_dir/coco), a COCO-layout folder, "tiny_video" or an MSR-VTT-layout folder
    backbone: str = "small"  # "small" (learns from scratch) or resnet18/34/50/101/152
    decoder: str = "lstm"  # "lstm" (the chapter's), "attention" (Show, Attend and Tell) or "lrcn" (video: actions)
    weights: str | None = None  # "IMAGENET1K_V1", a .pth file, or a course checkpoint (.pt)
    freeze: bool = True  # as the source: only Linear + BatchNorm + the decoder learn (small: after pretraining)
    cache_features: bool = True  # frozen backbone: its features once per image, not per caption
    views: int = 8  # cached views per training image: centre crop (+ mirror) + random crops
    embedding_size: int = 256  # the image embedding and each word embedding
    hidden_size: int = 256  # the LSTM's memory (the source: 512)
    num_layers: int = 1  # stacked LSTM layers
    max_seq_len: int = 20  # the longest caption greedy sampling writes
    resize: int = 56  # images are resized once to resize x resize (the source: 256) ...
    crop: int = 48  # ... then randomly cropped to crop x crop (the source: 224)
    flip: bool = False  # the tiny captions say left/right, which a flip would falsify
    threshold: int = 4  # words seen fewer times become <unk>
    batch_size: int = 32  # the global batch: split over the processes of a distributed run
    epochs: int = 15  # captioning epochs in all (more continue a finished run)
    pretrain_epochs: int = 30  # bag-of-words pretraining of a backbone without weights (0: none)
    lr: float = 2e-3  # Adam's learning rate (the source: 1e-3)
    clip: float = 5.0  # gradient norm clipping
    seed: int = 0  # weights, shuffling, crops: the same seed, the same run on a CPU
    num_workers: int = 0  # image-loading processes; 4-8 on real COCO without the feature cache
    amp: bool = False  # mixed precision on CUDA (bf16 where supported, else fp16 with scaling)
    grid: int = 0  # attention: pool the feature map to grid x grid (0: as the backbone gives it; 14 for COCO)
    attention_size: int = 256  # attention: the size of the layer that scores each place
    attention_penalty: float = 0.0  # attention: doubly stochastic regulariser (paper: 1)
    frames: int = 1  # video: frames per clip, one per LSTM step (1: the middle frame)
    motion: bool = False  # video: also each frame's difference from the one before (LRCN's flow stream, in miniature)
    pool: str = "last"  # lrcn: classify from the last step, or "mean" over the steps as LRCN does

    def __post_init__(self) -> None:
        # A weights file named relative to here or in full is the same run (resume, ensure_checkpoint).
        if self.weights is not None and Path(self.weights).is_file():
            self.weights = str(Path(self.weights).resolve())

    def check(self) -> TrainConfig:
        """Every value checked before any work: one line naming the setting, else the config."""
        for name in POSITIVE:
            positive(name, getattr(self, name))
        for name in ("epochs", "pretrain_epochs", "num_workers", "seed"):
            non_negative(name, getattr(self, name))
        for name in ("lr", "clip"):
            finite(name, getattr(self, name), minimum=0.0, above=True)
        for name in OPTIONAL_WEIGHTS:
            finite(name, getattr(self, name), minimum=0.0)
        non_negative("grid", self.grid)
        weights_file(self.weights)  # a weights file that is not there: now, not after the data
        if self.decoder not in DECODERS:
            raise CourseError(f"decoder must be one of {', '.join(DECODERS)}, got {self.decoder!r}")
        if self.decoder == "attention" and self.num_layers != 1:
            raise CourseError(
                f"num_layers must be 1 with the attention decoder (one LSTMCell), got {self.num_layers}"
            )
        if self.backbone not in BACKBONES:
            raise CourseError(
                f"backbone must be one of {', '.join(BACKBONES)}, got {self.backbone!r}"
            )
        if self.pool not in ("last", "mean"):
            raise CourseError(f"pool must be 'last' or 'mean', got {self.pool!r}")
        # A mistyped folder holds neither images nor videos: say so, not "holds images" below.
        known_dataset(self.dataset)
        video = is_video_dataset(self.dataset)
        if not video and (self.frames > 1 or self.motion or self.decoder == "lrcn"):
            raise CourseError(
                f"frames, motion and the lrcn decoder are for video datasets; {self.dataset!r} "
                "holds images (use --dataset tiny_video or an MSR-VTT-layout folder)"
            )
        if video and self.decoder == "attention":
            raise CourseError("the attention decoder takes images; use lstm or lrcn for video")
        if video and not self.cached:
            raise CourseError(
                "video runs train from cached frame features: keep --freeze and --cache-features"
            )
        if video and self.weights is None:
            raise CourseError(
                "a video run needs a trained backbone: --weights data_dir/checkpoints/tiny-small/"
                "best.pt (the chapter's model, python -m helpers.train) or IMAGENET1K_V1 for a ResNet"
            )
        if self.crop > self.resize:
            raise CourseError(
                f"crop {self.crop} is larger than resize {self.resize}: the crop is cut from the "
                "resized image, so it must not be larger"
            )
        return self

    def run_dir(self) -> Path:
        """Default checkpoint folder: data_dir/checkpoints/<dataset>-<backbone>[-decoder][-t<T>]."""
        suffix = "" if self.decoder == "lstm" else f"-{self.decoder}"
        if is_video_dataset(self.dataset):
            suffix += f"-t{self.frames}" + ("-motion" if self.motion else "")
        return data_dir() / "checkpoints" / f"{dataset_name(self.dataset)}-{self.backbone}{suffix}"

    @property
    def cached(self) -> bool:
        """Whether training reads cached features (only a frozen backbone's can be cached)."""
        return self.freeze and self.cache_features


@dataclass
class History:
    """What training measured: per epoch and per step, all plain numbers (stored in checkpoints)."""

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    step_loss: list[float] = field(default_factory=list)
    pretrain_loss: list[float] = field(default_factory=list)
    pretrain_seconds: float = 0.0
    features_seconds: float = 0.0  # building (or loading) the feature cache

    @property
    def val_perplexity(self) -> list[float]:
        """exp(loss): roughly how many words the model hesitates between at each step."""
        return [math.exp(v) for v in self.val_loss]


def _captions(cfg: TrainConfig, vocab, split: str, transform=None) -> CocoCaptionDataset:
    where = dataset_split(cfg.dataset, split)
    return CocoCaptionDataset(
        ensure_resized(cfg.dataset, split, cfg.resize), where.annotations, vocab, transform
    )


def feature_cache_path(cfg: TrainConfig, split: str) -> Path:
    """Where the cached features of a split live: data_dir/features/<dataset>_<split>_<...>.pt."""
    # One vector per image and a grid per image are different caches: both decoders keep theirs.
    grid = f"_grid{cfg.grid or ''}" if cfg.decoder == "attention" else ""
    if is_video_dataset(cfg.dataset):
        grid = f"_t{cfg.frames}" + ("_motion" if cfg.motion else "")
    # Another seed crops (and pretrains) differently: its own file, so seeds do not evict each other.
    seed = f"_seed{cfg.seed}" if cfg.seed else ""
    name = (
        f"{dataset_name(cfg.dataset)}_{split}_{cfg.backbone}_{cfg.resize}_{cfg.crop}{grid}{seed}.pt"
    )
    return data_dir() / "features" / name


def _cached(cfg: TrainConfig, vocab, split: str, encoder, run: Distributed, progress: bool):
    """A split's captions with its cached features (each process extracts a share when building)."""
    captions = _captions(cfg, vocab, split)
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
    where = video_split(cfg.dataset, split)
    items, skipped = load_videos(where.annotations, where.videos, where.name)
    if skipped and report:
        print(f"{where.name}: {len(skipped)} videos left out, e.g. {skipped[0]}")
    if not items:
        raise CourseError(f"{where.annotations}: no usable video in split {where.name!r}")
    return items


def clip_cache(
    cfg: TrainConfig, split: str, backbone: nn.Module, items: list[VideoItem], progress: bool = True
) -> torch.Tensor:
    """The frozen CNN's features of every clip of a video split, (clips, T, F): built when missing."""
    return ensure_clip_features(
        feature_cache_path(cfg, split),
        backbone,
        cfg.backbone,
        items,
        cfg.frames,
        cfg.resize,
        cfg.crop,
        progress,
        cfg.motion,
    )


def _clips(cfg: TrainConfig, vocab, split: str, encoder, run: Distributed, progress: bool):
    """A video split's captions (or actions, for lrcn) with the cached features of its frames."""
    items = video_items(cfg, split, report=run.main)  # left-out videos are said, bars or not
    if not run.main:
        dist.barrier()  # rank 0 builds the cache, the others read it
    features = clip_cache(cfg, split, encoder.backbone, items, progress)
    if run.main and run.world > 1:
        dist.barrier()
    data = ClipCaptions(items, features, vocab, actions=cfg.decoder == "lrcn")
    if cfg.decoder == "lrcn" and run.main and len(data) < len(items):
        print(f"{split}: {len(items) - len(data)} clips with two actors left out (one label each)")
    return data


def _vocabulary(cfg: TrainConfig, progress: bool):
    """The words to caption with, or for lrcn the action names of the train clips."""
    if cfg.decoder == "lrcn":
        return action_vocabulary(video_items(cfg, "train", report=False))
    return ensure_vocabulary(cfg.dataset, cfg.threshold, progress=progress)


def _loaders(cfg: TrainConfig, vocab, encoder, run: Distributed, progress: bool):
    """Train and val loaders (this process's share of each), and the train dataset for set_epoch."""
    if cfg.batch_size % run.world:
        raise CourseError(
            f"batch size {cfg.batch_size} does not split over {run.world} processes; "
            f"use a multiple of {run.world}"
        )
    if is_video_dataset(cfg.dataset):
        train_data = _clips(cfg, vocab, "train", encoder, run, progress)
        val_data = _clips(cfg, vocab, "val", encoder, run, progress)
        workers = 0
    elif cfg.cached:
        train_data = _cached(cfg, vocab, "train", encoder, run, progress)
        val_data = _cached(cfg, vocab, "val", encoder, run, progress)
        workers = 0  # the features are in memory: extra processes would only copy them
    else:
        train_data = _captions(cfg, vocab, "train", train_transform(cfg.crop, cfg.flip))
        val_data = _captions(cfg, vocab, "val", eval_transform(cfg.crop))
        workers = cfg.num_workers
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


class WordsInImage(torch.utils.data.Dataset):
    """Each image once, with a multi-hot target of the words its captions use (no <unk> etc.)."""

    def __init__(self, captions: CocoCaptionDataset, transform) -> None:
        self.captions, self.transform = captions, transform
        self.targets = torch.zeros(len(captions.image_ids), len(captions.vocab))
        for row, image_id in enumerate(captions.image_ids):
            for text in captions.captions(image_id):
                self.targets[row, captions.vocab.encode(text)] = 1
        self.targets[:, :4] = 0  # <pad>, <start>, <end>, <unk> say nothing about the picture

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        image_id = self.captions.image_ids[i]
        return self.transform(load_rgb(self.captions.image_path(image_id))), self.targets[i]


def pretrain_encoder(
    encoder, cfg: TrainConfig, vocab, device, progress: bool = True
) -> list[float]:
    """Teach the backbone to see which words describe an image, before it learns to caption.

    The source starts from a ResNet pretrained on ImageNet. Offline there is no such download, so
    a small CNN gets its pretraining from the captions themselves, in seconds: a multi-label
    classifier of the words an image's captions contain. Returns the loss of each epoch. A frozen
    backbone is trained here all the same, and frozen again afterwards.
    """
    data = WordsInImage(_captions(cfg, vocab, "train"), train_transform(cfg.crop, cfg.flip))
    loader = torch.utils.data.DataLoader(
        data,
        cfg.batch_size,
        shuffle=True,
        num_workers=cfg.num_workers,
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    backbone = encoder.backbone
    backbone.requires_grad_(True)
    head = nn.Linear(backbone.out_features, len(vocab)).to(device)
    optimizer = torch.optim.Adam([*backbone.parameters(), *head.parameters()], lr=cfg.lr)
    backbone.train()
    losses = []
    for _ in tqdm(range(cfg.pretrain_epochs), desc="pretraining the encoder", disable=not progress):
        total = 0.0
        for images, targets in loader:
            logits = head(backbone(images.to(device)))
            loss = nn.functional.binary_cross_entropy_with_logits(logits, targets.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item()
        losses.append(total / len(loader))
    backbone.requires_grad_(not encoder.freeze)
    encoder.train(encoder.training)  # puts a frozen backbone back in eval mode
    return losses


def step_loss(encoder, decoder, batch, criterion, device) -> tuple[torch.Tensor, int]:
    """The source's loss: cross-entropy of the decoder's outputs against the packed captions."""
    images, captions, lengths = batch
    images = images.to(device, non_blocking=True)
    captions = captions.to(device, non_blocking=True)
    targets = pack_padded_sequence(captions, lengths, batch_first=True).data
    outputs = decoder(encoder(images), captions, lengths)
    return criterion(outputs, targets), targets.numel()


@torch.no_grad()
def validation_loss(encoder, decoder, loader, device, run: Distributed | None = None) -> float:
    """Mean cross-entropy per word on the validation split, in eval mode (over all processes)."""
    encoder.eval()
    decoder.eval()
    criterion = nn.CrossEntropyLoss(reduction="sum")
    total, words = 0.0, 0
    for batch in loader:
        loss, n = step_loss(encoder, decoder, batch, criterion, device)
        total, words = total + loss.item(), words + n
    total, words = sum_across([total, words], run or Distributed(device=torch.device(device)))
    return total / words


def _changed(old: dict, cfg: TrainConfig) -> dict:
    """Settings of a stored run that differ from `cfg` (with their stored values), besides how
    long to train and how to load."""
    new, defaults = dataclasses.asdict(cfg), dataclasses.asdict(TrainConfig())
    # A setting added since the run was stored had its default then (e.g. decoder="lstm").
    was = {k: old.get(k, defaults[k]) for k in new}
    return {k: was[k] for k in new if k not in RESUMABLE and was[k] != new[k]}


def _resume(path: Path, cfg: TrainConfig, encoder, decoder, optimizer) -> tuple[int, int, History]:
    ckpt = read_checkpoint(path)
    changed = _changed(ckpt["config"], cfg)
    if changed:
        was = ", ".join(f"{k}={v!r}" for k, v in changed.items())
        raise CourseError(
            f"{path}: was trained with other settings ({was}); use another --out folder or --fresh"
        )
    encoder.load_state_dict(ckpt["encoder"])
    decoder.load_state_dict(ckpt["decoder"])
    optimizer.load_state_dict(ckpt["optimizer"])
    return ckpt["epoch"], ckpt["step"], History(**ckpt["history"])


def _autocast(cfg: TrainConfig, run: Distributed, progress: bool):
    """Mixed precision on CUDA when asked: bf16 where the GPU has it, else fp16 (needs scaling)."""
    if not cfg.amp:
        return None
    if run.device.type != "cuda":
        if run.main and progress:
            print(f"--amp works on CUDA only: training in float32 on {run.device.type}")
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def train(
    cfg: TrainConfig | None = None,
    out: str | Path | None = None,
    resume: bool = True,
    progress: bool = True,
    device: str | torch.device | None = None,
) -> History:
    """Train encoder and decoder for `cfg.epochs`, saving out/last.pt after every epoch.

    out/best.pt is also written whenever the validation loss reaches a new low: the model that
    captioning and evaluation use by default.

    With `resume`, a run continues from out/last.pt: it starts the next epoch with the same data
    order and random crops an uninterrupted run would have used, so nothing is repeated or skipped.
    Under torchrun every process calls this; rank 0 alone writes the checkpoint and prints.
    """
    cfg = (cfg or TrainConfig()).check()
    out = Path(out) if out is not None else cfg.run_dir()
    device = check_device(device) if device is not None else None
    # The place to save is checked before minutes of training, not at the first save.
    writable_folder(out)
    for split in ("train", "val"):  # a wrong dataset name or folder: one line, now
        video_split(cfg.dataset, split) if is_video_dataset(cfg.dataset) else dataset_split(
            cfg.dataset, split
        )
    if cfg.epochs == 0 and not (resume and (out / LAST).is_file()):
        warn("epochs is 0 on a fresh run: nothing will be trained (pretraining aside)")
    run = setup_distributed(device)
    try:
        return _train(cfg, out, resume, progress and run.main, run)
    finally:
        if run.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _train(cfg: TrainConfig, out: Path, resume: bool, progress: bool, run: Distributed) -> History:
    device = run.device
    torch.manual_seed(cfg.seed)
    if not run.main:
        dist.barrier()  # rank 0 prepares the data (vocabulary, resized images) alone, first
    stage = _stage_clock(progress)
    vocab = _vocabulary(cfg, progress)
    stage("vocabulary")
    for split in ("train", "val") if not is_video_dataset(cfg.dataset) else ():
        ensure_resized(cfg.dataset, split, cfg.resize, progress=progress)
    stage("resized images")
    if run.main and run.world > 1:
        dist.barrier()
    encoder, decoder = build_models(dataclasses.asdict(cfg), len(vocab))
    encoder, decoder = encoder.to(device), decoder.to(device)
    # The source trains the decoder and the encoder's Linear + BatchNorm; a fine-tuned or small
    # backbone adds its own weights, which requires_grad tells apart.
    params = [p for p in (*encoder.parameters(), *decoder.parameters()) if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=cfg.lr)
    criterion = nn.CrossEntropyLoss()

    checkpoint = out / LAST
    start, step, history = 0, 0, History()
    if resume and checkpoint.is_file():
        start, step, history = _resume(checkpoint, cfg, encoder, decoder, optimizer)
        if run.main:
            print(f"resuming from {in_data_dir(checkpoint)} after epoch {start}, step {step}")
    elif cfg.pretrain_epochs > 0 and cfg.weights is None:  # pretrained weights know enough
        if run.main:  # the others take rank 0's pretrained backbone below
            began = time.perf_counter()
            history.pretrain_loss = pretrain_encoder(encoder, cfg, vocab, device, progress)
            history.pretrain_seconds = time.perf_counter() - began
        if run.world > 1:
            for tensor in encoder.backbone.state_dict().values():
                dist.broadcast(tensor, 0)

    stage("encoder pretraining" if history.pretrain_loss and start == 0 else "models")
    if start >= cfg.epochs:
        return history  # a finished run: no loaders, no feature cache to build or check
    began = time.perf_counter()
    train_loader, val_loader, sampler = _loaders(cfg, vocab, encoder, run, progress)
    if cfg.cached and start == 0:  # a resumed run keeps the history it had
        history.features_seconds = time.perf_counter() - began
    stage("feature cache" if cfg.cached else "data loaders")
    model_enc, model_dec = encoder, decoder
    if run.world > 1:
        ids = [device.index] if device.type == "cuda" else None
        # A frozen grid encoder (attention) has nothing to train, and DDP refuses such a module.
        if any(p.requires_grad for p in encoder.parameters()):
            model_enc = DistributedDataParallel(encoder, device_ids=ids)
        model_dec = DistributedDataParallel(decoder, device_ids=ids)
    amp = _autocast(cfg, run, progress)
    scaler = torch.amp.GradScaler("cuda", enabled=amp == torch.float16)

    for epoch in range(start, cfg.epochs):
        # Seeding by epoch makes epoch k's shuffle, crops and views the same whether or not we resumed.
        torch.manual_seed(cfg.seed * 1000 + epoch)
        sampler.set_epoch(epoch)
        if cfg.cached:
            train_loader.dataset.set_epoch(epoch)
        encoder.train()
        decoder.train()
        began, total = time.perf_counter(), 0.0
        bar = tqdm(
            train_loader,
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            disable=not progress,
            mininterval=1.0,
        )
        for batch in bar:
            with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                loss, _ = step_loss(model_enc, model_dec, batch, criterion, device)
                if cfg.decoder == "attention" and cfg.attention_penalty:
                    loss = loss + decoder.penalty(cfg.attention_penalty)  # Show, Attend and Tell's
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
            nn.utils.clip_grad_norm_(params, cfg.clip)
            scaler.step(optimizer)
            scaler.update()
            step += 1
            total += loss.item()
            history.step_loss.append(loss.item())
            bar.set_postfix(
                loss=f"{loss.item():.3f}", ppl=f"{math.exp(loss.item()):.2f}", refresh=False
            )
        bar.close()
        val = validation_loss(encoder, decoder, val_loader, device, run)
        (total,) = sum_across([total / len(train_loader)], run)
        history.epoch.append(epoch + 1)
        history.train_loss.append(total / run.world)
        history.val_loss.append(val)
        history.seconds.append(time.perf_counter() - began)
        if run.main:
            state = dict(
                encoder=encoder.state_dict(),
                decoder=decoder.state_dict(),
                optimizer=optimizer.state_dict(),
                epoch=epoch + 1,
                step=step,
                config=dataclasses.asdict(cfg),
                vocab_size=len(vocab),
                vocabulary=list(vocab.id_to_word),
                history=dataclasses.asdict(history),
            )
            save_checkpoint(checkpoint, **state)
            # Validation loss often bottoms out before the last epoch: keep that model to caption
            # with, while last.pt goes on serving resume.
            if val <= min(history.val_loss):
                save_checkpoint(out / BEST, **state)
        if progress:
            print(
                f"epoch {epoch + 1}/{cfg.epochs}: train loss {history.train_loss[-1]:.3f}, "
                f"val loss {val:.3f} (perplexity {math.exp(val):.2f}), {history.seconds[-1]:.0f} s"
            )
    stage(f"training, {cfg.epochs - start} epochs")
    return history


def _stage_clock(progress: bool):
    """A function that prints how long the stage just finished took (when progress is on)."""
    last = [time.perf_counter()]

    def done(name: str) -> None:
        now = time.perf_counter()
        if progress:
            print(f"time: {name} {now - last[0]:.1f} s")
        last[0] = now

    return done


def ensure_checkpoint(
    cfg: TrainConfig | None = None, out: str | Path | None = None, progress: bool = True
) -> Path:
    """The best checkpoint of a run trained for cfg.epochs: the existing one, or trained (resumed) now."""
    cfg = cfg or TrainConfig()
    folder = Path(out) if out is not None else cfg.run_dir()
    last = folder / LAST
    done = False
    if last.is_file():
        ckpt = read_checkpoint(last)
        done = ckpt["epoch"] >= cfg.epochs and not _changed(ckpt["config"], cfg)
    if not done:
        train(cfg, folder, progress=progress)  # resumes, or says in one line why it cannot
    return best_checkpoint(folder)


# Named groups of settings (python -m helpers.train --preset NAME; TrainConfig(**PRESETS[NAME])).
PRESETS = {
    # Real photos on a laptop CPU: a frozen ImageNet ResNet run once per photo (the centre crop and
    # its mirror, cached), the chapter's sizes, and the chapter's LSTM trained from the cache.
    "laptop": dict(
        backbone="resnet50",
        weights="IMAGENET1K_V1",
        freeze=True,
        cache_features=True,
        views=2,
        flip=True,
        resize=256,
        crop=224,
        embedding_size=256,
        hidden_size=512,
        num_layers=1,
        pretrain_epochs=0,
        epochs=10,
    ),
}


def _field_help() -> dict[str, str]:
    """Each TrainConfig field's comment in the source, so --help and the code say the same."""
    found = {}
    for line in inspect.getsource(TrainConfig).splitlines():
        field_line = re.match(r"\s+(\w+): [^=]+=[^#]+#\s*(.+)", line)
        if field_line:
            found[field_line[1]] = field_line[2].strip()
    return found


def _arg_type(name: str, default: object):
    """How a setting's command-line value is parsed and checked (one line when it is wrong)."""
    if name in POSITIVE:
        return arg(positive)
    if isinstance(default, int):
        return arg(non_negative)
    if isinstance(default, float):
        return arg(finite, float, minimum=0.0, above=name not in OPTIONAL_WEIGHTS)
    return str


def main(argv: list[str] | None = None) -> int:
    defaults = TrainConfig()
    helps = _field_help()
    p = parser("python -m helpers.train", __doc__)
    for f in dataclasses.fields(TrainConfig):
        value = getattr(defaults, f.name)
        flag = "--" + f.name.replace("_", "-")
        text = helps.get(f.name, "").replace("%", "%%")
        if isinstance(value, bool):
            p.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=value, help=text or None
            )
        else:
            p.add_argument(
                flag,
                type=_arg_type(f.name, value),
                default=value,
                help=f"{text} (default: {value})",
            )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="checkpoint folder (default: data_dir/checkpoints/<dataset>-<backbone>)",
    )
    p.add_argument(
        "--fresh", action="store_true", help="start over instead of resuming from out/last.pt"
    )
    p.add_argument("--device", default=None, help="cuda, cpu, ... (default: CUDA when available)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--preset",
        choices=list(PRESETS),
        default=None,
        help="a named group of settings, overridden by any setting given: laptop = "
        + ", ".join(f"{k}={v}" for k, v in PRESETS["laptop"].items()),
    )
    known, _ = p.parse_known_args(argv)
    if known.preset:  # the preset's values become the defaults; flags given still win
        p.set_defaults(**PRESETS[known.preset])
    args = vars(p.parse_args(argv))
    out, fresh, device, quiet = (args.pop(k) for k in ("out", "fresh", "device", "quiet"))
    args.pop("preset")
    cfg = TrainConfig(**args)
    history = train(cfg, out, resume=not fresh, progress=not quiet, device=device)
    if history.val_loss and os.environ.get("RANK", "0") == "0":  # under torchrun: rank 0 says it
        print(
            f"done: val loss {history.val_loss[-1]:.3f} after {history.epoch[-1]} epochs; checkpoint in {out or cfg.run_dir()}"
        )
    return 0


if __name__ == "__main__":
    run_cli(main)
