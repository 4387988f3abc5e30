"""Diagrams that explain: the CNN + LSTM (images and video, training and captioning), one
attention step, how captions of different lengths are packed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib.pyplot as plt
from matplotlib.patches import Circle, FancyBboxPatch, Rectangle

from helpers.errors import CourseError
from helpers.plots.style import (
    CNN_COLOR,
    EMBEDDING_COLOR,
    FIGURE_DPI,
    FONT_SIZE,
    LSTM_COLOR,
    WORD_COLOR,
)

if TYPE_CHECKING:
    import torch


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
            _box(ax, x, y_cnn, 1.0, 0.4, "CNN", CNN_COLOR)
            _arrow(ax, (x, y_cnn + 0.2), (x, y_emb - 0.18))
            _box(ax, x, y_emb, 1.2, 0.34, "embedding", EMBEDDING_COLOR, fontsize=FONT_SIZE)
            _arrow(ax, (x, y_emb + 0.17), (x, y_lstm - 0.25))
            _box(ax, x, y_lstm, 1.0, 0.5, f"LSTM\nt={t}", LSTM_COLOR)
        ax.text(
            0.1, y_cnn, "same CNN\nfor every\nframe", ha="left", va="center", fontsize=FONT_SIZE
        )
        ax.text(0.1, y_lstm, "memory\ncarried\nforward", ha="left", va="center", fontsize=FONT_SIZE)
        last = steps[-1]
        _arrow(ax, (last, y_lstm + 0.25), (last, y_out - 0.2))
        _box(ax, last, y_out, 2.6, 0.4, '"a person juggling"', WORD_COLOR)
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
        _box(ax, 0.45, y_cnn, 0.85, 0.44, "CNN\n(ResNet)", CNN_COLOR, fontsize=FONT_SIZE)
        _arrow(ax, (0.45, y_cnn + 0.22), (0.45, y_emb - 0.18))
        _box(ax, 0.45, y_emb, 1.15, 0.34, "embedding", EMBEDDING_COLOR, fontsize=FONT_SIZE)
        steps = [1.9, 3.35, 4.8, 6.25, 7.7]
        # The model guesses "blue" at t=2 where the caption says "red": the two modes differ in
        # what the next step then reads.
        words_out = ["<start>", "a", "blue", "circle", "<end>"]
        truth = ["<start>", "a", "red", "circle", "<end>"]
        words_in = truth[:-1] if mode == "train" else words_out[:-1]
        _arrow(ax, (1.03, y_emb), (steps[0], y_lstm - 0.25))
        for t, x in enumerate(steps):
            _box(ax, x, y_lstm, 1.0, 0.5, f"LSTM\nt={t}", LSTM_COLOR)
            _arrow(ax, (x, y_lstm + 0.25), (x, y_out - 0.18))
            wrong = words_out[t] != truth[t]
            _box(ax, x, y_out, 1.0, 0.34, words_out[t], "#f4a6a6" if wrong else WORD_COLOR)
            if t == 0:
                continue
            fed = words_in[t - 1]
            fed_color = (
                "#f4a6a6"
                if fed != truth[t - 1]
                else (EMBEDDING_COLOR if mode == "train" else WORD_COLOR)
            )
            _box(ax, x, y_in, 1.0, 0.34, fed, fed_color)
            _arrow(ax, (x, y_in + 0.17), (x, y_emb - 0.17))
            _box(ax, x, y_emb, 1.0, 0.34, "word emb.", EMBEDDING_COLOR)
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


def plot_packing(
    captions: Sequence[Sequence[int]] | torch.Tensor,
    lengths: Sequence[int],
    vocab,
    dpi: int = FIGURE_DPI,
) -> plt.Figure:
    """A padded batch as a grid (a column per caption, a row per time step), numbered in the
    order `pack_padded_sequence` reads the real words; padding cells are grey and unnumbered.
    `vocab` is the Vocabulary (helpers.data) the ids come from: only its id_to_word is read."""
    import torch
    from torch.nn.utils.rnn import pack_padded_sequence

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
            color = EMBEDDING_COLOR if k else "#d9d9d9"
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


def draw_attention_step(dpi: int = FIGURE_DPI) -> plt.Figure:
    """One step t of the attention decoder: scores from the grid and h, softmax, context, LSTMCell."""
    fig, ax = plt.subplots(figsize=(10, 4.2), dpi=dpi)
    ax.set_xlim(-0.2, 10.2)
    ax.set_ylim(-0.45, 4.3)
    ax.axis("off")
    alphas = [0.02, 0.05, 0.02, 0.60, 0.12, 0.03, 0.10, 0.04, 0.02]  # an example: sums to 1
    for k in range(9):  # the grid of features, and the same grid of weights
        r, c = divmod(k, 3)
        ax.add_patch(
            Rectangle((0.2 + 0.45 * c, 3.0 - 0.45 * r), 0.42, 0.42, fc=CNN_COLOR, ec="#444")
        )
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
    _box(ax, 0.85, 0.6, 1.3, 0.55, "$h_{t-1}$\n(memory)", LSTM_COLOR)
    _box(
        ax,
        2.55,
        2.55,
        1.5,
        0.9,
        "score each place\n$w^T \\tanh(W_f f_i$\n$+ W_h h_{t-1})$",
        EMBEDDING_COLOR,
    )
    _arrow(ax, (1.55, 2.75), (1.8, 2.65))
    _arrow(ax, (1.2, 0.88), (2.2, 2.1))
    _arrow(ax, (3.3, 2.55), (4.05, 2.75))
    ax.text(3.68, 2.35, "softmax", ha="center", va="top", fontsize=FONT_SIZE - 1)
    _box(
        ax,
        6.35,
        2.55,
        1.5,
        0.9,
        "context $z_t$\n$\\beta_t \\sum_i \\alpha_{t,i} f_i$",
        EMBEDDING_COLOR,
    )
    _arrow(ax, (5.5, 2.75), (5.6, 2.65))
    _box(ax, 4.75, 0.6, 1.5, 0.55, "previous word\n$y_{t-1}$ embedded", WORD_COLOR)
    _box(ax, 8.0, 1.45, 1.2, 0.6, "LSTMCell", LSTM_COLOR)
    _arrow(ax, (6.9, 2.1), (7.6, 1.75))
    _arrow(ax, (5.5, 0.6), (7.5, 1.3))
    ax.text(8.0, 0.95, "(and $h_{t-1}, c_{t-1}$)", ha="center", va="top", fontsize=FONT_SIZE - 1)
    _box(ax, 8.0, 3.0, 1.2, 0.5, "word $y_t$", WORD_COLOR)
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


# The clip the video diagrams run on: a red disc that grows over the frames.
_VIDEO_WORDS = ["a", "red", "circle", "grows", "<end>"]
_VIDEO_ACTION = "grow"


def _frame_column(ax: plt.Axes, x: float, k: int, label: str, frames: int) -> None:
    """One frame's column: the picture (a disc growing with k), the CNN, its embedding, the LSTM."""
    y_in, y_cnn, y_emb, y_lstm = 0.35, 1.2, 1.95, 2.75
    size = 0.5
    ax.add_patch(
        Rectangle((x - size / 2, y_in - size / 2), size, size, fc="white", ec="#444444", lw=1)
    )
    radius = size * (0.12 + 0.22 * k / max(1, frames - 1))
    ax.add_patch(Circle((x, y_in), radius, facecolor="#d62728", edgecolor="none"))
    ax.text(x, y_in - size / 2 - 0.08, label, ha="center", va="top", fontsize=FONT_SIZE)
    _arrow(ax, (x, y_in + size / 2), (x, y_cnn - 0.2))
    _box(ax, x, y_cnn, 0.85, 0.4, "CNN", CNN_COLOR)
    _arrow(ax, (x, y_cnn + 0.2), (x, y_emb - 0.17))
    _box(ax, x, y_emb, 0.98, 0.34, "embedding", EMBEDDING_COLOR)
    _arrow(ax, (x, y_emb + 0.17), (x, y_lstm - 0.25))


