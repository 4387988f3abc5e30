"""The feature cache: a frozen CNN sees each image once, not once per caption per epoch."""

from __future__ import annotations

import hashlib
import os
import zlib
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms
from tqdm import tqdm

from helpers.data.images import MEAN, STD, eval_transform, load_rgb, train_transform
from helpers.data.loaders import CocoCaptionDataset
from helpers.data.paths import in_data_dir
from helpers.distributed import Distributed, sum_across
from helpers.environment import thread_policy
from helpers.errors import CourseError
from helpers.files import atomic_path

FORMAT = 1  # bumped when the layout of a cache file changes


def weights_digest(module: nn.Module) -> str:
    """SHA-256 of a module's parameters and buffers: which weights made the features."""
    h = hashlib.sha256()
    for name, tensor in module.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def images_digest(files: list[Path]) -> str:
    """SHA-256 of the image list (names, sizes and modification times, in order): other images,
    or an image changed since, another cache."""
    h = hashlib.sha256()
    for path in files:
        info = path.stat()
        h.update(f"{path.name}\t{info.st_size}\t{info.st_mtime_ns}\n".encode())
    return h.hexdigest()


def view_transforms(crop: int, views: int, flip: bool) -> list:
    """The views cached per image: the centre crop, its mirror when flips are allowed, random crops."""
    if views < 1:
        raise CourseError(f"views must be at least 1, got {views}")
    steps = [eval_transform(crop)]
    if flip and views > 1:
        steps.append(
            transforms.Compose([eval_transform(crop), transforms.RandomHorizontalFlip(p=1.0)])
        )
    while len(steps) < views:
        steps.append(train_transform(crop, flip))
    return steps


class _Views(Dataset):
    """Every view of one image as a (views, 3, crop, crop) tensor; random crops seeded per image."""

    def __init__(self, files: list[Path], transforms: list, seed: int) -> None:
        self.files, self.transforms, self.seed = files, transforms, seed

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> torch.Tensor:
        # Seeding by the file's name makes an image's crops the same whatever the batch size, the
        # worker count, or the share of the images a distributed process extracts.
        torch.manual_seed(self.seed * 1_000_003 + zlib.crc32(self.files[i].name.encode()))
        img = load_rgb(self.files[i])
        return torch.stack([transform(img) for transform in self.transforms])


@torch.inference_mode()
def extract_features(
    backbone: nn.Module,
    files: list[Path],
    crop: int,
    views: int = 1,
    flip: bool = False,
    seed: int = 0,
    batch_size: int = 64,
    device: str | torch.device = "cpu",
    progress: bool = True,
    num_workers: int = 0,
) -> torch.Tensor:
    """Run `backbone` once per image and view: a (images, views, ...) float tensor on the CPU.

    What follows the views is the backbone's output per image: (features,) for the chapter's
    encoder, (L, C) for a grid of L places (helpers.models.attention).
    """
    backbone.eval()
    device = torch.device(device)
    loader = DataLoader(
        _Views(files, view_transforms(crop, views, flip), seed),
        batch_size=batch_size,
        num_workers=num_workers,
        pin_memory=device.type == "cuda",
    )
    chunks = [torch.empty(0, views, 0)] if not files else []  # a process's share may be empty
    bar = tqdm(total=len(files), desc="extracting features", unit="img", disable=not progress)
    for batch in loader:
        n = len(batch)
        pixels = batch.flatten(0, 1).to(device, non_blocking=True)  # (n * views, 3, crop, crop)
        out = backbone(pixels)
        out = out.flatten(1) if out.dim() == 4 else out  # a pooled ResNet's (N, C, 1, 1)
        chunks.append(out.float().cpu().view(n, views, *out.shape[1:]))
        bar.update(n)
    bar.close()
    return torch.cat(chunks)


@torch.inference_mode()
def output_shape(backbone: nn.Module, crop: int) -> list[int]:
    """The shape of what `backbone` gives for one image (a vector, or a grid of L vectors)."""
    training = backbone.training
    backbone.eval()  # BatchNorm cannot take a batch of one in training mode
    device = next(backbone.parameters()).device
    out = backbone(torch.zeros(1, 3, crop, crop, device=device))
    backbone.train(training)
    return list(out.flatten(1).shape[1:] if out.dim() == 4 else out.shape[1:])


