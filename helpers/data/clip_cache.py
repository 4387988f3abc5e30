"""The feature cache of every clip's frames: a frozen CNN reads each clip once, and the (features,
caption ids) items that video models train on."""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from helpers.data.features import FORMAT as FEATURES_FORMAT
from helpers.data.features import (
    images_digest,
    output_shape,
    read_cache,
    save_cache,
    weights_digest,
)
from helpers.data.images import MEAN, STD
from helpers.data.paths import in_data_dir
from helpers.data.video import (
    VideoItem,
    action_label,
    clip_tensor,
    frame_count,
    frames_to_read,
    read_clip,
)
from helpers.environment import available_memory, size_text, thread_policy, usable_cores
from helpers.errors import CourseError

CLIPS_PER_BATCH = 8  # clips whose frames go through the CNN together


@torch.inference_mode()
def clip_features(backbone: nn.Module, frames: torch.Tensor, motion: bool = False) -> torch.Tensor:
    """The CNN's features of each frame, (T, F); with `motion`, also of each frame's difference from
    the one before, side by side (T, 2F), from T + 1 frames.

    The difference is LRCN's optical-flow stream in miniature: it is zero where nothing changed, so
    a shape that stays still and one that spins or changes colour look different at once.

    A backbone that gives a grid per frame (GridFeatures, (T, L, C)) gives one "tube" per place
    instead, (L, T*C) (T*2C with `motion`): what that place showed over the whole clip, so that
    attention can choose one shape and still see what it did.
    """

    def run(x: torch.Tensor) -> torch.Tensor:
        out = backbone(x)
        return out if out.dim() == 3 else out.flatten(1)  # a grid (T, L, C), or vectors (T, F)

    if motion:
        now, before = frames[1:], frames[:-1]
        features = torch.cat([run(now), run(now - before)], -1).float()
    else:
        features = run(frames).float()
    if features.dim() == 3:
        features = features.transpose(0, 1).flatten(1)  # (L, T*C): one tube per place
    return features


@torch.inference_mode()
def clips_features(backbone: nn.Module, clips: list[torch.Tensor], motion: bool = False) -> list:
    """clip_features of several clips (each (T, 3, H, W), T + 1 with `motion`), the frames of all
    of them through the CNN at once: the same rows, in fewer and larger batches."""
    if not clips:
        return []
    now = [c[1:] for c in clips] if motion else clips
    sizes = [len(c) for c in now]

    def run(frames: list[torch.Tensor]) -> tuple[torch.Tensor, ...]:
        out = backbone(torch.cat(frames))
        return (out if out.dim() == 3 else out.flatten(1)).float().split(sizes)

    rows = run(now)
    if motion:  # each frame beside its difference from the one before
        moves = run([c[1:] - c[:-1] for c in clips])
        rows = [torch.cat(pair, -1) for pair in zip(rows, moves, strict=True)]
    # A grid per frame (T, L, C) becomes one tube per place, (L, T*C), as in clip_features.
    return [r.transpose(0, 1).flatten(1) if r.dim() == 3 else r for r in rows]


class _Frames(Dataset):
    """Each clip's sampled frames as the CNN takes them, decoded (in a worker process) on demand."""

    def __init__(self, items: list[VideoItem], count: int, resize: int, crop: int) -> None:
        self.items, self.count, self.resize, self.crop = items, count, resize, crop

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int) -> torch.Tensor:
        clip = read_clip(self.items[i].path, self.count, size=self.resize)
        return clip_tensor(clip, self.crop)