def _frames(ax: plt.Axes, xs: Sequence[float]) -> None:
    """Frames 1, 2 and T through the same CNN into the LSTM at t = 0, 1 and T-1, with a gap for
    the frames in between, and the memory passed from step to step."""
    labels, steps = ["frame 1", "frame 2", "frame T"], ["t=0", "t=1", "t=T-1"]
    for k, x in enumerate(xs):
        _frame_column(ax, x, k, labels[k], len(xs))
        _box(ax, x, 2.75, 0.85, 0.5, f"LSTM\n{steps[k]}", LSTM_COLOR)
    _arrow(ax, (xs[0] + 0.43, 2.75), (xs[1] - 0.43, 2.75))
    gap = (xs[1] + xs[2]) / 2
    for y in (0.35, 1.2, 1.95, 2.75):
        ax.text(gap, y, "…", ha="center", va="center", fontsize=FONT_SIZE + 3)
    _arrow(ax, (xs[1] + 0.43, 2.75), (gap - 0.15, 2.75))
    _arrow(ax, (gap + 0.15, 2.75), (xs[2] - 0.43, 2.75))


def _bracket(ax: plt.Axes, left: float, right: float, y: float, text: str) -> None:
    """A bracket over columns left..right with a label above it."""
    ax.plot([left, left, right, right], [y - 0.1, y, y, y - 0.1], color="#444444", lw=1.2)
    ax.text((left + right) / 2, y + 0.06, text, ha="center", va="bottom", fontsize=FONT_SIZE)


