"""Pretraining a backbone without weights on the captions themselves: a multi-label classifier of
the words each image's captions use."""

from __future__ import annotations

import torch
from torch import nn
from tqdm import tqdm

from helpers.data.images import load_rgb, train_transform
from helpers.data.loaders import CocoCaptionDataset
from helpers.train.config import TrainConfig
from helpers.train.data import image_captions


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
    data = WordsInImage(image_captions(cfg, vocab, "train"), train_transform(cfg.crop, cfg.flip))
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
