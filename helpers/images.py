"""Loading images: any file PIL can read becomes RGB, a bad file becomes a one-line error."""

from __future__ import annotations

import os
from pathlib import Path

from PIL import Image, UnidentifiedImageError

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
