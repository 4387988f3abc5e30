"""Captioning new images with a trained checkpoint, as the source's inference step; CLI."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from helpers.checkpoint import best_checkpoint, load_models
from helpers.checks import arg, finite, parser, positive, writable_file
from helpers.checks import device as check_device
from helpers.errors import CourseError, run_cli
from helpers.files import atomic_path
from helpers.images import inference_transform, load_rgb
from helpers.vocabulary import Vocabulary


class Captioner:
    """A trained encoder and decoder with their vocabulary: images in, captions out."""

    def __init__(
        self,
        checkpoint: str | os.PathLike,
        vocab: Vocabulary | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        self.device = check_device(device)
        self.path = best_checkpoint(checkpoint)
        self.encoder, self.decoder, self.vocab, ckpt = load_models(self.path, self.device, vocab)
        self.config = ckpt["config"]
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
        if beam_size < 1:
            raise CourseError(f"beam size must be 1 (greedy) or more, got {beam_size}")
        features = self.encoder(images.to(self.device))
        if beam_size == 1:
            return self.decoder.sample(features).cpu()  # the source's greedy decoding
        end = self.vocab.word_to_id["<end>"]
        return self.decoder.beam_search(features, beam_size, length_penalty, end)[0].cpu()

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
    positive("beam size", beam_size)
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


def main(argv: list[str] | None = None) -> int:
    p = parser("python -m helpers.caption", __doc__)
    p.add_argument("images", nargs="+", type=Path, help="image files to caption")
    p.add_argument(
        "--checkpoint",
        type=Path,
        required=True,
        help="a checkpoint written by helpers.train, or its run folder (then its best.pt)",
    )
    p.add_argument(
        "--vocab",
        type=Path,
        default=None,
        help="check against this vocabulary JSON (default: the checkpoint's own)",
    )
    p.add_argument("--batch-size", type=arg(positive), default=32, help="images per batch (32)")
    p.add_argument(
        "--beam-size", type=arg(positive), default=1, help="1: greedy, as the source (default)"
    )
    p.add_argument(
        "--length-penalty", type=arg(finite, float), default=0.0, help="> 0 favours longer captions"
    )
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: CUDA when available)")
    p.add_argument(
        "--attention-map",
        type=Path,
        default=None,
        metavar="PNG",
        help="for a checkpoint trained with --decoder attention: draw where each word looked "
        "(several images: PNG's name gets _<image name> added)",
    )
    args = p.parse_args(argv)
    vocab = Vocabulary.load(args.vocab) if args.vocab else None
    captioner = Captioner(args.checkpoint, vocab, args.device)
    maps = {}
    if args.attention_map is not None:
        import matplotlib

        from helpers.attention import needs_attention

        matplotlib.use("Agg")  # files, no window: works without a display

        needs_attention(captioner)
        for image in args.images:
            out = args.attention_map
            if len(args.images) > 1:
                out = out.with_name(f"{out.stem}_{image.stem}{out.suffix}")
            maps[image] = writable_file(out, [args.checkpoint, *args.images])
    failed = 0
    for r in caption_files(
        captioner, args.images, args.batch_size, args.beam_size, args.length_penalty
    ):
        if r.error:
            failed += 1
            print(f"error: {r.error}", file=sys.stderr)
            continue
        print(f"{r.path}\t{r.caption}")
        if r.path in maps:
            save_attention_map(captioner, r.path, maps[r.path], args.beam_size, args.length_penalty)
            print(f"attention map: {maps[r.path]}")
    return 1 if failed else 0


def save_attention_map(
    captioner: Captioner,
    image: str | os.PathLike,
    out: str | os.PathLike,
    beam_size: int = 1,
    length_penalty: float = 0.0,
) -> None:
    """Draw where the attention decoder looked for each word of an image's caption, as a PNG."""
    from matplotlib import pyplot as plt

    from helpers.attention import attend_file
    from helpers.plots import plot_attention

    found = attend_file(captioner, image, beam_size, length_penalty)
    fig = plot_attention(found.view, found.words, found.weights, title=Path(image).name)
    with atomic_path(out) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    plt.close(fig)


if __name__ == "__main__":
    run_cli(main)
