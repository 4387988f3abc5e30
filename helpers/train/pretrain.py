"""Pretraining a backbone without weights on the captions themselves: a multi-label classifier of
the words each image's captions use."""

from __future__ import annotations

from collections import Counter
from itertools import pairwise

import torch
from torch import nn
from tqdm import tqdm

from helpers.data.images import load_rgb, train_transform
from helpers.data.loaders import CocoCaptionDataset
from helpers.environment import worker_count
from helpers.train.config import TrainConfig
from helpers.train.data import image_captions


class WordsInImage(torch.utils.data.Dataset):
    """Each image once, with a multi-hot target of the words its captions use (no <unk> etc.)
    and of the `pairs` word pairs (two words side by side) that most images' captions use."""

    def __init__(self, captions: CocoCaptionDataset, transform, pairs: int = 0) -> None:
        self.captions, self.transform = captions, transform
        # Decoded once: the resized images are small, and decoding them again each epoch was
        # most of an epoch's time.
        self.images = [load_rgb(captions.image_path(i)) for i in captions.image_ids]
        words = [
            [captions.vocab.encode(text) for text in captions.captions(image_id)]
            for image_id in captions.image_ids
        ]
        # A pair such as "red circle" can only be told from the pooled features if they keep
        # which colour goes with which shape: the words alone let them forget it.
        seen = Counter(p for ids in words for p in {p for c in ids for p in pairwise(c)})
        self.pairs = [p for p, _ in seen.most_common() if min(p) >= 4][:pairs]
        column = {p: len(captions.vocab) + k for k, p in enumerate(self.pairs)}
        self.targets = torch.zeros(len(words), len(captions.vocab) + len(self.pairs))
        for row, ids in enumerate(words):
            for c in ids:
                self.targets[row, c] = 1
                self.targets[row, [column[p] for p in pairwise(c) if p in column]] = 1
        self.targets[:, :4] = 0  # <pad>, <start>, <end>, <unk> say nothing about the picture

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.transform(self.images[i]), self.targets[i]


def pretrain_encoder(
    encoder, cfg: TrainConfig, vocab, device, progress: bool = True
) -> list[float]:
    """Teach the backbone to see which words describe an image, before it learns to caption.

    The source starts from a ResNet pretrained on ImageNet. Offline there is no such download, so
    a small CNN gets its pretraining from the captions themselves, in seconds: a multi-label
    classifier of the words an image's captions contain. Returns the loss of each epoch. A frozen
    backbone is trained here all the same, and frozen again afterwards.
    """
    captions = image_captions(cfg, vocab, "train")
    data = WordsInImage(captions, train_transform(cfg.crop, cfg.flip), cfg.pretrain_pairs)
    loader = torch.utils.data.DataLoader(
        data,
        cfg.batch_size,
        shuffle=True,
        num_workers=worker_count(cfg.num_workers),
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    backbone = encoder.backbone
    backbone.requires_grad_(True)
    head = nn.Linear(backbone.out_features, data.targets.size(1)).to(device)
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
