"""The chapter's training loop, made real: validation, atomic checkpoints each epoch, resume; CLI."""

from __future__ import annotations

import argparse
import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence
from tqdm import tqdm

from helpers.checkpoint import read_checkpoint, save_checkpoint
from helpers.coco import CocoCaptionDataset, get_loader
from helpers.datasets import data_dir, dataset_name, dataset_split
from helpers.environment import best_device
from helpers.errors import CourseError, run_cli
from helpers.images import ensure_resized, eval_transform, load_rgb, train_transform
from helpers.models import build_models
from helpers.vocabulary import ensure_vocabulary

# A run may be resumed with more epochs or other loader workers; any other change is a new run.
RESUMABLE = ("epochs", "num_workers")


@dataclass
class TrainConfig:
    """Everything that defines a run; stored in each checkpoint so the model can be rebuilt."""

    dataset: str = "tiny"
    backbone: str = "small"  # "small" (learns from scratch) or resnet18/34/50/101/152
    weights: str | None = None  # e.g. "IMAGENET1K_V1" or a local .pth file, for ResNets
    freeze: bool = False  # the source freezes a pretrained ResNet and trains Linear + BatchNorm
    embedding_size: int = 256
    hidden_size: int = 256
    num_layers: int = 1
    max_seq_len: int = 20
    resize: int = 56  # images are resized once to resize x resize (the source: 256) ...
    crop: int = 48  # ... then randomly cropped to crop x crop (the source: 224)
    flip: bool = False  # the tiny captions say left/right, which a flip would falsify
    threshold: int = 4
    batch_size: int = 32
    epochs: int = 8
    pretrain_epochs: int = 10  # bag-of-words pretraining of the encoder first (0: none)
    lr: float = 2e-3
    clip: float = 5.0
    seed: int = 0
    num_workers: int = 0

    def run_dir(self) -> Path:
        """Default checkpoint folder: data_dir/checkpoints/<dataset>-<backbone>."""
        return data_dir() / "checkpoints" / f"{dataset_name(self.dataset)}-{self.backbone}"


@dataclass
class History:
    """What training measured: per epoch and per step, all plain numbers (stored in checkpoints)."""

    epoch: list[int] = field(default_factory=list)
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    step_loss: list[float] = field(default_factory=list)
    pretrain_loss: list[float] = field(default_factory=list)

    @property
    def val_perplexity(self) -> list[float]:
        """exp(loss): roughly how many words the model hesitates between at each step."""
        return [math.exp(v) for v in self.val_loss]


