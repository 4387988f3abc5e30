"""The chapter's data pipeline: (image, caption ids) pairs, padded batches, and the loader."""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset
from tqdm import tqdm

from helpers.data.annotations import coco_index
from helpers.data.images import eval_transform, load_rgb
from helpers.data.vocabulary import Vocabulary
from helpers.errors import CourseError


class CocoCaptionDataset(Dataset):
    """One item per caption: (image tensor, caption ids from <start> to <end>), as in the source.

    Works with any COCO captions file and image folder (2014 or 2017 file names, sparse ids): the
    image file is always the `file_name` of its entry in `images`. Without a `transform` the
    images go through `eval_transform()` (centre crop 224, tensor, ImageNet normalisation), which
    suits a folder resized to 256x256; pass `train_transform(...)` for training.
    """

    def __init__(
        self,
        images: str | os.PathLike,
        annotations: str | os.PathLike,
        vocab: Vocabulary,
        transform: Callable | None = None,
        image_ids: Iterable[int] | None = None,
    ) -> None:
        self.root = Path(images)
        self.annotations = Path(annotations)
        self.vocab = vocab
        self.transform = transform if transform is not None else eval_transform()
        coco = coco_index(self.annotations)
        wanted = set(coco.imgs) if image_ids is None else set(image_ids)
        unknown = sorted(wanted - set(coco.imgs))
        if unknown:
            raise CourseError(
                f"{self.annotations}: image id {unknown[0]} is not in its 'images' ({len(unknown)} unknown ids asked for)"
            )
        anns = [a for a in coco.dataset["annotations"] if a["image_id"] in wanted]
        if not anns:
            raise CourseError(f"{self.annotations}: no captions for the images asked for")
        # Images without any caption give no item; they are counted, not silently lost.
        self.image_ids = sorted({a["image_id"] for a in anns})
        self.images_without_captions = len(wanted) - len(self.image_ids)
        self._files = [coco.imgs[i]["file_name"] for i in self.image_ids]
        self._check_files()

        # The source tokenized each caption inside __getitem__, so every epoch re-ran nltk over all
        # 414,000 COCO captions; the ids never change, so they are computed once here instead.
        self._position = {image_id: k for k, image_id in enumerate(self.image_ids)}
        self._captions: dict[int, list[str]] = {i: [] for i in self.image_ids}
        encoded, self._image_index = [], np.empty(len(anns), dtype=np.int64)
        # A bar only where encoding takes long enough to wonder (real COCO: about a minute).
        bar = tqdm(anns, desc="encoding captions", unit="caption", disable=len(anns) < 20_000)
        for n, ann in enumerate(bar):
            self._captions[ann["image_id"]].append(ann["caption"])
            self._image_index[n] = self._position[ann["image_id"]]
            encoded.append(vocab.encode(ann["caption"]))
        # One flat tensor plus offsets, not 400k small tensors: cheap to keep and to share with
        # worker processes, which would otherwise copy every Python object they touch.
        self._starts = np.cumsum([0, *(len(ids) for ids in encoded)])
        self._ids = torch.tensor([i for ids in encoded for i in ids], dtype=torch.long)

    def _check_files(self) -> None:
        """Fail now, naming the first missing image, rather than hours into training."""
        if not self.root.is_dir():
            raise CourseError(f"{self.root}: image folder not found (for {self.annotations})")
        present = set(os.listdir(self.root))  # one listing instead of 80,000 stat calls
        missing = [f for f in self._files if f not in present and not (self.root / f).is_file()]
        if missing:
            raise CourseError(
                f"{self.root / missing[0]}: image file not found ({len(missing)} of {len(self._files)} images of {self.annotations} are missing)"
            )

    def __len__(self) -> int:
        return len(self._image_index)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        i = range(len(self))[i]  # negative indices and IndexError as for a list
        image = self.transform(load_rgb(self.root / self._files[self._image_index[i]]))
        return image, self.caption_ids(i)

    def caption_ids(self, i: int) -> torch.Tensor:
        """The stored ids of item `i` (<start> ... <end>), without loading its image."""
        return self._ids[self._starts[i] : self._starts[i + 1]].clone()

    def item_image_id(self, i: int) -> int:
        """The COCO image id of item `i`."""
        return self.image_ids[self._image_index[i]]

    def item_image_row(self, i: int) -> int:
        """The position of item `i`'s image in `image_ids` (and in `image_files()`)."""
        return int(self._image_index[i])

    def image_files(self) -> list[Path]:
        """The image file of each of `image_ids`, in that order."""
        return [self.root / f for f in self._files]

    def captions(self, image_id: int) -> list[str]:
        """The human captions of an image, as written in the annotations file."""
        return list(self._captions[image_id])

    def image_path(self, image_id: int) -> Path:
        """The file of an image, from its `file_name` entry."""
        return self.root / self._files[self._position[image_id]]

    def __repr__(self) -> str:
        return f"CocoCaptionDataset({len(self)} captions of {len(self.image_ids)} images in {self.root.name}/)"


