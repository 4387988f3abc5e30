"""What a trained auto-encoder tells: each image's reconstruction error, how well it separates
unusual images (AUROC), and its codes in two dimensions."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from helpers.errors import CourseError

if TYPE_CHECKING:
    pass


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


def pca_2d(codes: torch.Tensor) -> torch.Tensor:
    """Project codes (N, D) onto their two main directions of variation (PCA), as (N, 2)."""
    centred = codes - codes.mean(dim=0)
    _, _, vt = torch.linalg.svd(centred, full_matrices=False)
    projected = centred @ vt[:2].T
    # A direction's sign is arbitrary: make each axis's largest value positive, for a stable figure.
    signs = torch.sign(projected[projected.abs().argmax(dim=0), torch.arange(2)])
    return projected * signs
