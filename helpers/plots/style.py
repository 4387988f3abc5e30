"""The look of every figure of the course: text as large as a notebook's body text, one colour per
kind of block."""

from __future__ import annotations

from typing import TYPE_CHECKING

import matplotlib.pyplot as plt

if TYPE_CHECKING:
    pass

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

# Colours of the diagrams and bar charts: one per kind of block.
CNN_COLOR, EMBEDDING_COLOR, LSTM_COLOR, WORD_COLOR = "#f4b183", "#c9e4c5", "#9dc3e6", "#eeeeee"
