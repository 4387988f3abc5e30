"""Figures of video: a clip's frames in a strip, and the confusion matrices of action classifiers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt

from helpers.plots.captions import caption_grid
from helpers.plots.style import FIGURE_DPI

if TYPE_CHECKING:
    pass


def frame_strip(frames, gap: int = 4):
    """A clip's frames (T, H, W, 3) side by side in one image, with white gaps between them."""
    import numpy as np

    t, h, w, _ = frames.shape
    strip = np.full((h, t * w + (t - 1) * gap, 3), 255, dtype=np.uint8)
    for k, frame in enumerate(frames):
        strip[:, k * (w + gap) : k * (w + gap) + w] = frame
    return strip


def clip_strips(
    clips: Sequence, captions: Sequence[str | Sequence[str]], dpi: int = FIGURE_DPI
) -> plt.Figure:
    """Clips, each as a strip of its frames (T, H, W, 3) above its caption(s)."""
    return caption_grid([frame_strip(f) for f in clips], captions, ncols=1, wrap=90, dpi=dpi)


def plot_confusion(reports: Mapping, dpi: int = FIGURE_DPI) -> plt.Figure:
    """Confusion matrices side by side (helpers.evaluate.video.ActionReport): the share of each true
    action (row) given each predicted action (column), with the counts written in."""
    import numpy as np

    fig, axes = plt.subplots(
        1, len(reports), figsize=(5.2 * len(reports), 5.0), dpi=dpi, squeeze=False
    )
    for ax, (name, report) in zip(axes[0], reports.items(), strict=True):
        counts = np.array(report.confusion)
        shares = counts / np.maximum(counts.sum(1, keepdims=True), 1)
        ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
        for (row, col), n in np.ndenumerate(counts):
            if n:
                white = shares[row, col] > 0.6
                ax.text(col, row, n, ha="center", va="center", color="white" if white else "black")
        ticks = range(len(report.classes))
        ax.set_xticks(ticks, report.classes, rotation=90)
        ax.set_yticks(ticks, report.classes)
        ax.set_xlabel("predicted")
        ax.set_ylabel("true action")
        ax.set_title(f"{name}: {report.accuracy:.1%} right")
    fig.tight_layout()
    return fig
