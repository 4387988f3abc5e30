"""Figures of the course: images with their captions, the model's architecture, word counts."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt
from matplotlib.patches import Circle, FancyBboxPatch, Rectangle
from PIL import Image

# At 100 dpi an 11-point label is about 15 pixels high, as large as a notebook's body text on a
# laptop screen and on GitHub; figures of 9-10 inches then stay within a notebook's width.
FIGURE_DPI = 100
FONT_SIZE = 11
plt.rcParams.update(
    {
        "figure.dpi": FIGURE_DPI,
        "font.size": FONT_SIZE,
        "axes.titlesize": FONT_SIZE + 1,
        "axes.labelsize": FONT_SIZE,
        "xtick.labelsize": FONT_SIZE,
        "ytick.labelsize": FONT_SIZE,
        "legend.fontsize": FONT_SIZE,
    }
)


def caption_grid(
    images: Sequence[Image.Image],
    captions: Sequence[str | Sequence[str]],
    ncols: int = 4,
    width: float = 9.0,
    wrap: int = 26,
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
        ax.set_title(text, fontsize=FONT_SIZE, loc="left")
    fig.tight_layout()
    return fig


# Colours of the architecture diagrams: one per kind of block.
_CNN, _EMB, _LSTM, _WORD = "#f4b183", "#c9e4c5", "#9dc3e6", "#eeeeee"


def _box(
    ax: plt.Axes,
    x: float,
    y: float,
    w: float,
    h: float,
    text: str,
    color: str,
    fontsize: int = FONT_SIZE,
) -> None:
    """A rounded box centred on (x, y) with a label."""
    ax.add_patch(
        FancyBboxPatch(
            (x - w / 2, y - h / 2),
            w,
            h,
            boxstyle="round,pad=0.02,rounding_size=0.08",
            facecolor=color,
            edgecolor="#444444",
            linewidth=1,
        )
    )
    ax.text(x, y, text, ha="center", va="center", fontsize=fontsize)


def _arrow(
    ax: plt.Axes,
    start: tuple[float, float],
    end: tuple[float, float],
    color: str = "#333333",
    linestyle: str = "-",
) -> None:
    """An arrow from start to end."""
    ax.annotate(
        "",
        xy=end,
        xytext=start,
        arrowprops={
            "arrowstyle": "-|>",
            "color": color,
            "lw": 1.2,
            "shrinkA": 0,
            "shrinkB": 0,
            "linestyle": linestyle,
        },
    )


def _picture(ax: plt.Axes, x: float, y: float, size: float, color: str, label: str) -> None:
    """A small picture (a coloured disc on a white square) centred on (x, y), labelled below."""
    ax.add_patch(
        Rectangle((x - size / 2, y - size / 2), size, size, facecolor="white", edgecolor="#444444")
    )
    ax.add_patch(Circle((x, y), size * 0.3, facecolor=color, edgecolor="none"))
    ax.text(x, y - size / 2 - 0.12, label, ha="center", va="top", fontsize=FONT_SIZE)


def draw_cnn_lstm(video: bool = False, dpi: int = FIGURE_DPI) -> plt.Figure:
    """The CNN-LSTM architecture: an image embedding at t=0 (captioning), or one frame per step."""
    fig, ax = plt.subplots(figsize=(9, 3.6), dpi=dpi)
    ax.set_xlim(-0.2, 9.2)
    ax.set_ylim(-0.35, 4.05)
    ax.axis("off")
    y_in, y_cnn, y_emb, y_lstm, y_out = 0.35, 1.2, 1.95, 2.75, 3.65
    if video:
        steps = [1.6, 3.4, 5.2, 7.0]
        frame_colors = ["#d62728", "#e45f2b", "#f28e2b", "#f2b134"]
        for t, (x, color) in enumerate(zip(steps, frame_colors, strict=True)):
            _picture(ax, x, y_in, 0.45, color, f"frame {t + 1}")
            _arrow(ax, (x, y_in + 0.25), (x, y_cnn - 0.22))
            _box(ax, x, y_cnn, 1.0, 0.4, "CNN", _CNN)
            _arrow(ax, (x, y_cnn + 0.2), (x, y_emb - 0.18))
            _box(ax, x, y_emb, 1.2, 0.34, "embedding", _EMB, fontsize=FONT_SIZE)
            _arrow(ax, (x, y_emb + 0.17), (x, y_lstm - 0.25))
            _box(ax, x, y_lstm, 1.0, 0.5, f"LSTM\nt={t}", _LSTM)
        ax.text(
            0.1, y_cnn, "same CNN\nfor every\nframe", ha="left", va="center", fontsize=FONT_SIZE
        )
        ax.text(0.1, y_lstm, "memory\ncarried\nforward", ha="left", va="center", fontsize=FONT_SIZE)
        last = steps[-1]
        _arrow(ax, (last, y_lstm + 0.25), (last, y_out - 0.2))
        _box(ax, last, y_out, 2.6, 0.4, '"a person juggling"', _WORD)
        ax.text(
            last - 1.45,
            y_out,
            "activity label (or caption)\nafter the last frame",
            ha="right",
            va="center",
            fontsize=FONT_SIZE,
        )
        title = "Video: each frame's CNN embedding is fed to the LSTM at every time step"
    else:
        _picture(ax, 0.45, y_in, 0.5, "#d62728", "image")
        _arrow(ax, (0.45, y_in + 0.25), (0.45, y_cnn - 0.22))
        _box(ax, 0.45, y_cnn, 0.85, 0.44, "CNN\n(ResNet)", _CNN, fontsize=FONT_SIZE)
        _arrow(ax, (0.45, y_cnn + 0.22), (0.45, y_emb - 0.18))
        _box(ax, 0.45, y_emb, 0.85, 0.34, "embedding", _EMB, fontsize=FONT_SIZE)
        steps = [1.9, 3.35, 4.8, 6.25, 7.7]
        words_in = ["<start>", "a", "red", "circle"]
        words_out = ["<start>", "a", "red", "circle", "<end>"]
        _arrow(ax, (0.88, y_emb), (steps[0], y_lstm - 0.25))
        for t, x in enumerate(steps):
            _box(ax, x, y_lstm, 1.0, 0.5, f"LSTM\nt={t}", _LSTM)
            _arrow(ax, (x, y_lstm + 0.25), (x, y_out - 0.18))
            _box(ax, x, y_out, 1.0, 0.34, words_out[t], _WORD, fontsize=FONT_SIZE)
            if t == 0:
                continue
            _box(ax, x, y_in, 1.0, 0.34, words_in[t - 1], _WORD, fontsize=FONT_SIZE)
            _arrow(ax, (x, y_in + 0.17), (x, y_emb - 0.17))
            _box(ax, x, y_emb, 1.0, 0.34, "word emb.", _EMB, fontsize=FONT_SIZE)
            _arrow(ax, (x, y_emb + 0.17), (x, y_lstm - 0.25))
            # Teacher forcing: the true previous word is the next input.
            _arrow(
                ax,
                (steps[t - 1] + 0.3, y_out - 0.17),
                (x - 0.3, y_in + 0.17),
                color="#aaaaaa",
                linestyle="--",
            )
        ax.text(8.35, y_out, "predicted\nnext word", ha="left", va="center", fontsize=FONT_SIZE)
        ax.text(
            8.35,
            y_in,
            "true previous\nword (teacher\nforcing)",
            ha="left",
            va="center",
            fontsize=FONT_SIZE,
        )
        title = "Image captioning: the image embedding enters the LSTM at t=0 only"
    for a, b in zip(steps, steps[1:], strict=False):
        _arrow(ax, (a + 0.5, y_lstm), (b - 0.5, y_lstm))
    ax.set_title(title, fontsize=11)
    fig.tight_layout()
    return fig


def plot_word_frequencies(
    counts: Mapping[str, int], top: int = 30, threshold: int | None = None, dpi: int = FIGURE_DPI
) -> plt.Figure:
    """The `top` most frequent words, and every word's count by rank, on a log scale."""
    ranked = sorted(counts.items(), key=lambda wc: (-wc[1], wc[0]))
    fig, (bars, curve) = plt.subplots(
        1, 2, figsize=(10, 3.4), dpi=dpi, gridspec_kw={"width_ratios": [2.2, 1]}
    )
    shown = ranked[:top]
    bars.bar(range(len(shown)), [c for _, c in shown], color=_LSTM, edgecolor="#444444")
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
    """Loss per step and per epoch (train and validation), and validation perplexity."""
    import math

    h = history if isinstance(history, dict) else vars(history)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(8, 3), dpi=dpi)
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
    ax1.set(xlabel="epoch", ylabel="cross-entropy per word", title="loss")
    ax1.set_ylim(0, min(3.0, max(h["step_loss"][:1] + h["val_loss"])) * 1.05)
    ax1.legend(fontsize=FONT_SIZE)
    ax2.plot(h["epoch"], [math.exp(v) for v in h["val_loss"]], "s-", color="C2")
    ax2.set(xlabel="epoch", ylabel="perplexity", title="validation perplexity")
    fig.tight_layout()
    return fig


