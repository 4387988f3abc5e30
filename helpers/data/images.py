"""Loading images and the transforms the models see: any file PIL can read becomes RGB, a bad file
a one-line error."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError
from torchvision import transforms

from helpers.errors import CourseError

# PIL's own limit (about 89 million pixels, 268 MB as RGB): a header that claims more is refused
# before anything is decoded, so one huge or hostile file cannot take gigabytes.
MAX_PIXELS = Image.MAX_IMAGE_PIXELS or 89_478_485


class ImageTooLarge(CourseError):
    """An image whose header claims more pixels than MAX_PIXELS; `size` says how many."""

    def __init__(self, path: Path, size: str) -> None:
        super().__init__(f"{path}: image too large ({size}); shrink it first")
        self.size = size


def to_rgb(img: Image.Image) -> Image.Image:
    """Any PIL mode as 8-bit RGB by value: 16-bit and float images scaled, transparency on white.

    PIL's own convert("RGB") clips a 16-bit grey of 32768 to 255 (a white picture); here it
    becomes 128, as a viewer shows it.
    """
    mode = img.mode
    if mode.startswith("I") or mode == "F":
        values = np.asarray(img, dtype=np.float64)
        if mode == "F":
            # Floats in 0..1 are the usual convention; anything larger is taken as 0..255.
            values = values * 255 if values.size and values.max() <= 1.0 else values
        elif mode != "I" or (values.size and values.max() > 255):
            values = values / 257  # 0..65535 onto 0..255, so 65535 is white and 257 is 1
        grey = np.clip(np.rint(values), 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if mode in ("RGBA", "RGBa", "LA", "La", "P", "PA") or "transparency" in img.info:
        # Composite transparency onto white instead of letting it turn black.
        rgba = img.convert("LA").convert("RGBA") if mode == "La" else img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def load_rgb(path: str | os.PathLike, draft: tuple[int, int] | None = None) -> Image.Image:
    """Open an image fully decoded as RGB; a JPEG may decode smaller, down to `draft` (w, h)."""
    path = Path(path)
    if not path.is_file():
        raise CourseError(f"{path}: image file not found")
    try:
        with warnings.catch_warnings():
            # PIL warns about large images; the size check below decides, in one line.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(path)
        with img:
            if draft is not None:
                # libjpeg decodes at 1/2, 1/4 or 1/8 scale, picking the smallest one whose width and
                # height both stay >= `draft`: far less to decode and resize. Other formats ignore it.
                img.draft("RGB", draft)
            width, height = img.size
            if width * height > MAX_PIXELS:
                raise ImageTooLarge(
                    path, f"{width}x{height} pixels, over the limit of {MAX_PIXELS:,}"
                )
            img.load()
            return to_rgb(img)
    except Image.DecompressionBombError:
        raise ImageTooLarge(path, f"over {MAX_PIXELS:,} pixels") from None
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


def inference_transform(resize: int, crop: int, squeeze: bool = False) -> transforms.Compose:
    """A new image as validation sees it: resized to resize x resize, then the centre crop.

    squeeze=True is the source's load_image instead: the whole image squeezed to crop x crop, which
    shows the model more of the picture than it ever saw in training, each thing smaller.
    """
    lanczos = transforms.InterpolationMode.LANCZOS
    if squeeze:
        return transforms.Compose(
            [
                transforms.Resize((crop, crop), lanczos),
                transforms.ToTensor(),
                transforms.Normalize(MEAN, STD),
            ]
        )
    return transforms.Compose(
        [transforms.Resize((resize, resize), lanczos), *eval_transform(crop).transforms]
    )


def resize_image(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """Resize to (width, height) with the LANCZOS filter (Pillow's old name for it was ANTIALIAS)."""
    return img.resize(size, Image.LANCZOS)


def tensor_to_image(tensor: torch.Tensor) -> Image.Image:
    """Undo the ImageNet normalisation of a (3, H, W) tensor, for showing it."""
    mean = torch.tensor(MEAN).view(3, 1, 1)
    std = torch.tensor(STD).view(3, 1, 1)
    pixels = (tensor.detach().cpu().float() * std + mean).clamp(0, 1)
    return Image.fromarray((pixels.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8))