def read_cache(path: Path, key: dict) -> tuple[torch.Tensor | None, str]:
    """The cached features if `path` holds them for exactly `key`; else None and why not."""
    if not path.is_file():
        return None, ""
    try:
        # mmap: the features stay on disk and are paged in as batches touch them.
        stored = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        features = stored["features"]
        stored_key = stored["key"]
    except Exception as err:  # truncated, garbage or foreign: the file cannot be trusted
        first = (str(err).strip().splitlines() or [type(err).__name__])[0][:120]
        return None, f"unreadable ({first})"
    if stored_key != key:
        what = [k for k in key if stored_key.get(k) != key[k]] or ["format"]
        return None, f"stale (other {', '.join(what)})"
    # Rows and what each row holds first: views of an image, frames of a clip, or the places
    # of a clip's grid (each a tube of its frames), as the key says.
    leading = tuple(key.get("leading") or (key["images"], key["views"]))
    if tuple(features.shape[: len(leading)]) != leading:
        return None, f"truncated ({tuple(features.shape)} for {key['images']} images)"
    return features, ""


def ensure_features(
    path: str | os.PathLike,
    backbone: nn.Module,
    backbone_name: str,
    files: list[Path],
    crop: int,
    views: int = 1,
    flip: bool = False,
    seed: int = 0,
    progress: bool = True,
    num_workers: int = 0,
    run: Distributed | None = None,
    kind: str = "vector",
) -> torch.Tensor:
    """Cached features of `files` at `path`: reused when they match, else extracted and saved.

    The key covers the backbone and its weights, what it outputs (`kind`: one "vector" per image,
    or a "grid" of them), the crop and views, and the image list, so a
    stale or damaged cache is noticed (one line says why) and rebuilt, never used silently. In a
    distributed run every process calls it with its `run`: each extracts a share of the images.
    `run` also says the device (default: alone, on the CPU).
    """
    path = Path(path)
    thread_policy()
    run = run or Distributed()
    rank, world, device = run.rank, run.world, run.device
    key = {
        "format": FORMAT,
        "backbone": backbone_name,
        "output": kind,
        "shape": output_shape(backbone, crop),
        "weights_sha256": weights_digest(backbone),
        "crop": crop,
        "views": views,
        "flip": flip,
        "seed": seed,
        "normalize": [list(MEAN), list(STD)],
        "images": len(files),
        "images_sha256": images_digest(files),
    }
    features, why = read_cache(path, key)
    if sum_across([float(features is None)], run)[0] == 0:  # no process needs a rebuild
        return features
    if why and rank == 0:
        print(f"{in_data_dir(path)}: feature cache {why}; rebuilding it")
    # Each process extracts every world-th image; rank 0 puts the shares together and saves.
    mine = extract_features(
        backbone,
        files[rank::world],
        crop,
        views,
        flip,
        seed,
        device=device,
        progress=progress and rank == 0,
        num_workers=num_workers,
    )
    if world == 1:
        save_cache(path, key, mine)
        return mine
    parts = [path.with_name(f"{path.name}.part{r}") for r in range(world)]
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(mine, parts[rank])
    dist.barrier()
    if rank == 0:
        shares = [torch.load(part, weights_only=True) for part in parts]
        features = torch.empty(len(files), views, *shares[0].shape[2:])
        for r, share in enumerate(shares):
            features[r::world] = share
        save_cache(path, key, features)
        for part in parts:
            part.unlink()
    dist.barrier()
    features, why = read_cache(path, key)
    if features is None:
        raise CourseError(f"{path}: the feature cache rank 0 wrote is {why}")
    return features


def save_cache(path: Path, key: dict, features: torch.Tensor) -> None:
    """Write features with the key they were made for, atomically (read_cache checks the key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        torch.save({"key": key, "features": features}, tmp)


class CachedCaptions(Dataset):
    """The items of a CocoCaptionDataset with cached features in place of images.

    Item i uses view (i + epoch) % views: each caption meets a different view every epoch, and the
    choice needs no random state, so every process of a distributed run agrees on it.
    """

    def __init__(self, captions: CocoCaptionDataset, features: torch.Tensor) -> None:
        if len(features) != len(captions.image_ids):
            raise ValueError(f"{len(features)} cached images for {len(captions.image_ids)}")
        self.captions, self.features, self.epoch = captions, features, 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the views of this epoch."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.captions)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        i = range(len(self))[i]
        row = self.captions.item_image_row(i)
        view = (i + self.epoch) % self.features.shape[1]
        return self.features[row, view], self.captions.caption_ids(i)
