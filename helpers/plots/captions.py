"""Images beside their captions, in a grid: the figure every notebook uses to show what a model
wrote."""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
from PIL import Image

from helpers.plots.style import FIGURE_DPI, FONT_SIZE

if TYPE_CHECKING:
    pass


def _aspect(img) -> float:
    """Height over width of a PIL image or an (H, W[, C]) array."""
    height, width = (img.height, img.width) if hasattr(img, "height") else img.shape[:2]
    return height / width


def caption_grid(
    images: Sequence[Image.Image],
    captions: Sequence[str | Sequence[str]],
    ncols: int = 4,
    width: float = 9.0,
    wrap: int = 26,
    dpi: int = FIGURE_DPI,
) -> plt.Figure:
    """Show images in a grid, each above its caption(s); returns the figure.

    Each row is as tall as an image cell plus its longest caption, so long captions never shrink
    the images to thumbnails.
    """
    n = len(images)
    ncols = max(1, min(ncols, n))
    nrows = (n + ncols - 1) // ncols
    cell = width / ncols
    texts = []
    for cap in captions:
        lines = [cap] if isinstance(cap, str) else list(cap)
        texts.append("\n".join(textwrap.fill(line.strip(), wrap) for line in lines))
    line_inches = FONT_SIZE * 1.25 / 72  # one line of caption text
    rows = [
        max((t.count("\n") + 1 for t in texts[r * ncols : (r + 1) * ncols]), default=0)
        for r in range(nrows)
    ]
    # A portrait image is drawn as tall as its cell is wide times its height/width ratio.
    aspect = [
        max(_aspect(img) for img in images[r * ncols : (r + 1) * ncols]) for r in range(nrows)
    ]
    heights = [
        cell * a * 0.95 + lines * line_inches + 0.2 for a, lines in zip(aspect, rows, strict=True)
    ]
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(width, sum(heights)),
        squeeze=False,
        dpi=dpi,
        gridspec_kw={"height_ratios": heights},
    )
    for ax in axes.flat:
        ax.axis("off")
    for ax, img, text in zip(axes.flat, images, texts, strict=False):
        ax.imshow(img)
        ax.set_title(text, fontsize=FONT_SIZE, loc="left")
    fig.tight_layout()
    return fig
