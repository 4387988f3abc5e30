"""Caption image files with a trained checkpoint, greedy or with beam search; for an attention
checkpoint, also draw where each word looked."""

from __future__ import annotations

import sys
from pathlib import Path

from helpers.caption.attention import needs_attention, save_attention_map
from helpers.caption.captioner import Captioner, caption_files
from helpers.checks import arg, finite, parser, positive, writable_file
from helpers.data.vocabulary import Vocabulary
from helpers.errors import run_cli


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


if __name__ == "__main__":
    run_cli(main)
