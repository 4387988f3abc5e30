"""Figures of attention: where each word of a caption looked, and the pointing game's hit rates
beside their baselines."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
from matplotlib.patches import Rectangle
from PIL import Image

from helpers.plots.style import FIGURE_DPI, FONT_SIZE

if TYPE_CHECKING:
    import torch


def plot_attention(
    view: Image.Image,
    words: Sequence[str],
    weights: torch.Tensor,
    boxes: Sequence[Sequence[Sequence[float]]] | None = None,
    title: str = "",
    ncols: int = 5,
    width: float = 10.0,
    dpi: int = FIGURE_DPI,
) -> plt.Figure:
    """The image, then for each word the attention that wrote it, upsampled over the image.

    `weights` is (words, grid, grid), e.g. helpers.caption.attention.attend_file's. Each map is scaled to
    its own peak (bright = looked at most), and a + marks the peak cell. `boxes`, per word, are
    (left, top, right, bottom) boxes in the view's pixels to outline (the objects a word names).
    """
    panels = len(words) + 1
    ncols = max(1, min(ncols, panels))
    nrows = (panels + ncols - 1) // ncols
    cell = width / ncols
    extent = (0, view.width, view.height, 0)
    fig, axes = plt.subplots(
        nrows,
        ncols,
        figsize=(width, nrows * (cell * view.height / view.width + 0.45) + 0.5 * bool(title)),
        squeeze=False,
        dpi=dpi,
    )
    for ax in axes.flat:
        ax.axis("off")
    axes.flat[0].imshow(view)
    axes.flat[0].set_title("image", fontsize=FONT_SIZE)
    g = weights.shape[-1]
    for i, (ax, word, w) in enumerate(zip(axes.flat[1:], words, weights, strict=False)):
        w = w.detach().cpu().float().numpy()
        ax.imshow(view.convert("L"), cmap="gray", extent=extent)
        ax.imshow(w, cmap="inferno", alpha=0.6, extent=extent, interpolation="bilinear", vmin=0)
        row, col = divmod(int(w.argmax()), g)
        ax.plot(
            (col + 0.5) * view.width / g,
            (row + 0.5) * view.height / g,
            "+",
            color="cyan",
            ms=14,
            mew=2.5,
        )
        for left, top, right, bottom in boxes[i] if boxes else ():
            ax.add_patch(
                Rectangle((left, top), right - left, bottom - top, fill=False, ec="lime", lw=2)
            )
        ax.set_xlim(0, view.width)
        ax.set_ylim(view.height, 0)
        ax.set_title(word, fontsize=FONT_SIZE + 1)
    if title:
        fig.suptitle(title, fontsize=FONT_SIZE + 1, x=0.01, ha="left")
    fig.tight_layout()
    return fig


def plot_pointing_game(
    summary: Mapping, older: Mapping | None = None, dpi: int = FIGURE_DPI
) -> plt.Figure:
    """Bars of the pointing game's hit rate next to its chance and uniform-attention rates, per group.

    `summary` is helpers.evaluate.pointing.PointingGame.summary(): the rates overall and under "by"
    (the bound game: a word must point inside the object its caption binds it to). `older`, the
    summary of the older, unbound game, adds its hit rate as a fourth bar in the groups it has.
    """
    order = ("colour", "shape", "one shape", "two shapes", "grayscale")
    by = summary["by"]
    groups = [("all", summary), *((g, by[g]) for g in order if g in by)]
    before = {"all": older, **older["by"]} if older else {}
    kinds = [
        ("hit", "attention's peak", "#1f4e79"),
        ("chance", "chance (box area)", "#bbbbbb"),
        ("uniform", "uniform attention", "#f4b183"),
    ]
    if older:
        kinds[0] = ("hit", "attention's peak, bound", "#1f4e79")
        kinds.insert(1, ("older", "older game (unbound)", "#9dc3e6"))
    width = 0.8 / len(kinds)
    fig, ax = plt.subplots(figsize=(10, 4), dpi=dpi)
    for k, (key, label, color) in enumerate(kinds):
        bars = [
            (
                g + (k - (len(kinds) - 1) / 2) * width,
                before[name]["hit"] if key == "older" else row[key],
            )
            for g, (name, row) in enumerate(groups)
            if key != "older" or name in before
        ]
        ax.bar([x for x, _ in bars], [v for _, v in bars], width * 0.95, label=label, color=color)
        if key in ("hit", "older"):  # inside the bar, upright; the baselines' are in the table
            for x, v in bars:
                ink = "white" if key == "hit" else "black"
                ax.text(x, v - 0.03, f"{v:.0%}", ha="center", va="top", rotation=90, color=ink)
    ax.set_xticks(range(len(groups)), [f"{name}\n({row['words']} words)" for name, row in groups])
    ax.set_ylim(0, 1.12)
    ax.set_ylabel("share of named words")
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=len(kinds), frameon=False)
    ax.set_title("Pointing game: is the attention's peak inside the named object's box?")
    fig.tight_layout()
    return fig
