"""Figures of the course: images with their captions."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence

import matplotlib.pyplot as plt
from PIL import Image

# Small enough that notebooks stored with their figures stay well under 1 MB.
FIGURE_DPI = 60


def caption_grid(
    images: Sequence[Image.Image],
    captions: Sequence[str | Sequence[str]],
    ncols: int = 4,
    width: float = 9.0,
    wrap: int = 32,
    dpi: int = FIGURE_DPI,
) -> plt.Figure:
    """Show images in a grid, each above its caption(s); returns the figure."""
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = (n + ncols - 1) // ncols
    cell = width / ncols
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(width, nrows * cell * 1.25), squeeze=False, dpi=dpi
    )
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, cap in zip(axes.flat, images, captions, strict=False):
        ax.imshow(img)
        lines = [cap] if isinstance(cap, str) else list(cap)
        text = "\n".join(textwrap.fill(line.strip(), wrap) for line in lines)
        ax.set_title(text, fontsize=8, loc="left")
    fig.tight_layout()
    return fig
