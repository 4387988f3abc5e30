"""Figures of the auto-encoder aside: images and their reconstructions in rows, codes in two
dimensions, error histograms."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch

from helpers.plots.style import FIGURE_DPI, FONT_SIZE

if TYPE_CHECKING:
    import matplotlib.pyplot as plt


def _as_image(x: torch.Tensor) -> np.ndarray:
    return x.permute(1, 2, 0).clamp(0, 1).numpy()


def plot_image_rows(rows: dict[str, torch.Tensor], titles: list[str] | None = None) -> plt.Figure:
    """Rows of images (each a batch (N, 3, H, W)), one labelled row per entry, about 1.5 inches each."""
    import matplotlib.pyplot as plt

    n = max(len(v) for v in rows.values())
    fig, axes = plt.subplots(
        len(rows), n, figsize=(1.5 * n + 1.2, 1.6 * len(rows)), squeeze=False, dpi=FIGURE_DPI
    )
    for r, (label, images) in enumerate(rows.items()):
        for c in range(n):
            ax = axes[r, c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(images):
                ax.imshow(_as_image(images[c]), interpolation="nearest")
            else:
                ax.axis("off")
            if r == 0 and titles is not None and c < len(titles):
                ax.set_title(titles[c], fontsize=FONT_SIZE)
        axes[r, 0].set_ylabel(label, fontsize=FONT_SIZE, rotation=0, ha="right", va="center")
    fig.tight_layout()
    return fig


def plot_codes_2d(points: torch.Tensor, panels: dict[str, tuple[list[str], dict]]) -> plt.Figure:
    """Scatters of the same 2-D codes, one panel per labelling: {title: (labels, {label: colour})}."""
    import matplotlib.colors
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(panels), figsize=(9.5, 4.4), dpi=FIGURE_DPI, squeeze=False)
    for ax, (title, (labels, palette)) in zip(axes[0], panels.items(), strict=True):
        for name in sorted(set(labels)):
            mask = np.array([label == name for label in labels])
            ax.scatter(
                points[mask, 0],
                points[mask, 1],
                s=14,
                color=palette[name],
                # Only light dots get an outline, to show on the white axes; fewer edges, smaller file.
                edgecolor="#555555"
                if sum(matplotlib.colors.to_rgb(palette[name])) > 2.4
                else "none",
                linewidth=0.5,
                label=f"{name} ({mask.sum()})",
            )
        ax.set_title(title, fontsize=FONT_SIZE + 1)
        ax.set_xlabel("first principal direction")
        # Below the axes: inside, the legend would hide a cluster of points.
        ax.legend(
            fontsize=FONT_SIZE,
            loc="upper center",
            bbox_to_anchor=(0.5, -0.18),
            ncol=3,
            frameon=False,
            columnspacing=0.8,
            handletextpad=0.2,
        )
    axes[0, 0].set_ylabel("second principal direction")
    fig.tight_layout()
    return fig


def plot_error_histograms(
    normal: np.ndarray, unusual: dict[str, np.ndarray], normal_label: str = "tiny COCO val"
) -> plt.Figure:
    """Histograms of reconstruction error: normal images against each kind of unusual image."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4), dpi=FIGURE_DPI)
    everything = np.concatenate([normal, *unusual.values()])
    bins = np.linspace(0, everything.max() * 1.02, 40)
    ax.hist(normal, bins=bins, color="#1f77b4", alpha=0.75, label=f"{normal_label} ({len(normal)})")
    ax.hist(
        list(unusual.values()),
        bins=bins,
        stacked=True,
        color=["#d62728", "#7f7f7f", "#e6b800"][: len(unusual)],
        alpha=0.8,
        label=[f"{k} ({len(v)})" for k, v in unusual.items()],
    )
    ax.set_xlabel("reconstruction error (mean squared pixel error)")
    ax.set_ylabel("images")
    ax.legend(fontsize=FONT_SIZE)
    fig.tight_layout()
    return fig
