"""Training the auto-encoder of notebook 01 on a folder of images, plain or denoising, and images
unlike the tiny COCO to test it on."""

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

from helpers.data.images import load_rgb
from helpers.environment import thread_policy
from helpers.errors import CourseError
from helpers.models.autoencoder import ConvAutoencoder

if TYPE_CHECKING:
    pass


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
    thread_policy()
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