def collate_captions(
    batch: list[tuple[torch.Tensor, torch.Tensor]],
) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Stack images and pad captions with 0 (<pad>), longest first as pack_padded_sequence needs."""
    batch = sorted(batch, key=lambda item: len(item[1]), reverse=True)
    images, captions = zip(*batch, strict=True)
    lengths = [len(c) for c in captions]
    targets = torch.zeros(len(captions), max(lengths), dtype=torch.long)
    for row, caption in enumerate(captions):
        targets[row, : len(caption)] = caption
    return torch.stack(images), targets, lengths


def _seed_worker(worker_id: int) -> None:
    """Seed Python and NumPy in a worker from the seed PyTorch gave it (random transforms)."""
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)


class CaptionLoader(DataLoader):
    """A DataLoader whose worker errors stay the course's one line, not a worker traceback."""

    def __iter__(self) -> Iterator:
        try:
            yield from super().__iter__()
        except CourseError as err:
            # A worker re-raises as "Caught CourseError in DataLoader worker...\n<traceback>";
            # the original message is the traceback's last line.
            last = str(err).strip().splitlines()[-1]
            # Dropping the traceback frees the worker iterator now; left to the garbage
            # collector, its workers take 5-10 s to shut down.
            err.__traceback__ = None
            raise CourseError(last.partition("CourseError: ")[2] or last) from None


def get_loader(
    images: str | os.PathLike,
    annotations: str | os.PathLike,
    vocab: Vocabulary,
    transform: Callable | None = None,
    batch_size: int = 128,
    shuffle: bool = True,
    num_workers: int = 0,
    seed: int = 0,
    pin_memory: bool | None = None,
    image_ids: Iterable[int] | None = None,
) -> DataLoader:
    """A seeded DataLoader of padded caption batches: the same seed gives the same batches."""
    dataset = CocoCaptionDataset(images, annotations, vocab, transform, image_ids)
    return caption_loader(
        dataset,
        batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        generator=torch.Generator().manual_seed(seed),
        pin_memory=pin_memory,
    )


def caption_loader(
    dataset: Dataset,
    batch_size: int,
    shuffle: bool = False,
    sampler: Iterable[int] | None = None,
    num_workers: int = 0,
    generator: torch.Generator | None = None,
    pin_memory: bool | None = None,
) -> DataLoader:
    """The loader settings the course uses for any dataset of (input, caption ids) items.

    pin_memory defaults to on with CUDA (faster copies to the GPU); workers persist between epochs
    so they are not restarted, which costs seconds per epoch on real COCO.
    """
    return CaptionLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        sampler=sampler,
        num_workers=num_workers,
        collate_fn=collate_captions,
        generator=generator,
        worker_init_fn=_seed_worker,
        pin_memory=torch.cuda.is_available() if pin_memory is None else pin_memory,
        persistent_workers=num_workers > 0,
    )