def plot_scores_by_beam(
    scores: Mapping[int, Mapping[str, float]],
    metrics: Sequence[str] = ("CIDEr", "Bleu_4"),
    labels: Mapping[str, str] | None = None,
    dpi: int = FIGURE_DPI,
) -> plt.Figure:
    """One small panel per metric: its value against the beam size (1 = greedy)."""
    sizes = sorted(scores)
    fig, axes = plt.subplots(1, len(metrics), figsize=(6, 3), dpi=dpi, squeeze=False)
    for ax, metric in zip(axes.flat, metrics, strict=True):
        values = [scores[k][metric] for k in sizes]
        ax.plot(sizes, values, "o-", color="#1f4e79")
        for k, v in zip(sizes, values, strict=True):
            ax.annotate(
                f"{v:.3f}",
                (k, v),
                textcoords="offset points",
                xytext=(0, 6),
                ha="center",
                fontsize=FONT_SIZE,
            )
        ax.set_xticks(sizes)
        ax.set_xlabel("beam size (1 = greedy)")
        ax.set_title((labels or {}).get(metric, metric), fontsize=FONT_SIZE)
        low, high = min(values), max(values)
        pad = max(0.05 * high, high - low, 1e-3)  # flat lines still get a readable range
        ax.set_ylim(low - pad, high + pad)
    fig.tight_layout()
    return fig
