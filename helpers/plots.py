"""Figures of the course: images with their captions, the model's architecture, word counts."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
from matplotlib.patches import Circle, FancyBboxPatch, Rectangle
from PIL import Image

if TYPE_CHECKING:
    import torch

    from helpers.vocabulary import Vocabulary

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


def draw_cnn_lstm(video: bool = False, mode: str = "train", dpi: int = FIGURE_DPI) -> plt.Figure:
    """The CNN-LSTM: image embedding at t=0, trained ("train") or captioning ("inference"); or video.

    "train" feeds the true previous word (teacher forcing), so a wrong guess (red) does not spread;
    "inference" feeds each predicted word back, so the same wrong guess becomes the next input.
    """
    if mode not in ("train", "inference"):
        raise ValueError(f"mode must be 'train' or 'inference', not {mode!r}")
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
        _box(ax, 0.45, y_emb, 1.15, 0.34, "embedding", _EMB, fontsize=FONT_SIZE)
        steps = [1.9, 3.35, 4.8, 6.25, 7.7]
        # The model guesses "blue" at t=2 where the caption says "red": the two modes differ in
        # what the next step then reads.
        words_out = ["<start>", "a", "blue", "circle", "<end>"]
        truth = ["<start>", "a", "red", "circle", "<end>"]
        words_in = truth[:-1] if mode == "train" else words_out[:-1]
        _arrow(ax, (1.03, y_emb), (steps[0], y_lstm - 0.25))
        for t, x in enumerate(steps):
            _box(ax, x, y_lstm, 1.0, 0.5, f"LSTM\nt={t}", _LSTM)
            _arrow(ax, (x, y_lstm + 0.25), (x, y_out - 0.18))
            wrong = words_out[t] != truth[t]
            _box(ax, x, y_out, 1.0, 0.34, words_out[t], "#f4a6a6" if wrong else _WORD)
            if t == 0:
                continue
            fed = words_in[t - 1]
            fed_color = "#f4a6a6" if fed != truth[t - 1] else (_EMB if mode == "train" else _WORD)
            _box(ax, x, y_in, 1.0, 0.34, fed, fed_color)
            _arrow(ax, (x, y_in + 0.17), (x, y_emb - 0.17))
            _box(ax, x, y_emb, 1.0, 0.34, "word emb.", _EMB)
            _arrow(ax, (x, y_emb + 0.17), (x, y_lstm - 0.25))
            if mode == "inference":
                # The predicted word, right or wrong, is the next step's input.
                _arrow(
                    ax,
                    (steps[t - 1] + 0.3, y_out - 0.17),
                    (x - 0.3, y_in + 0.17),
                    color="#777777",
                    linestyle="--",
                )
        ax.text(8.35, y_out, "predicted\nnext word", ha="left", va="center", fontsize=FONT_SIZE)
        if mode == "train":
            ax.text(
                8.35,
                y_in,
                "true previous\nword of the\nhuman caption",
                ha="left",
                va="center",
                fontsize=FONT_SIZE,
            )
            title = "Training (teacher forcing): each step reads the caption's true previous word"
        else:
            ax.text(
                8.35,
                y_in,
                "the model's own\nprevious word\n(fed back)",
                ha="left",
                va="center",
                fontsize=FONT_SIZE,
            )
            title = "Inference (captioning): each step reads the word the model just predicted"
    for a, b in zip(steps, steps[1:], strict=False):
        _arrow(ax, (a + 0.5, y_lstm), (b - 0.5, y_lstm))
    ax.set_title(title, fontsize=FONT_SIZE + 1)
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

    `steps` is helpers.beam_tree.record_beam_search's list; lines join each word to the beam it
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


def plot_packing(
    captions: Sequence[Sequence[int]] | torch.Tensor,
    lengths: Sequence[int],
    vocab: Vocabulary,
    dpi: int = FIGURE_DPI,
) -> plt.Figure:
    """A padded batch as a grid (a column per caption, a row per time step), numbered in the
    order `pack_padded_sequence` reads the real words; padding cells are grey and unnumbered."""
    import torch
    from torch.nn.utils.rnn import pack_padded_sequence

    from helpers.errors import CourseError

    targets = torch.as_tensor(captions)
    lengths = [int(n) for n in lengths]
    if list(lengths) != sorted(lengths, reverse=True):
        raise CourseError(f"plot_packing: lengths {lengths} must be sorted longest first")
    n, steps = targets.shape
    # Pack each cell's flat position: torch itself then says which cell it reads k-th.
    positions = torch.arange(n * steps).view(n, steps)
    packed = pack_padded_sequence(positions, lengths, batch_first=True)
    order = {int(p): k for k, p in enumerate(packed.data, start=1)}
    col_w, row_h = 1.9, 0.42
    fig, ax = plt.subplots(figsize=(min(10.0, 1.6 + col_w * n), 0.9 + row_h * steps), dpi=dpi)
    for b in range(n):
        for t in range(steps):
            k = order.get(b * steps + t)
            color = _EMB if k else "#d9d9d9"
            ax.add_patch(Rectangle((b, t), 1, 1, facecolor=color, edgecolor="white", lw=2))
            word = vocab.id_to_word[int(targets[b, t])]
            ax.text(
                b + 0.55, t + 0.5, word, ha="center", va="center", color="black" if k else "#777777"
            )
            if k:
                ax.text(
                    b + 0.06,
                    t + 0.5,
                    str(k),
                    ha="left",
                    va="center",
                    color="#c00000",
                    fontweight="bold",
                    gid=f"order {b} {t}",
                )
    for t, size in enumerate(packed.batch_sizes.tolist()):
        ax.text(n + 0.1, t + 0.5, f"{size}", ha="left", va="center", gid=f"batch_size {t}")
    ax.text(n + 0.1, -0.15, "batch_sizes", ha="left", va="bottom", fontweight="bold")
    ax.set_xlim(-0.02, n + 0.9)
    ax.set_ylim(steps, -0.7)
    ax.set_xticks(
        [b + 0.5 for b in range(n)], [f"caption {b}\n(length {lengths[b]})" for b in range(n)]
    )
    ax.xaxis.tick_top()
    ax.set_yticks([t + 0.5 for t in range(steps)], [f"t={t}" for t in range(steps)])
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    ax.set_title(
        "green: real word, numbered in the order packing reads it; grey: <pad>, never read",
        fontsize=FONT_SIZE,
        loc="left",
        pad=6,
    )
    fig.tight_layout()
    return fig


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

    `weights` is (words, grid, grid), e.g. helpers.attention.attend_file's. Each map is scaled to
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


def draw_attention_step(dpi: int = FIGURE_DPI) -> plt.Figure:
    """One step t of the attention decoder: scores from the grid and h, softmax, context, LSTMCell."""
    fig, ax = plt.subplots(figsize=(10, 4.2), dpi=dpi)
    ax.set_xlim(-0.2, 10.2)
    ax.set_ylim(-0.45, 4.3)
    ax.axis("off")
    alphas = [0.02, 0.05, 0.02, 0.60, 0.12, 0.03, 0.10, 0.04, 0.02]  # an example: sums to 1
    for k in range(9):  # the grid of features, and the same grid of weights
        r, c = divmod(k, 3)
        ax.add_patch(Rectangle((0.2 + 0.45 * c, 3.0 - 0.45 * r), 0.42, 0.42, fc=_CNN, ec="#444"))
        shade = plt.cm.inferno(0.15 + 0.85 * alphas[k] / max(alphas))
        ax.add_patch(Rectangle((4.1 + 0.45 * c, 3.0 - 0.45 * r), 0.42, 0.42, fc=shade, ec="#444"))
        ax.text(
            4.31 + 0.45 * c,
            3.21 - 0.45 * r,
            f"{alphas[k]:.2f}",
            ha="center",
            va="center",
            fontsize=FONT_SIZE - 2,
            color="white" if alphas[k] < 0.3 else "black",
        )
    ax.text(0.85, 3.75, "grid: L places,\na vector $f_i$ each", ha="center", va="bottom")
    ax.text(4.75, 3.75, r"weights $\alpha_{t,i}$ (sum 1)", ha="center", va="bottom")
    _box(ax, 0.85, 0.6, 1.3, 0.55, "$h_{t-1}$\n(memory)", _LSTM)
    _box(ax, 2.55, 2.55, 1.5, 0.9, "score each place\n$w^T \\tanh(W_f f_i$\n$+ W_h h_{t-1})$", _EMB)
    _arrow(ax, (1.55, 2.75), (1.8, 2.65))
    _arrow(ax, (1.2, 0.88), (2.2, 2.1))
    _arrow(ax, (3.3, 2.55), (4.05, 2.75))
    ax.text(3.68, 2.35, "softmax", ha="center", va="top", fontsize=FONT_SIZE - 1)
    _box(ax, 6.35, 2.55, 1.5, 0.9, "context $z_t$\n$\\beta_t \\sum_i \\alpha_{t,i} f_i$", _EMB)
    _arrow(ax, (5.5, 2.75), (5.6, 2.65))
    _box(ax, 4.75, 0.6, 1.5, 0.55, "previous word\n$y_{t-1}$ embedded", _WORD)
    _box(ax, 8.0, 1.45, 1.2, 0.6, "LSTMCell", _LSTM)
    _arrow(ax, (6.9, 2.1), (7.6, 1.75))
    _arrow(ax, (5.5, 0.6), (7.5, 1.3))
    ax.text(8.0, 0.95, "(and $h_{t-1}, c_{t-1}$)", ha="center", va="top", fontsize=FONT_SIZE - 1)
    _box(ax, 8.0, 3.0, 1.2, 0.5, "word $y_t$", _WORD)
    _arrow(ax, (8.0, 1.75), (8.0, 2.75))
    ax.text(8.7, 2.25, "Linear,\nsoftmax", ha="left", va="center", fontsize=FONT_SIZE - 1)
    _arrow(ax, (8.6, 1.45), (9.9, 1.45))
    ax.text(9.25, 1.2, "$h_t$: next step", ha="center", va="top", fontsize=FONT_SIZE - 1)
    ax.set_title(
        "One step of Show, Attend and Tell: where to look depends on what was said so far",
        fontsize=FONT_SIZE + 1,
    )
    fig.tight_layout()
    return fig


def plot_pointing_game(summary: Mapping, dpi: int = FIGURE_DPI) -> plt.Figure:
    """Bars of the pointing game's hit rate next to its chance and uniform-attention rates, per group.

    `summary` is helpers.attention.PointingGame.summary(): the rates overall and under "by".
    """
    order = ("colour", "shape", "one shape", "two shapes")
    by = summary["by"]
    groups = [("all", summary), *((g, by[g]) for g in order if g in by)]
    fig, ax = plt.subplots(figsize=(9, 3.8), dpi=dpi)
    kinds = (
        ("hit", "attention's peak", "#1f4e79"),
        ("chance", "chance (box area)", "#bbbbbb"),
        ("uniform", "uniform attention", "#f4b183"),
    )
    for k, (key, label, color) in enumerate(kinds):
        xs = [g + (k - 1) * 0.27 for g in range(len(groups))]
        values = [row[key] for _, row in groups]
        ax.bar(xs, values, 0.26, label=label, color=color)
        for x, v in zip(xs, values, strict=True):
            ax.text(x, v + 0.02, f"{v:.0%}", ha="center", va="bottom", fontsize=FONT_SIZE - 1)
    ax.set_xticks(range(len(groups)), [f"{name}\n({row['words']} words)" for name, row in groups])
    ax.set_ylim(0, 1.12)
    ax.set_ylabel("share of named words")
    ax.yaxis.set_major_formatter(plt.FuncFormatter(lambda v, _: f"{v:.0%}"))
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=3, frameon=False)
    ax.set_title("Pointing game: is the attention's peak inside the named object's box?")
    fig.tight_layout()
    return fig


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
    """Confusion matrices side by side (helpers.caption_video.ActionReport): the share of each true
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
