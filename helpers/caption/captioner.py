"""Captioning new images with a trained checkpoint, as the source's inference step: in batches,
one file's error never stopping the others; and every image of a captions file, for evaluation."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from tqdm import tqdm

from helpers.checks import device as check_device
from helpers.checks import finite, positive
from helpers.data.annotations import image_files
from helpers.data.images import inference_transform, load_rgb
from helpers.data.vocabulary import Vocabulary
from helpers.environment import thread_policy
from helpers.errors import CourseError
from helpers.models.checkpoint import best_checkpoint, load_models, model_kind, reads_images
from helpers.models.registry import decoder_kind


class Captioner:
    """A trained encoder and decoder with their vocabulary: images in, captions out."""

    images_only = True  # a video model (several frames, motion, actions) is refused here

    def __init__(
        self,
        checkpoint: str | os.PathLike,
        vocab: Vocabulary | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        thread_policy()
        self.device = check_device(device)
        self.path = best_checkpoint(checkpoint)
        self.encoder, self.decoder, self.vocab, ckpt = load_models(self.path, self.device, vocab)
        self.config = ckpt["config"]
        self.kind = decoder_kind(self.config)  # what the decoder can do (attention, labels, clips)
        if self.images_only and not reads_images(self.config):
            raise CourseError(
                f"{self.path}: is {model_kind(self.config)}, which cannot caption single images "
                "(python -m helpers.caption.video describes videos with it)"
            )
        self.history = ckpt.get("history", {})
        # Validation's preprocessing (resize, then centre crop), not the source's squeeze of the whole
        # image to the crop size: notebook 08 measures both on the tiny val split.
        self.transform = inference_transform(self.config["resize"], self.config["crop"])

    def load_image(self, path: str | os.PathLike) -> torch.Tensor:
        """One image file as the (3, size, size) tensor the encoder expects."""
        return self.transform(load_rgb(path))

    @torch.no_grad()
    def sample_ids(
        self, images: torch.Tensor, beam_size: int = 1, length_penalty: float = 0.0
    ) -> torch.Tensor:
        """Token ids (B, max_seq_len) for a batch of image tensors: greedy, or beam search."""
        self.check_beam_size(beam_size)
        features = self.encoder(images.to(self.device))
        if beam_size == 1:
            return self.decoder.sample(features).cpu()  # the source's greedy decoding
        end = self.vocab.word_to_id["<end>"]
        return self.decoder.beam_search(features, beam_size, length_penalty, end)[0].cpu()

    def check_beam_size(self, beam_size: int) -> None:
        """A one-line error unless 1 <= beam_size <= the vocabulary's size (the most beams there
        can be: one per word)."""
        if beam_size < 1:
            raise CourseError(f"beam size must be 1 (greedy) or more, got {beam_size}")
        if beam_size > len(self.vocab):
            raise CourseError(
                f"beam size {beam_size} is larger than the vocabulary of {self.path} "
                f"({len(self.vocab)} words): at most {len(self.vocab)} beams can differ"
            )

    def caption(
        self,
        images: list[Image.Image] | torch.Tensor,
        beam_size: int = 1,
        length_penalty: float = 0.0,
    ) -> list[str]:
        """Captions for PIL images or a batch tensor, one string each, stopped at <end>."""
        if not isinstance(images, torch.Tensor):
            images = torch.stack([self.transform(img.convert("RGB")) for img in images])
        ids = self.sample_ids(images, beam_size, length_penalty)
        return [" ".join(self.vocab.decode(row)) for row in ids]


@dataclass
class Result:
    """The caption of one file, or why it has none."""

    path: Path
    caption: str | None = None
    error: str | None = None


def caption_files(
    captioner: Captioner,
    paths: list[str | os.PathLike],
    batch_size: int = 32,
    beam_size: int = 1,
    length_penalty: float = 0.0,
) -> list[Result]:
    """Caption image files in batches; a file that cannot be read gets an error, the rest go on."""
    positive("batch size", batch_size)
    captioner.check_beam_size(beam_size)  # before any file is read
    finite("length penalty", length_penalty)
    results = [Result(Path(p)) for p in paths]
    # One batch of tensors in memory at a time: a whole COCO split would not fit.
    for start in range(0, len(results), batch_size):
        readable = []
        for r in results[start : start + batch_size]:
            try:
                readable.append((r, captioner.load_image(r.path)))
            except CourseError as err:
                r.error = str(err)
        if readable:
            batch = torch.stack([t for _, t in readable])
            captions = captioner.caption(batch, beam_size, length_penalty)
            for (r, _), text in zip(readable, captions, strict=True):
                r.caption = text
    return results


def caption_split(
    captioner: Captioner,
    annotations: str | os.PathLike,
    images: str | os.PathLike,
    batch_size: int = 32,
    beam_size: int = 1,
    length_penalty: float = 0.0,
    progress: bool = True,
) -> tuple[list[dict], list[str]]:
    """Caption every image of a captions file: COCO results entries, and why some images got none."""
    files = image_files(annotations, images)
    ids = sorted(files)
    results, problems = [], []
    with tqdm(total=len(ids), desc="captioning", unit="img", disable=not progress) as bar:
        for start in range(0, len(ids), batch_size):
            chunk = ids[start : start + batch_size]
            done = caption_files(
                captioner,
                [files[i] for i in chunk],
                batch_size,
                beam_size=beam_size,
                length_penalty=length_penalty,
            )
            for image_id, r in zip(chunk, done, strict=True):
                if r.error:
                    problems.append(r.error)
                elif not r.caption.strip():
                    # The COCO format has no empty captions: such an image is left out, and counted.
                    problems.append(f"image {image_id}: the model's caption is empty (<end> first)")
                else:
                    results.append({"image_id": image_id, "caption": r.caption})
            bar.update(len(chunk))
    return results, problems