@torch.inference_mode()
def ensure_clip_features(
    path: str | os.PathLike,
    backbone: nn.Module,
    backbone_name: str,
    items: list[VideoItem],
    t: int = 8,
    resize: int = 56,
    crop: int = 48,
    progress: bool = True,
    motion: bool = False,
    output: str = "vector",
) -> torch.Tensor:
    """The frozen CNN's features of T frames of every clip, (clips, T, F) (2F with `motion`), or of
    every place over the T frames for a grid backbone (`output` "grid...": (clips, L, T*C)):
    cached at `path`, reused while the key matches (backbone and weights, T, sizes, the clips),
    else rebuilt with a notice.
    """
    path = Path(path)
    thread_policy()
    backbone.eval()
    key = {
        "format": FEATURES_FORMAT,
        "backbone": backbone_name,
        "weights_sha256": weights_digest(backbone),
        "output": "frames" if output == "vector" else f"frame {output}s",
        "shape": output_shape(backbone, crop),
        "resize": resize,
        "crop": crop,
        "normalize": [list(MEAN), list(STD)],
        "images": len(items),  # clips
        "views": t,  # frames per clip
        "motion": motion,
        "images_sha256": images_digest([i.path for i in items]),
    }
    if output != "vector":  # one row per place of the grid, not per frame
        key["leading"] = [len(items), key["shape"][0]]
    features, why = read_cache(path, key)
    if features is not None:
        return features
    if why:
        print(f"{in_data_dir(path)}: feature cache {why}; rebuilding it")
    _check_fits(items, t, motion, math.prod(key["shape"]))
    # A second process decodes the next clips while this one runs the CNN, and the CNN takes the
    # frames of several clips at once: each step alone was half the time of the two in turn.
    frames = DataLoader(
        _Frames(items, frames_to_read(t, motion), resize, crop),
        batch_size=CLIPS_PER_BATCH,
        collate_fn=list,
        num_workers=1 if usable_cores() > 1 and len(items) > CLIPS_PER_BATCH else 0,
    )
    rows = []
    with tqdm(
        total=len(items), desc="extracting frame features", unit="clip", disable=not progress
    ) as bar:
        for clips in frames:
            rows += clips_features(backbone, clips, motion)
            bar.update(len(clips))
    features = torch.stack(rows) if rows else torch.empty(0, t, 0)
    save_cache(path, key, features)
    return features


def _check_fits(items: list[VideoItem], t: int, motion: bool, size: int) -> None:
    """T checked against the clips (no clip as long as T: a mistake) and the cache against the
    memory, before any clip is decoded."""
    longest = max(frame_count(item.path) for item in items)
    if frames_to_read(t, motion) > longest:
        most = longest - 1 if motion else longest
        raise CourseError(
            f"frames {t}: the longest clip of {items[0].path.parent} has {longest} frames"
            + (" (motion reads T + 1)" if motion else "")
            + f"; choose frames of at most {most}"
        )
    need = 4 * len(items) * t * size * (2 if motion else 1)
    free = available_memory()
    if free is not None and need > free:
        raise CourseError(
            f"frames {t}: the features of {len(items):,} clips need {size_text(need)}, but "
            f"{size_text(free)} is free; choose fewer frames"
        )


class ClipCaptions(Dataset):
    """(frame features (T, F), caption ids) for each caption of each clip: what the video model
    trains on, as CachedCaptions is for images.

    With `actions`, each clip with one actor once, its action as a one-word caption: the LRCN's
    target, and the checkpoint stores the action names as its vocabulary.
    """

    def __init__(
        self, items: list[VideoItem], features: torch.Tensor, vocab, actions: bool = False
    ) -> None:
        if len(features) != len(items):
            raise ValueError(f"{len(features)} cached clips for {len(items)}")
        self.features = features
        if actions:
            self.pairs = [
                (row, [vocab(action_label(item))])
                for row, item in enumerate(items)
                if action_label(item) is not None
            ]
        else:
            self.pairs = [
                (row, vocab.encode(text))
                for row, item in enumerate(items)
                for text in item.captions
            ]

    def set_epoch(self, epoch: int) -> None:
        """One view per clip (no random crops): nothing changes between epochs."""

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        row, ids = self.pairs[i]
        return self.features[row], torch.tensor(ids)