def _draw_video_caption(dpi: int) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(10, 4.8), dpi=dpi)
    ax.set_xlim(0.0, 9.9)
    ax.set_ylim(-0.3, 4.75)
    ax.axis("off")
    y_in, y_emb, y_lstm, y_out = 0.35, 1.95, 2.75, 3.65
    frames = [0.6, 1.75, 3.25]
    words = [4.6, 5.75, 6.9, 8.05, 9.2]
    _frames(ax, frames)
    # Steps before the last frame predict nothing (the loss skips them); the last frame's step
    # predicts <start>, the first word of every caption, as the image step does in the chapter.
    for x in frames[:-1]:
        ax.text(x, y_out, "(dropped)", ha="center", va="center", color="#777777")
    outputs = ["<start>", *_VIDEO_WORDS]
    _arrow(ax, (frames[-1], y_lstm + 0.25), (frames[-1], y_out - 0.17))
    _box(ax, frames[-1], y_out, 0.98, 0.34, outputs[0], WORD_COLOR)
    _arrow(ax, (frames[-1] + 0.43, y_lstm), (words[0] - 0.43, y_lstm))
    for k, x in enumerate(words):
        _box(ax, x, y_in, 0.98, 0.34, outputs[k], WORD_COLOR)
        _arrow(ax, (x, y_in + 0.17), (x, y_emb - 0.17))
        _box(ax, x, y_emb, 0.98, 0.34, "word emb.", EMBEDDING_COLOR)
        _arrow(ax, (x, y_emb + 0.17), (x, y_lstm - 0.25))
        _box(ax, x, y_lstm, 0.85, 0.5, f"LSTM\nt=T+{k}" if k else "LSTM\nt=T", LSTM_COLOR)
        _arrow(ax, (x, y_lstm + 0.25), (x, y_out - 0.17))
        _box(ax, x, y_out, 0.98, 0.34, outputs[k + 1], WORD_COLOR)
        if k + 1 < len(words):
            _arrow(ax, (x + 0.43, y_lstm), (words[k + 1] - 0.43, y_lstm))
    # Captioning feeds each written word back in as the next step's input.
    for x, nxt in zip([frames[-1], *words[:-1]], words, strict=True):
        _arrow(ax, (x + 0.5, y_out - 0.1), (nxt - 0.5, y_in + 0.1), "#777777", "--")
    _bracket(ax, frames[0] - 0.45, frames[-1] + 0.45, 4.05, "T frames: the clip goes in")
    _bracket(
        ax,
        words[0] - 0.45,
        words[-1] + 0.45,
        4.05,
        "then the words: each written word is read next",
    )
    ax.set_title(
        "Video captioning (S2VT): the same CNN on every frame, one LSTM step per frame, then the words",
        fontsize=FONT_SIZE + 1,
    )
    fig.tight_layout()
    return fig


def _draw_video_action(dpi: int) -> plt.Figure:
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.8), dpi=dpi)
    frames = [0.6, 1.75, 3.25]
    label = f'Linear: 9 scores\n→ "{_VIDEO_ACTION}"'
    for ax, pool in zip(axes, ("last", "mean"), strict=True):
        ax.set_xlim(0.0, 3.95)
        ax.set_ylim(-0.3, 4.75)
        ax.axis("off")
        _frames(ax, frames)
        if pool == "last":
            _arrow(ax, (frames[-1], 3.0), (frames[-1], 3.45))
            _box(ax, frames[-1] - 0.2, 3.8, 1.3, 0.7, label, WORD_COLOR)
            title = "the last step's output (this course)"
        else:
            for x in frames:
                _arrow(ax, (x, 3.0), (x, 3.3))
            _box(ax, 1.9, 3.5, 3.5, 0.34, "mean of the steps' outputs", EMBEDDING_COLOR)
            _arrow(ax, (1.9, 3.67), (1.9, 3.95))
            _box(ax, 1.9, 4.3, 1.3, 0.7, label, WORD_COLOR)
            title = "the mean of the steps (LRCN's paper)"
        ax.set_title(f"One action label from {title}", fontsize=FONT_SIZE)
    fig.suptitle(
        "Action recognition (LRCN): the same frames and LSTM, no words, one label per clip",
        fontsize=FONT_SIZE + 1,
    )
    fig.tight_layout()
    return fig


def draw_video_lstm(task: str = "caption", dpi: int = FIGURE_DPI) -> plt.Figure:
    """The chapter's model on a video, as it runs: frames 1..T through the same CNN into the LSTM
    at t = 0..T-1, then ("caption") the words, each one read at the next step; or ("action")
    LRCN's one label, from the last step's output and, beside it, from the mean of all steps."""
    if task not in ("caption", "action"):
        raise CourseError(f"draw_video_lstm: task must be 'caption' or 'action', not {task!r}")
    return _draw_video_caption(dpi) if task == "caption" else _draw_video_action(dpi)
