"""The chapter's training loop, made real: validation, atomic checkpoints each epoch, resume.

Also fast and scalable: with a frozen backbone its features are computed once and cached
(helpers.data.features), and the same loop runs under torchrun on many GPUs or processes (DDP).
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.nn.utils.rnn import pack_padded_sequence
from tqdm import tqdm

from helpers.checks import device as check_device
from helpers.checks import warn, writable_folder
from helpers.data.inputs import changed_inputs, run_inputs
from helpers.data.paths import in_data_dir
from helpers.data.resize import ensure_resized
from helpers.distributed import Distributed, setup_distributed, sum_across
from helpers.environment import thread_policy
from helpers.errors import CourseError
from helpers.files import folder_lock
from helpers.models.checkpoint import (
    BEST,
    LAST,
    best_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from helpers.models.registry import build_models
from helpers.train.config import TrainConfig, changed_settings, check_fits
from helpers.train.data import loaders, run_vocabulary
from helpers.train.pretrain import pretrain_encoder


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
    # Per epoch, what each process trained on (one entry per rank): under torchrun every process
    # takes its own share of each epoch, and these counts show it.
    process_examples: list[list[int]] = field(default_factory=list)
    process_batches: list[list[int]] = field(default_factory=list)

    @property
    def val_perplexity(self) -> list[float]:
        """exp(loss): roughly how many words the model hesitates between at each step."""
        return [math.exp(v) for v in self.val_loss]


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


def _resume(
    path: Path, cfg: TrainConfig, models: tuple, optimizer, vocab, inputs: dict
) -> tuple[int, int, History]:
    ckpt = read_checkpoint(path)
    changed = changed_settings(ckpt["config"], cfg)
    if changed:
        was = ", ".join(f"{k}={v!r}" for k, v in changed.items())
        raise CourseError(
            f"{path}: was trained with other settings ({was}); use another --out folder or --fresh"
        )
    # Epochs trained on other captions, images or starting weights cannot be continued: their
    # word ids and history would silently mean something else.
    what = changed_inputs(ckpt.get("inputs"), inputs)
    if not what and list(vocab.id_to_word) != list(ckpt["vocabulary"]):
        what = "the vocabulary"
    if what:
        raise CourseError(
            f"{path}: {what} changed since epoch {ckpt['epoch']}; use another --out folder or --fresh"
        )
    encoder, decoder = models
    try:
        encoder.load_state_dict(ckpt["encoder"])
        decoder.load_state_dict(ckpt["decoder"])
        optimizer.load_state_dict(ckpt["optimizer"])
    except (RuntimeError, ValueError, KeyError) as err:
        detail = " ".join(str(err).split())[:160]
        raise CourseError(f"{path}: cannot resume from it ({detail}); use --fresh") from None
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
    progress: bool | str = True,
    device: str | torch.device | None = None,
) -> History:
    """Train encoder and decoder for `cfg.epochs`, saving out/last.pt after every epoch.

    out/best.pt is also written whenever the validation loss reaches a new low: the model that
    captioning and evaluation use by default.

    With `resume`, a run continues from out/last.pt: it starts the next epoch with the same data
    order and random crops an uninterrupted run would have used, so nothing is repeated or skipped.
    Under torchrun every process calls this; rank 0 alone writes the checkpoint and prints.
    progress: True, a bar and a summary line per epoch (for terminals); "run", one bar for the
    whole run (a notebook then stores one line, not one per epoch); False, nothing.
    """
    if progress not in (True, False, "run"):
        raise CourseError(f"progress={progress!r}: use True, False or 'run'")
    cfg = (cfg or TrainConfig()).check()
    out = Path(out) if out is not None else cfg.run_dir()
    device = check_device(device) if device is not None else None
    # The place to save is checked before minutes of training, not at the first save.
    writable_folder(out)
    for split in ("train", "val"):  # a wrong dataset name or folder: one line, now
        cfg.data.annotations(split)
    if cfg.epochs == 0 and not (resume and (out / LAST).is_file()):
        warn("epochs is 0 on a fresh run: nothing will be trained (pretraining aside)")
    thread_policy()
    run = setup_distributed(device)
    try:
        # Rank 0 alone writes the checkpoints: it holds the folder's lock for the whole run.
        with folder_lock(out, "a training run") if run.main else contextlib.nullcontext():
            return _train(cfg, out, resume, progress if run.main else False, run)
    finally:
        if run.world > 1 and dist.is_initialized():
            dist.destroy_process_group()


def _train(
    cfg: TrainConfig, out: Path, resume: bool, progress: bool | str, run: Distributed
) -> History:
    device = run.device
    torch.manual_seed(cfg.seed)
    if not run.main:
        dist.barrier()  # rank 0 prepares the data (vocabulary, resized images) alone, first
    stage = _stage_clock(progress)
    vocab = run_vocabulary(cfg, progress)
    stage("vocabulary")
    check_fits(cfg, len(vocab), device)  # before resizing every image or building the models
    for split in ("train", "val") if not cfg.data.video else ():
        ensure_resized(cfg.data, split, cfg.resize, progress=progress)
    stage("resized images")
    inputs = run_inputs(cfg.data, cfg.weights)  # recorded in every checkpoint, checked on resume
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
    resuming = resume and checkpoint.is_file()
    if not resuming and run.main:
        # An earlier run's best model must not sit beside this run's last one.
        (out / BEST).unlink(missing_ok=True)
    if resuming:
        start, step, history = _resume(
            checkpoint, cfg, (encoder, decoder), optimizer, vocab, inputs
        )
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
    train_loader, val_loader, sampler = loaders(cfg, vocab, encoder, run, progress)
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

    per_epoch = progress is True
    whole = tqdm(
        total=cfg.epochs,
        initial=start,
        desc="training",
        unit="epoch",
        disable=per_epoch or not progress,
    )
    for epoch in range(start, cfg.epochs):
        # Seeding by epoch makes epoch k's shuffle, crops and views the same whether or not we resumed.
        torch.manual_seed(cfg.seed * 1000 + epoch)
        sampler.set_epoch(epoch)
        if cfg.cached:
            train_loader.dataset.set_epoch(epoch)
        encoder.train()
        decoder.train()
        began, total, examples, batches = time.perf_counter(), 0.0, 0, 0
        bar = tqdm(
            train_loader,
            desc=f"epoch {epoch + 1}/{cfg.epochs}",
            disable=not per_epoch,
            mininterval=1.0,
        )
        for batch in bar:
            with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
                loss, _ = step_loss(model_enc, model_dec, batch, criterion, device)
                if cfg.kind.attention and cfg.attention_penalty:
                    loss = loss + decoder.penalty(cfg.attention_penalty)  # Show, Attend and Tell's
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.unscale_(optimizer)  # clip the true gradients, not the scaled ones
            nn.utils.clip_grad_norm_(params, cfg.clip)
            scaler.step(optimizer)
            scaler.update()
            step += 1
            total += loss.item()
            examples, batches = examples + len(batch[0]), batches + 1
            history.step_loss.append(loss.item())
            bar.set_postfix(
                loss=f"{loss.item():.3f}", ppl=f"{math.exp(loss.item()):.2f}", refresh=False
            )
        bar.close()
        val = validation_loss(encoder, decoder, val_loader, device, run)
        # One sum over the processes gives the mean loss and, from counts placed at each process's
        # own rank, how many examples and batches every process trained on.
        shares = [0.0] * (2 * run.world)
        shares[run.rank], shares[run.world + run.rank] = examples, batches
        total, *shares = sum_across([total / len(train_loader), *shares], run)
        history.epoch.append(epoch + 1)
        history.train_loss.append(total / run.world)
        history.process_examples.append([int(n) for n in shares[: run.world]])
        history.process_batches.append([int(n) for n in shares[run.world :]])
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
                inputs=inputs,
                history=dataclasses.asdict(history),
            )
            save_checkpoint(checkpoint, **state)
            # Validation loss often bottoms out before the last epoch: keep that model to caption
            # with, while last.pt goes on serving resume.
            if val <= min(history.val_loss):
                save_checkpoint(out / BEST, **state)
        whole.set_postfix(train_loss=f"{history.train_loss[-1]:.3f}", val_loss=f"{val:.3f}")
        whole.update()
        if per_epoch:
            print(
                f"epoch {epoch + 1}/{cfg.epochs}: train loss {history.train_loss[-1]:.3f}, "
                f"val loss {val:.3f} (perplexity {math.exp(val):.2f}), {history.seconds[-1]:.0f} s"
                + _shares(history, run)
            )
    whole.close()
    stage(f"training, {cfg.epochs - start} epochs")
    return history


def _shares(history: History, run: Distributed) -> str:
    """What each process trained on in the last epoch, said when there are several (else "")."""
    if run.world == 1:
        return ""
    examples, batches = history.process_examples[-1], history.process_batches[-1]
    return (
        f"; {run.world} processes trained on {' + '.join(map(str, examples))} examples "
        f"in {' + '.join(map(str, batches))} batches"
    )


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
    cfg: TrainConfig | None = None, out: str | Path | None = None, progress: bool | str = True
) -> Path:
    """The best checkpoint of a run trained for cfg.epochs on today's data: the existing one, or
    trained (resumed, or again from the start when its data changed) now."""
    cfg = cfg or TrainConfig()
    folder = Path(out) if out is not None else cfg.run_dir()
    last = folder / LAST
    done, fresh = False, False
    if last.is_file():
        ckpt = read_checkpoint(last)
        if not changed_settings(ckpt["config"], cfg):
            what = changed_inputs(ckpt.get("inputs"), run_inputs(cfg.check().data, cfg.weights))
            if what:
                print(f"{in_data_dir(folder)}: {what} changed since it was trained; training again")
            fresh = bool(what)
            done = ckpt["epoch"] >= cfg.epochs and not fresh
    if not done:
        # Resumes, or says in one line why it cannot; data that changed starts the run over.
        train(cfg, folder, resume=not fresh, progress=progress)
    return best_checkpoint(folder)
