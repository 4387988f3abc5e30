"""An ablation at a glance: one bar per row (its mean over seeds) with the range of its seeds, one
panel per measure, the committed defaults first and a target line where there is one."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence

import matplotlib.pyplot as plt

from helpers.plots.style import FONT_SIZE


def plot_ablation(
    values: Mapping[str, Mapping[str, Sequence[float]]],
    targets: Mapping[str, float] | None = None,
    title: str = "",
) -> plt.Figure:
    """Rates of an ablation (measure -> row -> one value per seed, as measured_values gives them)
    as bars: per measure, each row's mean over seeds, a whisker from its lowest seed to its
    highest and the seeds as dots; rows in the order given (the defaults first), a dashed line at
    each measure's target."""
    names = list(dict.fromkeys(name for per_row in values.values() for name in per_row))
    fig, axes = plt.subplots(
        1, len(values), figsize=(2.1 * len(values) + 3.0, 0.4 * len(names) + 1.3), sharey=True
    )
    axes = [axes] if len(values) == 1 else list(axes)
    for ax, (label, per_row) in zip(axes, values.items(), strict=True):
        for y, name in enumerate(names):
            seeds = per_row.get(name, [])
            if not seeds:
                continue
            mean = statistics.mean(seeds)
            ax.barh(y, mean, color="#9dc3e6" if y else "#f4b183", height=0.7)
            ax.plot([min(seeds), max(seeds)], [y, y], color="black", lw=1.5)
            ax.plot(seeds, [y] * len(seeds), "o", color="black", ms=3)
            ax.text(1.03, y, f"{mean:.1%}", va="center", fontsize=FONT_SIZE - 1)
        if targets and label in targets:
            ax.axvline(targets[label], color="#c00000", ls="--", lw=1.2)
        ax.set_xlim(0, 1.38)
        ax.set_xticks([0, 0.5, 1])
        ax.set_xticklabels(["0", "50%", "100%"])
        ax.set_title(label)
        ax.grid(axis="x", alpha=0.3)
    axes[0].set_yticks(range(len(names)))
    axes[0].set_yticklabels(names)
    axes[0].invert_yaxis()  # the defaults on top
    if title:
        fig.suptitle(title, x=0.02, ha="left")
    fig.tight_layout()
    return fig
