"""A small convolutional auto-encoder: the encoder-decoder idea on images, and what it is used for."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from PIL import Image
from torch import nn
from tqdm import tqdm

from helpers.errors import CourseError
from helpers.images import load_rgb

if TYPE_CHECKING:
    import matplotlib.pyplot as plt


class ConvAutoencoder(nn.Module):
    """Squeeze a size x size RGB image into `bottleneck` numbers with a CNN, and rebuild it."""

    def __init__(self, bottleneck: int = 16, size: int = 48, width: int = 16) -> None:
        super().__init__()
        if size % 8:
            raise CourseError(f"auto-encoder image size {size}: must be a multiple of 8")
        side = size // 8  # three stride-2 convolutions halve the image three times
        self.encoder = nn.Sequential(
            nn.Conv2d(3, width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, 2 * width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(2 * width, 4 * width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
            nn.Linear(4 * width * side * side, bottleneck),
        )
        # The decoder mirrors the encoder: a linear layer back to feature maps, then
        # transposed convolutions that double the size three times.
        self.decoder = nn.Sequential(
            nn.Linear(bottleneck, 4 * width * side * side),
            nn.ReLU(),
            nn.Unflatten(1, (4 * width, side, side)),
            nn.ConvTranspose2d(4 * width, 2 * width, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(2 * width, width, 4, stride=2, padding=1),
            nn.ReLU(),
            nn.ConvTranspose2d(width, 3, 4, stride=2, padding=1),
            nn.Sigmoid(),  # pixels in [0, 1], like the inputs
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Images (N, 3, H, W) in [0, 1] -> codes (N, bottleneck)."""
        return self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Codes (N, bottleneck) -> images (N, 3, H, W) in [0, 1]."""
        return self.decoder(z)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Reconstruct images: decode(encode(x))."""
        return self.decode(self.encode(x))


def load_images(folder: str | os.PathLike, size: int, limit: int | None = None) -> torch.Tensor:
    """Every image of a folder (sorted by name), resized to size x size, as (N, 3, size, size) in [0, 1]."""
    paths = sorted(Path(folder).iterdir())[:limit]
    if not paths:
        raise CourseError(f"{folder}: no images to load")
    return torch.stack([to_tensor(load_rgb(p), size) for p in paths])


def to_tensor(image: Image.Image, size: int) -> torch.Tensor:
    """One PIL image, resized to size x size RGB, as a (3, size, size) float tensor in [0, 1]."""
    image = image.convert("RGB").resize((size, size), Image.Resampling.LANCZOS)
    return torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0).permute(2, 0, 1)


