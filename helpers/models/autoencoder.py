"""A small convolutional auto-encoder: the encoder-decoder idea on images (notebook 01's aside;
training in helpers.train.autoencoder, what it tells in helpers.evaluate.autoencoder)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

from helpers.errors import CourseError

if TYPE_CHECKING:
    pass


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
