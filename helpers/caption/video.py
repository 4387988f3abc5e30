"""Describing videos with a trained video checkpoint: a caption, or the action (LRCN); the same on
a whole split for evaluation; CLI."""

from __future__ import annotations

import os
import sys
from dataclasses import asdict
from pathlib import Path

import torch

from helpers.caption.captioner import Captioner
from helpers.checks import arg, parser, positive
from helpers.data.clip_cache import clip_features
from helpers.data.video import VideoItem, clip_tensor, frames_to_read, read_clip
from helpers.errors import CourseError, run_cli
from helpers.train.config import TrainConfig
from helpers.train.data import clip_cache, video_items


class VideoModel(Captioner):
    """A trained checkpoint that reads clips: a video captioner, an LRCN action classifier, or the
    image captioner, the chapter's or attention (which then sees the middle frame, T = 1)."""

    images_only = False

    def __init__(self, checkpoint: str | os.PathLike, device: str | torch.device | None = None):
        super().__init__(checkpoint, device=device)
        # An image checkpoint stored no frames or motion: one frame, as an image.
        self.config = asdict(TrainConfig(**{"frames": 1, "motion": False, **self.config}))

    @property
    def actions(self) -> bool:
        """Whether it names the action (LRCN) rather than writing a caption."""
        return self.kind.labels

    def features(self, path: str | os.PathLike) -> torch.Tensor:
        """One video file's frame features (T, F): T frames sampled evenly, one decoded at a time."""
        c = self.config
        clip = read_clip(path, frames_to_read(c["frames"], c["motion"]), size=c["resize"])
        frames = clip_tensor(clip, c["crop"]).to(self.device)
        return clip_features(self.encoder.feature_extractor()[0], frames, c["motion"])

    @torch.no_grad()
    def describe(self, features: torch.Tensor, beam_size: int = 1) -> list[str]:
        """Captions (or action names) of a batch of clips' frame features (B, T, F)."""
        if self.actions:
            predicted = self.decoder.predict(self.encoder(features.to(self.device)))
            return [self.vocab.id_to_word[i] for i in predicted.tolist()]
        # The encoder takes cached features as it takes images: the captioning is Captioner's.
        return [" ".join(self.vocab.decode(row)) for row in self.sample_ids(features, beam_size)]


def describe_split(
    checkpoint: str | os.PathLike | VideoModel,
    split: str = "val",
    beam_size: int = 1,
    progress: bool = False,
) -> tuple[list[VideoItem], list[str]]:
    """Every clip of a split of the checkpoint's dataset, and what the model says of each (from the
    feature cache, built when missing)."""
    model = checkpoint if isinstance(checkpoint, VideoModel) else VideoModel(checkpoint)
    cfg = TrainConfig(**model.config)
    items = video_items(cfg, split)
    features = clip_cache(cfg, split, model.encoder, items, progress)
    said = []
    for batch in features.split(64):
        said += model.describe(batch, beam_size)
    return items, said


def main(argv: list[str] | None = None) -> int:
    p = parser("python -m helpers.caption.video", __doc__.split(";")[0])
    p.add_argument("videos", nargs="+", type=Path, help="video files (anything FFmpeg reads)")
    p.add_argument(
        "--checkpoint",
        type=Path,
        action="append",
        required=True,
        help="a video run (captions, or actions with --decoder lrcn) or its best.pt; "
        "give it twice for both",
    )
    p.add_argument(
        "--beam-size", type=arg(positive), default=1, help="1: greedy, as the source (default)"
    )
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: CUDA when available)")
    args = p.parse_args(argv)
    models = [VideoModel(path, args.device) for path in args.checkpoint]
    failed = 0
    for video in args.videos:
        try:
            lines = [
                f"{'action' if m.actions else 'caption'}: "
                + m.describe(m.features(video)[None], args.beam_size)[0]
                for m in models
            ]
        except CourseError as err:
            failed += 1
            print(f"error: {err}", file=sys.stderr)
            continue
        print(f"{video}\t" + "\t".join(lines))
    return 1 if failed else 0


if __name__ == "__main__":
    run_cli(main)
