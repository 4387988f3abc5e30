"""Figures of the data and of training: how often words occur, and the loss curves of a run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt

from helpers.plots.style import FIGURE_DPI, FONT_SIZE, LSTM_COLOR

if TYPE_CHECKING:
    pass


def plot_word_frequencies(
    counts: Mapping[str, int], top: int = 30, threshold: int | None = None, dpi: int = FIGURE_DPI
) -> plt.Figure:
    """The `top` most frequent words, and every word's count by rank, on a log scale."""
    ranked = sorted(counts.items(), key=lambda wc: (-wc[1], wc[0]))
    fig, (bars, curve) = plt.subplots(
        1, 2, figsize=(10, 3.4), dpi=dpi, gridspec_kw={"width_ratios": [2.2, 1]}
    )
    shown = ranked[:top]
    bars.bar(range(len(shown)), [c for _, c in shown], color=LSTM_COLOR, edgecolor="#444444")
    bars.set_xticks(
        range(len(shown)),
        [w for w, _ in shown],
        rotation=60,
        ha="right",
        rotation_mode="anchor",
        fontsize=FONT_SIZE,
    )
    bars.set_xlim(-0.7, len(shown) - 0.3)
    bars.set_yscale("log")
    bars.set_ylabel("occurrences")
    bars.set_title(f"the {len(shown)} most frequent words", fontsize=FONT_SIZE)
    curve.plot(range(1, len(ranked) + 1), [c for _, c in ranked], color="#1f4e79")
    curve.set_yscale("log")
    curve.set_xlabel("rank of the word")
    curve.set_title(f"all {len(ranked)} words by rank", fontsize=FONT_SIZE)
    if threshold is not None:
        kept = sum(1 for _, c in ranked if c >= threshold)
        for ax in (bars, curve):
            ax.axhline(
                threshold,
                color="#c00000",
                linestyle="--",
                linewidth=1,
                label=f"threshold {threshold}",
            )
        bars.legend(loc="upper right", fontsize=FONT_SIZE)
        if kept < len(ranked):
            curve.axvspan(kept + 0.5, len(ranked) + 0.5, color="#c00000", alpha=0.12)
        curve.text(
            0.97,
            0.95,
            f"threshold {threshold}:\n{kept} kept, {len(ranked) - kept} dropped",
            transform=curve.transAxes,
            ha="right",
            va="top",
            fontsize=FONT_SIZE,
            color="#c00000",
        )
        # Keep the threshold line in view even when every word occurs far more often.
        for ax in (bars, curve):
            low, high = ax.get_ylim()
            ax.set_ylim(min(low, threshold / 2), high)
    fig.tight_layout()
    return fig


def plot_history(history, dpi: int = FIGURE_DPI) -> plt.Figure:
    """Loss per step and per epoch (train and validation; linear axes), and validation perplexity.

    A star marks the lowest validation loss: the epoch training saved as best.pt.
    """
    import math

    h = history if isinstance(history, dict) else vars(history)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 3.6), dpi=dpi)
    steps = len(h["step_loss"])
    per_epoch = steps / max(1, len(h["epoch"]))
    ax1.plot(
        [s / per_epoch for s in range(1, steps + 1)],
        h["step_loss"],
        lw=0.6,
        alpha=0.5,
        label="train (each step)",
    )
    ax1.plot(h["epoch"], h["train_loss"], "o-", label="train (epoch mean)")
    ax1.plot(h["epoch"], h["val_loss"], "s-", label="validation")
    ax1.set(xlabel="epoch", ylabel="cross-entropy per word", title="loss (linear scale)")
    ax1.set_ylim(0, min(3.0, max(h["step_loss"][:1] + h["val_loss"])) * 1.05)
    perplexity = [math.exp(v) for v in h["val_loss"]]
    ax2.plot(h["epoch"], perplexity, "s-", color="C2")
    if h["val_loss"]:
        best = min(range(len(h["val_loss"])), key=h["val_loss"].__getitem__)
        star = dict(marker="*", ms=16, color="C3", ls="none", zorder=5)
        label = f"lowest validation (epoch {h['epoch'][best]}): best.pt"
        ax1.plot(h["epoch"][best], h["val_loss"][best], label=label, **star)
        ax2.plot(h["epoch"][best], perplexity[best], **star)
    ax1.legend(fontsize=FONT_SIZE)
    ax2.set(xlabel="epoch", ylabel="perplexity", title="validation perplexity")
    # Perplexity cannot go below 1 (a model sure of every word): the axis starts there, so the
    # last epochs' small changes look as small as they are.
    ax2.set_ylim(1.0, max(perplexity) * 1.05)
    fig.tight_layout()
    return fig