def _loaders(cfg: TrainConfig, vocab):
    train_split, val_split = dataset_split(cfg.dataset, "train"), dataset_split(cfg.dataset, "val")
    train = get_loader(
        ensure_resized(cfg.dataset, "train", cfg.resize),
        train_split.annotations,
        vocab,
        train_transform(cfg.crop, cfg.flip),
        cfg.batch_size,
        shuffle=True,
        num_workers=cfg.num_workers,
        seed=cfg.seed,
    )
    val = get_loader(
        ensure_resized(cfg.dataset, "val", cfg.resize),
        val_split.annotations,
        vocab,
        eval_transform(cfg.crop),
        cfg.batch_size,
        shuffle=False,
        num_workers=cfg.num_workers,
        seed=cfg.seed,
    )
    return train, val


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
    classifier of the words an image's captions contain. Returns the loss of each epoch.
    """
    split = dataset_split(cfg.dataset, "train")
    captions = CocoCaptionDataset(
        ensure_resized(cfg.dataset, "train", cfg.resize), split.annotations, vocab
    )
    data = WordsInImage(captions, train_transform(cfg.crop, cfg.flip))
    loader = torch.utils.data.DataLoader(
        data,
        cfg.batch_size,
        shuffle=True,
        num_workers=cfg.num_workers,
        generator=torch.Generator().manual_seed(cfg.seed),
    )
    head = nn.Linear(encoder.backbone.out_features, len(vocab)).to(device)
    params = [*(p for p in encoder.backbone.parameters() if p.requires_grad), *head.parameters()]
    optimizer = torch.optim.Adam(params, lr=cfg.lr)
    encoder.backbone.train()
    losses = []
    for _ in tqdm(range(cfg.pretrain_epochs), desc="pretraining the encoder", disable=not progress):
        total = 0.0
        for images, targets in loader:
            logits = head(encoder.backbone(images.to(device)))
            loss = nn.functional.binary_cross_entropy_with_logits(logits, targets.to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.item()
        losses.append(total / len(loader))
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
def validation_loss(encoder, decoder, loader, device) -> float:
    """Mean cross-entropy per word on the validation split, in eval mode."""
    encoder.eval()
    decoder.eval()
    criterion = nn.CrossEntropyLoss(reduction="sum")
    total, words = 0.0, 0
    for batch in loader:
        loss, n = step_loss(encoder, decoder, batch, criterion, device)
        total, words = total + loss.item(), words + n
    return total / words


def _changed(old: dict, cfg: TrainConfig) -> list[str]:
    """Settings of a stored run that differ from `cfg`, besides how long to train and how to load."""
    new = dataclasses.asdict(cfg)
    return [k for k in new if k not in RESUMABLE and old.get(k) != new[k]]


def _resume(path: Path, cfg: TrainConfig, encoder, decoder, optimizer) -> tuple[int, int, History]:
    ckpt = read_checkpoint(path)
    changed = _changed(ckpt["config"], cfg)
    if changed:
        was = ", ".join(f"{k}={ckpt['config'].get(k)!r}" for k in changed)
        raise CourseError(
            f"{path}: was trained with other settings ({was}); use another --out folder or --fresh"
        )
    encoder.load_state_dict(ckpt["encoder"])
    decoder.load_state_dict(ckpt["decoder"])
    optimizer.load_state_dict(ckpt["optimizer"])
    return ckpt["epoch"], ckpt["step"], History(**ckpt["history"])


def train(
    cfg: TrainConfig | None = None,
    out: str | Path | None = None,
    resume: bool = True,
    progress: bool = True,
    device: str | torch.device | None = None,
) -> History:
    """Train encoder and decoder for `cfg.epochs`, saving out/last.pt after every epoch.

    With `resume`, a run continues from out/last.pt: it starts the next epoch with the same data
    order and random crops an uninterrupted run would have used, so nothing is repeated or skipped.
    """
    cfg = cfg or TrainConfig()
    out = Path(out) if out is not None else cfg.run_dir()
    device = torch.device(device) if device is not None else best_device()
    torch.manual_seed(cfg.seed)
    vocab = ensure_vocabulary(cfg.dataset, cfg.threshold)
    train_loader, val_loader = _loaders(cfg, vocab)
    encoder, decoder = build_models(dataclasses.asdict(cfg), len(vocab))
    encoder, decoder = encoder.to(device), decoder.to(device)
    # The source trains the decoder and the encoder's Linear + BatchNorm; a fine-tuned or small
    # backbone adds its own weights, which requires_grad tells apart.
    params = [p for p in (*encoder.parameters(), *decoder.parameters()) if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=cfg.lr)
    criterion = nn.CrossEntropyLoss()

    checkpoint = out / "last.pt"
    start, step, history = 0, 0, History()
    if resume and checkpoint.is_file():
        start, step, history = _resume(checkpoint, cfg, encoder, decoder, optimizer)
        print(f"resuming from {checkpoint} after epoch {start}, step {step}")
    elif cfg.pretrain_epochs > 0 and not cfg.freeze:  # a frozen backbone keeps what it knows
        history.pretrain_loss = pretrain_encoder(encoder, cfg, vocab, device, progress)

    for epoch in range(start, cfg.epochs):
        # Seeding by epoch makes epoch k's shuffle and crops the same whether or not we resumed.
        torch.manual_seed(cfg.seed * 1000 + epoch)
        train_loader.generator.manual_seed(cfg.seed * 1000 + epoch)
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
            loss, _ = step_loss(encoder, decoder, batch, criterion, device)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(params, cfg.clip)
            optimizer.step()
            step += 1
            total += loss.item()
            history.step_loss.append(loss.item())
            bar.set_postfix(
                loss=f"{loss.item():.3f}", ppl=f"{math.exp(loss.item()):.2f}", refresh=False
            )
        bar.close()
        val = validation_loss(encoder, decoder, val_loader, device)
        history.epoch.append(epoch + 1)
        history.train_loss.append(total / len(train_loader))
        history.val_loss.append(val)
        history.seconds.append(time.perf_counter() - began)
        save_checkpoint(
            checkpoint,
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
        if progress:
            print(
                f"epoch {epoch + 1}/{cfg.epochs}: train loss {history.train_loss[-1]:.3f}, "
                f"val loss {val:.3f} (perplexity {math.exp(val):.2f}), {history.seconds[-1]:.0f} s"
            )
    return history


def ensure_checkpoint(cfg: TrainConfig | None = None, out: str | Path | None = None) -> Path:
    """A checkpoint trained for cfg.epochs: the existing one, or trained (resumed) now."""
    cfg = cfg or TrainConfig()
    path = (Path(out) if out is not None else cfg.run_dir()) / "last.pt"
    if path.is_file():
        ckpt = read_checkpoint(path)
        if ckpt["epoch"] >= cfg.epochs and not _changed(ckpt["config"], cfg):
            return path
    train(cfg, path.parent)  # resumes, or says in one line why it cannot
    return path


def main(argv: list[str] | None = None) -> int:
    defaults = TrainConfig()
    p = argparse.ArgumentParser(prog="python -m helpers.train", description=__doc__)
    for f in dataclasses.fields(TrainConfig):
        value = getattr(defaults, f.name)
        flag = "--" + f.name.replace("_", "-")
        if isinstance(value, bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, default=value)
        else:
            kind = type(value) if value is not None else str
            p.add_argument(flag, type=kind, default=value, help=f"(default: {value})")
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
    args = vars(p.parse_args(argv))
    out, fresh, device, quiet = (args.pop(k) for k in ("out", "fresh", "device", "quiet"))
    cfg = TrainConfig(**args)
    history = train(cfg, out, resume=not fresh, progress=not quiet, device=device)
    if history.val_loss:
        print(
            f"done: val loss {history.val_loss[-1]:.3f} after {history.epoch[-1]} epochs; checkpoint in {out or cfg.run_dir()}"
        )
    return 0


if __name__ == "__main__":
    run_cli(main)