def add_noise(
    x: torch.Tensor, std: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Gaussian pixel noise of standard deviation `std`, clipped back to [0, 1]."""
    noise = torch.randn(x.shape, generator=generator) * std
    return (x + noise).clamp(0.0, 1.0)


def train_autoencoder(
    images: torch.Tensor,
    bottleneck: int = 16,
    width: int = 16,
    epochs: int = 20,
    batch_size: int = 16,
    lr: float = 2e-3,
    noise: float = 0.0,
    seed: int = 0,
) -> tuple[ConvAutoencoder, list[float]]:
    """Train an auto-encoder to rebuild `images` (from noisy copies when noise > 0); seeded.

    Returns the model (in eval mode) and the mean training loss (pixel MSE) of each epoch.
    """
    threads = torch.get_num_threads()
    # Convolutions this small gain little from a second thread, and threads that wait for each
    # other lose far more when other jobs share the cores: train on one.
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)  # shuffling and noise: same seed, same run
        model = ConvAutoencoder(bottleneck, images.shape[-1], width)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        history = []
        steps = epochs * ((len(images) + batch_size - 1) // batch_size)
        start, cpu = time.perf_counter(), time.process_time()
        with tqdm(total=steps, desc="auto-encoder", unit="step") as bar:
            for _ in range(epochs):
                order = torch.randperm(len(images), generator=generator)
                total = 0.0
                for i in range(0, len(images), batch_size):
                    clean = images[order[i : i + batch_size]]
                    # A denoising auto-encoder sees a noisy copy but must rebuild the clean image.
                    seen = add_noise(clean, noise, generator) if noise > 0 else clean
                    loss = nn.functional.mse_loss(model(seen), clean)
                    optimizer.zero_grad()
                    loss.backward()
                    optimizer.step()
                    total += loss.item() * len(clean)
                    bar.update()
                history.append(total / len(images))
                bar.set_postfix(loss=f"{history[-1]:.4f}")
        # Wall time, and processor time: what it costs on a machine not shared with other jobs.
        model.train_seconds = time.perf_counter() - start
        model.train_cpu_seconds = time.process_time() - cpu
    finally:
        torch.set_num_threads(threads)
    return model.eval(), history


@torch.no_grad()
def reconstruction_error(model: nn.Module, images: torch.Tensor) -> np.ndarray:
    """Mean squared pixel error of each image's reconstruction: one number per image."""
    return ((model(images) - images) ** 2).mean(dim=(1, 2, 3)).numpy()


def auroc(normal: np.ndarray, unusual: np.ndarray) -> float:
    """Chance that an unusual item scores higher than a normal one (ties count half), from ranks."""
    normal, unusual = np.asarray(normal, float).ravel(), np.asarray(unusual, float).ravel()
    if len(normal) == 0 or len(unusual) == 0:
        raise CourseError("AUROC needs at least one normal and one unusual score")
    scores = np.concatenate([normal, unusual])
    # Rank 1 = lowest score; tied scores all get the mean of the ranks they span.
    values, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    mean_rank = np.cumsum(counts) - (counts - 1) / 2.0
    ranks = mean_rank[inverse.ravel()]
    n_normal, n_unusual = len(normal), len(unusual)
    # Mann-Whitney U: the unusual items' rank sum minus its smallest possible value.
    u = ranks[n_normal:].sum() - n_unusual * (n_unusual + 1) / 2.0
    return float(u / (n_normal * n_unusual))


def unlike_images(size: int, n_each: int = 20, seed: int = 0) -> dict[str, torch.Tensor]:
    """Images unlike the tiny COCO: crops of matplotlib's sample photos, their gray copies, blanks."""
    import matplotlib.cbook

    rng = np.random.default_rng(seed)
    photos = [
        load_rgb(matplotlib.cbook.get_sample_data(name, asfileobj=False))
        for name in ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png", "logo2.png")
    ]
    crops = []
    for i in range(n_each):
        photo = photos[i % len(photos)]
        w, h = photo.size
        side = int(rng.integers(min(w, h) // 3, min(w, h) + 1))
        x, y = int(rng.integers(0, w - side + 1)), int(rng.integers(0, h - side + 1))
        crops.append(photo.crop((x, y, x + side, y + side)))
    blanks = [
        Image.new("RGB", (size, size), tuple(int(c) for c in rng.integers(0, 256, 3)))
        for _ in range(n_each)
    ]
    return {
        "photo": torch.stack([to_tensor(c, size) for c in crops]),
        "gray photo": torch.stack([to_tensor(c.convert("L"), size) for c in crops]),
        "blank": torch.stack([to_tensor(b, size) for b in blanks]),
    }


def pca_2d(codes: torch.Tensor) -> torch.Tensor:
    """Project codes (N, D) onto their two main directions of variation (PCA), as (N, 2)."""
    centred = codes - codes.mean(dim=0)
    _, _, vt = torch.linalg.svd(centred, full_matrices=False)
    projected = centred @ vt[:2].T
    # A direction's sign is arbitrary: make each axis's largest value positive, for a stable figure.
    signs = torch.sign(projected[projected.abs().argmax(dim=0), torch.arange(2)])
    return projected * signs


def _as_image(x: torch.Tensor) -> np.ndarray:
    return x.permute(1, 2, 0).clamp(0, 1).numpy()


def plot_image_rows(rows: dict[str, torch.Tensor], titles: list[str] | None = None) -> plt.Figure:
    """Rows of images (each a batch (N, 3, H, W)), one labelled row per entry, about 1.5 inches each."""
    import matplotlib.pyplot as plt

    from helpers.plots import FIGURE_DPI, FONT_SIZE

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

    from helpers.plots import FIGURE_DPI, FONT_SIZE

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

    from helpers.plots import FIGURE_DPI, FONT_SIZE

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
