"""Caption image files with a trained checkpoint, greedy or with beam search; for an attention
checkpoint, also draw where each word looked."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from helpers.caption.attention import needs_attention, save_attention_map
from helpers.caption.captioner import Captioner, caption_files
from helpers.checks import arg, finite, parser, positive, writable_file
from helpers.data.vocabulary import Vocabulary
from helpers.errors import CourseError, run_cli

MAP_FORMATS = (".png", ".jpg", ".jpeg", ".pdf", ".svg")


def map_files(target: str, images: list[Path]) -> dict[Path, Path]:
    """Where each image's attention map goes: `target` itself for one image, else one file per
    image named after it; a target ending in a slash (or an existing folder) is a folder of
    <image>.png files. Names are unique even when images share a name; the format follows the
    extension, and an extension no format has is refused."""
    folder = target.endswith(("/", os.sep)) or Path(target).is_dir()
    base = Path(target)
    suffix = ".png" if folder else base.suffix.lower()
    if suffix not in MAP_FORMATS:
        raise CourseError(
            f"{target}: an attention map is written as {', '.join(MAP_FORMATS)}; "
            "give the file one of these extensions (or end the name with / for a folder)"
        )
    if not folder and len(images) == 1:
        return {images[0]: base}
    names = _unique_names(images)
    if folder:
        return {image: base / f"{name}{suffix}" for image, name in zip(images, names, strict=True)}
    return {
        image: base.with_name(f"{base.stem}_{name}{base.suffix}")
        for image, name in zip(images, names, strict=True)
    }


def _unique_names(images: list[Path]) -> list[str]:
    """A name per image: its stem, with its extension and then its folders added where two share
    it (a/x.jpg, b/x.jpg, b/x.png: a_x_jpg, b_x_jpg, b_x_png)."""
    for name in (
        lambda p: p.stem,
        lambda p: f"{p.stem}_{p.suffix.lstrip('.')}",
        lambda p: "_".join([*p.parent.parts[-1:], p.stem, p.suffix.lstrip(".")]),
    ):
        names = [name(p) for p in images]
        if len(set(names)) == len(names):
            return names
    return [f"{k:03d}_{p.stem}" for k, p in enumerate(images)]  # the same file given twice


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
        default=None,
        metavar="FILE_OR_FOLDER/",
        help="for a checkpoint trained with --decoder attention: draw where each word looked, as "
        ".png, .jpg, .pdf or .svg (several images: each name gets _<image name> added; a name "
        "ending in / is a folder, one <image name>.png each)",
    )
    args = p.parse_args(argv)
    vocab = Vocabulary.load(args.vocab) if args.vocab else None
    captioner = Captioner(args.checkpoint, vocab, args.device)
    maps = {}
    if args.attention_map is not None:
        import matplotlib

        matplotlib.use("Agg")  # files, no window: works without a display

        needs_attention(captioner)
        maps = map_files(args.attention_map, args.images)
        for out in maps.values():
            writable_file(out, [args.checkpoint, *args.images])
        if len(maps) > 1:
            print(f"attention maps: {len(maps)} files, each named after its image")
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


if __name__ == "__main__":
    run_cli(main)
