"""What defines a training run: the TrainConfig dataclass (checked before any work, stored in every
checkpoint), named presets, and which changes a resumed run may make."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from helpers.checks import finite, non_negative, positive
from helpers.data.paths import data_dir
from helpers.data.registry import Dataset, resolve_dataset
from helpers.environment import available_memory, size_text
from helpers.errors import CourseError
from helpers.models.backbones import BACKBONES, weights_file
from helpers.models.checkpoint import SIZES
from helpers.models.registry import Decoder, build_models, decoder_kind

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
    views: int = 4  # cached views per training image: centre crop (+ mirror) + random crops
    embedding_size: int = 128  # the image embedding and each word embedding
    hidden_size: int = 128  # the LSTM's memory (the source: 512)
    num_layers: int = 1  # stacked LSTM layers
    max_seq_len: int = 20  # the longest caption greedy sampling writes
    resize: int = 72  # images are resized once to resize x resize (the source: 256) ...
    crop: int = 64  # ... then randomly cropped to crop x crop (the source: 224)
    flip: bool = False  # the tiny captions say left/right, which a flip would falsify
    threshold: int = 4  # words seen fewer times become <unk>
    batch_size: int = 64  # the global batch: split over the processes of a distributed run
    epochs: int = 10  # captioning epochs in all (more continue a finished run)
    pretrain_epochs: int = 15  # bag-of-words pretraining of a backbone without weights (0: none)
    pretrain_pairs: int = 0  # pretraining also names the N commonest word pairs ("red circle")
    lr: float = 2e-3  # Adam's learning rate (the source: 1e-3)
    clip: float = 5.0  # gradient norm clipping
    seed: int = 0  # weights, shuffling, crops: the same seed, the same run on a CPU
    num_workers: int = 0  # image-loading processes; 4-8 on real COCO without the feature cache
    amp: bool = False  # mixed precision on CUDA (bf16 where supported, else fp16 with scaling)
    grid: int = 0  # attention: pool the feature map to grid x grid (0: as the backbone gives it; 14 for COCO)
    attention_size: int = 64  # attention: the size of the layer that scores each place
    attention_penalty: float = 0.0  # attention: doubly stochastic regulariser (paper: 1)
    gate: bool = True  # attention: the paper's gate beta, how much of the context to let in
    places: bool = True  # attention: each grid cell's x and y beside its features
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
        for name in ("epochs", "pretrain_epochs", "pretrain_pairs", "num_workers", "seed"):
            non_negative(name, getattr(self, name))
        for name in ("lr", "clip"):
            finite(name, getattr(self, name), minimum=0.0, above=True)
        for name in OPTIONAL_WEIGHTS:
            finite(name, getattr(self, name), minimum=0.0)
        non_negative("grid", self.grid)
        weights_file(self.weights)  # a weights file that is not there: now, not after the data
        kind = decoder_kind(self.decoder)
        if kind.one_layer and self.num_layers != 1:
            raise CourseError(
                f"num_layers must be 1 with the {kind.name} decoder (one LSTMCell), got {self.num_layers}"
            )
        if self.backbone not in BACKBONES:
            raise CourseError(
                f"backbone must be one of {', '.join(BACKBONES)}, got {self.backbone!r}"
            )
        if self.pool not in ("last", "mean"):
            raise CourseError(f"pool must be 'last' or 'mean', got {self.pool!r}")
        video = self.data.video  # a mistyped folder is one line here, naming it
        if not video and (self.frames > 1 or self.motion or not kind.images):
            raise CourseError(
                f"frames, motion and the lrcn decoder are for video datasets; {self.dataset!r} "
                "holds images (use --dataset tiny_video or an MSR-VTT-layout folder)"
            )
        if video and not self.cached:
            raise CourseError(
                "video runs train from cached frame features: keep --freeze and --cache-features"
            )
        if video and self.weights is None:
            raise CourseError(
                "a video run needs a trained backbone: --weights data_dir/checkpoints/tiny-small/"
                "best.pt (the chapter's model, python -m helpers.train) or IMAGENET1K_V1 for a ResNet"
            )
        if self.resize**2 > Image.MAX_IMAGE_PIXELS:  # the copies could not be read back
            side = math.isqrt(Image.MAX_IMAGE_PIXELS)
            raise CourseError(
                f"resize {self.resize} makes images of {self.resize**2:,} pixels, over Pillow's "
                f"safety limit of {Image.MAX_IMAGE_PIXELS:,} ({side} x {side}); the source uses 256"
            )
        if self.crop > self.resize:
            raise CourseError(
                f"crop {self.crop} is larger than resize {self.resize}: the crop is cut from the "
                "resized image, so it must not be larger"
            )
        return self

    @property
    def data(self) -> Dataset:
        """The dataset these settings name, resolved: its key, its splits, whether it is video."""
        return resolve_dataset(self.dataset)

    @property
    def kind(self) -> Decoder:
        """The decoder these settings name, resolved: what it builds, takes and gives."""
        return decoder_kind(self.decoder)

    def run_dir(self) -> Path:
        """Default checkpoint folder: data_dir/checkpoints/<dataset>-<backbone>[-decoder][-t<T>]."""
        suffix = self.kind.run_tag()
        if self.data.video:
            suffix += f"-t{self.frames}" + ("-motion" if self.motion else "")
        return data_dir() / "checkpoints" / f"{self.data.key}-{self.backbone}{suffix}"

    @property
    def cached(self) -> bool:
        """Whether training reads cached features (only a frozen backbone's can be cached)."""
        return self.freeze and self.cache_features


def check_fits(cfg: TrainConfig, vocab_size: int, device: torch.device | str = "cpu") -> None:
    """The sizes checked against what the backbone and the memory can take, before any work: one
    line naming the sizes when the crop is too small or training cannot fit in memory."""
    # Built on the meta device: shapes and parameter counts without allocating a byte.
    with torch.device("meta"):
        encoder, decoder = build_models({**dataclasses.asdict(cfg), "weights": None}, vocab_size)
        try:
            encoder.backbone.eval()(torch.empty(2, 3, cfg.crop, cfg.crop))
        except RuntimeError as err:
            first = str(err).strip().splitlines()[0][:100]
            raise CourseError(
                f"crop {cfg.crop} is too small for the {cfg.backbone} backbone ({first}); "
                f"the tiny course uses 64, the source 224"
            ) from None
    params = [p for model in (encoder, decoder) for p in model.parameters()]
    weights = sum(p.numel() for p in params)
    trained = sum(p.numel() for p in params if p.requires_grad)
    # float32 weights, and for each trained one its gradient and Adam's two averages; one batch of
    # images besides (activations come on top: this is the least that is needed).
    need = 4 * (weights + 3 * trained) + 4 * cfg.batch_size * 3 * cfg.crop**2
    free = available_memory(device)
    if free is not None and need > free:
        raise CourseError(
            f"embedding_size {cfg.embedding_size}, hidden_size {cfg.hidden_size}, batch_size "
            f"{cfg.batch_size} and crop {cfg.crop} with {vocab_size:,} words need at least "
            f"{size_text(need)} ({weights:,} weights and their training state), but "
            f"{torch.device(device).type} has {size_text(free)} free; choose smaller sizes"
        )


def changed_settings(old: dict, cfg: TrainConfig) -> dict:
    """Settings of a stored run that differ from `cfg` (with their stored values), besides how
    long to train and how to load."""
    new, defaults = dataclasses.asdict(cfg), dataclasses.asdict(TrainConfig())
    # A setting added since the run was stored had its default then (e.g. decoder="lstm").
    was = {k: old.get(k, defaults[k]) for k in new}
    return {k: was[k] for k in new if k not in RESUMABLE and was[k] != new[k]}


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
