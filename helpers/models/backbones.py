"""The CNNs that turn an image into features: the small CNN that learns offline in a minute,
torchvision's ResNets, and their last feature map as a grid of places (attention)."""

from __future__ import annotations

import os
from pathlib import Path
from urllib.error import URLError

import torch
from torch import nn
from torchvision import models

from helpers.errors import CourseError

CHECKPOINT_FORMAT = "captioning-course checkpoint"  # helpers.models.checkpoint writes it


RESNETS = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")


BACKBONES = ("small", *RESNETS)


class SmallCNN(nn.Module):
    """Four conv + max-pool blocks that learn from scratch in a minute on a CPU (the tiny default)."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        layers, channels = [], 3
        for out in (width, width * 2, width * 4, width * 8):
            # Max-pooling after each convolution learns outlines (star or circle?) much faster than
            # strided convolutions do: measured on the tiny COCO's shapes.
            layers += [
                nn.Conv2d(channels, out, 3, padding=1, bias=False),
                nn.BatchNorm2d(out),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]
            channels = out
        self.features = nn.Sequential(*layers)
        # A 2x2 grid keeps where things are (left, right, top, bottom), which plain averaging loses.
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.out_features = channels * 4

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        # Channels last: these small convolutions run faster on a CPU (benchmarks/kernel_speed.py).
        images = images.contiguous(memory_format=torch.channels_last)
        return self.pool(self.features(images)).flatten(1)


def build_backbone(name: str = "resnet152", weights: str | os.PathLike | None = None) -> nn.Module:
    """A CNN without its classifier, with `out_features`.

    `weights`: None (random), a torchvision name such as "IMAGENET1K_V1" (ResNets), a local copy
    of a torchvision weights file, or a checkpoint of this course: its encoder's backbone.
    """
    path = weights_file(weights)
    state, ours = _read_weights(path, name) if path is not None else (None, False)
    if name == "small":
        if weights is not None and not ours:
            raise CourseError(
                "backbone 'small' has no pretrained weights; use weights=None, or a checkpoint "
                "of this course trained with the small backbone"
            )
        net = SmallCNN()
    elif name not in RESNETS:
        raise CourseError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    else:
        try:
            net = models.get_model(name, weights=None if path else weights)
        except (URLError, OSError, RuntimeError) as err:
            enum = models.get_model_weights(name).__name__
            raise CourseError(
                f"cannot download {enum}.{weights} ({type(err).__name__}: no network?); pass "
                f"weights='path/to/{name}.pth' (a local copy of the torchvision file) or "
                "weights=None to train from scratch"
            ) from None
        except (KeyError, ValueError) as err:
            raise CourseError(f"unknown weights {weights!r} for {name}: {err}") from None
        net.out_features = net.fc.in_features
        if ours:
            net.fc = (
                nn.Identity()
            )  # a course checkpoint keeps no classifier; torchvision's files do
    if state is not None:
        try:
            net.load_state_dict(state)
        except RuntimeError as err:
            first = str(err).strip().splitlines()[0]
            raise CourseError(f"{path}: not {name} weights ({first})") from None
    if name != "small":
        net.fc = nn.Identity()  # the source removes the last fc layer: features, not 1000 classes
    return net


def weights_file(weights: str | os.PathLike | None) -> Path | None:
    """The local file `weights` names (checked to exist), or None for a torchvision name or None."""
    # A path (a file that exists, or anything with a folder separator or a suffix) is a local
    # weights file; torchvision's names ("IMAGENET1K_V1", "DEFAULT") have neither.
    is_path = weights is not None and (
        isinstance(weights, os.PathLike)
        or "/" in weights
        or Path(weights).suffix != ""
        or Path(weights).is_file()
    )
    if not is_path:
        return None
    if not Path(weights).is_file():
        raise CourseError(f"{weights}: weights file not found")
    return Path(weights)


def _read_weights(path: Path, name: str) -> tuple[dict, bool]:
    """A weights file's state dict, and whether it came from a checkpoint of this course."""
    with open(path, "rb") as f:
        head = f.read(4)
    if head[:2] != b"PK" and head[:1] != b"\x80":  # torch.save's zip archive, or the older pickle
        raise CourseError(f"{path}: not {name} weights (not a file that torch.save wrote)")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    # Any file can be given here (a captions JSON, a text file): whatever the unpickler raises on
    # bytes that are no weights is one line.
    except Exception as err:
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise CourseError(f"{path}: not {name} weights ({first[:120]})") from None
    if not (isinstance(state, dict) and state.get("format") == CHECKPOINT_FORMAT):
        return state, False
    trained = state.get("config", {}).get("backbone")
    if trained != name:
        raise CourseError(f"{path}: a checkpoint with backbone {trained!r}, not {name!r}")
    prefix = "backbone."
    return {k[len(prefix) :]: v for k, v in state["encoder"].items() if k.startswith(prefix)}, True


def grid_features(backbone: nn.Module, images: torch.Tensor, grid: int = 0) -> torch.Tensor:
    """The backbone's last feature map before pooling, as L = H x W vectors: (B, L, C).

    The small CNN stops before its last max-pool (8x8 at a 64 px crop); a ResNet before its
    average pool (7x7 at 224 px). `grid` > 0 pools the map to grid x grid (14 for real COCO, as
    the reference implementations do).
    """
    images = images.contiguous(memory_format=torch.channels_last)  # as SmallCNN.forward: faster
    if isinstance(backbone, SmallCNN):
        x = backbone.features[:-1](images)  # all but the last max-pool
    else:
        b = backbone
        x = b.maxpool(b.relu(b.bn1(b.conv1(images))))
        x = b.layer4(b.layer3(b.layer2(b.layer1(x))))
    if grid:
        x = nn.functional.adaptive_avg_pool2d(x, grid)
    return x.flatten(2).transpose(1, 2)


class GridFeatures(nn.Module):
    """A backbone as the feature cache runs it: images in, (B, L, C) grids out."""

    def __init__(self, backbone: nn.Module, grid: int = 0) -> None:
        super().__init__()
        self.backbone, self.grid = backbone, grid

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return grid_features(self.backbone, images, self.grid)
