"""Figures of decoding: scores by beam size, and the partial captions a beam search keeps, as a
tree."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt

from helpers.plots.style import FIGURE_DPI, FONT_SIZE

if TYPE_CHECKING:
    pass


def plot_scores_by_beam(
    scores: Mapping[int, Mapping[str, float]],
    metrics: Sequence[str] = ("CIDEr", "Bleu_4"),
    labels: Mapping[str, str] | None = None,
    dpi: int = FIGURE_DPI,
) -> plt.Figure:
    """One panel per metric: a bar per beam size (1 = greedy), from 0, so differences show true size."""
    sizes = sorted(scores)
    fig, axes = plt.subplots(1, len(metrics), figsize=(8, 3.2), dpi=dpi, squeeze=False)
    for ax, metric in zip(axes.flat, metrics, strict=True):
        values = [scores[k][metric] for k in sizes]
        names = ["greedy" if k == 1 else f"beam {k}" for k in sizes]
        ax.bar(names, values, color="#1f4e79", width=0.6)
        for x, v in enumerate(values):
            ax.annotate(
                f"{v:.3f}",
                (x, v),
                textcoords="offset points",
                xytext=(0, 3),
                ha="center",
                fontsize=FONT_SIZE,
            )
        ax.set_ylim(0, max(values) * 1.18 if max(values) > 0 else 1)  # bars start at 0
        ax.set_title((labels or {}).get(metric, metric), fontsize=FONT_SIZE + 1)
    fig.tight_layout()
    return fig


def plot_beam_tree(
    steps: Sequence,
    words: Sequence[str],
    title: str = "",
    width: float = 10.0,
    dpi: int = FIGURE_DPI,
) -> plt.Figure:
    """Beam search as a tree: per step (column) the kept words with their summed log-probability.

    `steps` is helpers.caption.beam_tree.record_beam_search's list; lines join each word to the beam it
    extends. Dark: the best final caption; light blue: the other final beams; gray: dropped beams.
    """
    k, n = len(steps[0].tokens), len(steps)
    alive = [set() for _ in steps]  # beams of each step that lead to a beam kept at the end
    best = [set() for _ in steps]
    last = steps[-1]
    top = max(range(k), key=lambda b: last.scores[b])
    for beam in range(k):
        at = beam
        for t in range(n - 1, -1, -1):
            alive[t].add(at)
            if beam == top:
                best[t].add(at)
            at = steps[t].parents[at]
    fig, ax = plt.subplots(figsize=(width, 0.9 * k + 1.2), dpi=dpi)
    ax.axis("off")
    ax.set_xlim(-1.5, n - 0.4)
    ax.set_ylim(k - 0.4, -0.9)
    ax.text(-1, (k - 1) / 2, "image", ha="center", va="center", fontsize=FONT_SIZE, weight="bold")
    for t, step in enumerate(steps):
        ax.text(t, -0.65, f"step {t}", ha="center", va="center", fontsize=FONT_SIZE, color="#555")
        for b, (token, parent, score) in enumerate(
            zip(step.tokens, step.parents, step.scores, strict=True)
        ):
            on_best, kept = b in best[t], b in alive[t]
            color = "#1f4e79" if on_best else ("#6fa8dc" if kept else "#bbbbbb")
            x0, y0 = (t - 1, parent) if t else (-1, (k - 1) / 2)
            ax.plot([x0 + 0.32, t - 0.38], [y0, b], color=color, lw=2.5 if on_best else 1.2)
            ax.text(
                t,
                b,
                f"{words[token]}\n{score:.2f}",
                ha="center",
                va="center",
                fontsize=FONT_SIZE,
                color="white" if on_best else "black",
                weight="bold" if on_best else "normal",
                bbox={"boxstyle": "round,pad=0.25", "fc": color, "ec": "none"},
            )
    if title:
        ax.set_title(title, fontsize=FONT_SIZE + 1, loc="left")
    fig.tight_layout()
    return fig
