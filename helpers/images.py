"""Loading images: any file PIL can read becomes RGB, a bad file becomes a one-line error."""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from torchvision import transforms

from helpers.errors import CourseError


def load_rgb(path: str | os.PathLike) -> Image.Image:
    """Open an image file fully decoded as RGB (grayscale, CMYK, RGBA and palette included)."""
    path = Path(path)
    if not path.is_file():
        raise CourseError(f"{path}: image file not found")
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode in ("RGBA", "LA", "P", "PA"):
                # Composite transparency onto white instead of letting it turn black.
                rgba = img.convert("RGBA")
                background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
                return Image.alpha_composite(background, rgba).convert("RGB")
            return img.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        raise CourseError(f"{path}: cannot be read as an image ({err})") from None


# ImageNet statistics: the pretrained ResNets expect inputs normalised this way.
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def train_transform(crop_size: int = 224, flip: bool = True) -> transforms.Compose:
    """The source's training transform: random crop, optional horizontal flip, tensor, normalise."""
    steps = [transforms.RandomCrop(crop_size, pad_if_needed=True)]
    if flip:  # off for captions that say "left" or "right": a flip would make them false
        steps.append(transforms.RandomHorizontalFlip())
    return transforms.Compose([*steps, transforms.ToTensor(), transforms.Normalize(MEAN, STD)])


def eval_transform(crop_size: int = 224) -> transforms.Compose:
    """The deterministic transform for validation and captioning: centre crop, tensor, normalise."""
    return transforms.Compose(
        [transforms.CenterCrop(crop_size), transforms.ToTensor(), transforms.Normalize(MEAN, STD)]
    )
