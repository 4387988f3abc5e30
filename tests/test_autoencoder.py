"""The auto-encoder aside of notebook 01: model shapes, training, AUROC by ranks, determinism."""

import numpy as np
import pytest
import torch
from PIL import Image

from helpers.errors import CourseError
from helpers.evaluate.autoencoder import auroc, pca_2d, reconstruction_error
from helpers.models.autoencoder import ConvAutoencoder
from helpers.train.autoencoder import add_noise, to_tensor, train_autoencoder, unlike_images


def _images(n: int = 24, size: int = 16, seed: int = 0) -> torch.Tensor:
    """Plain images with one bright square each: something learnable."""
    g = torch.Generator().manual_seed(seed)
    x = torch.full((n, 3, size, size), 0.2)
    for i in range(n):
        r, c = torch.randint(0, size - 6, (2,), generator=g).tolist()
        x[i, :, r : r + 6, c : c + 6] = torch.rand(3, 1, 1, generator=g)
    return x


def test_shapes():
    model = ConvAutoencoder(bottleneck=5, size=32)
    x = torch.rand(4, 3, 32, 32)
    assert model.encode(x).shape == (4, 5)
    out = model(x)
    assert out.shape == x.shape
    assert 0.0 <= out.min().item() and out.max().item() <= 1.0
    assert reconstruction_error(model.eval(), x).shape == (4,)


def test_size_must_divide_by_eight():
    with pytest.raises(CourseError, match="multiple of 8"):
        ConvAutoencoder(size=30)


def test_training_lowers_the_loss():
    _, history = train_autoencoder(_images(), bottleneck=4, epochs=8, batch_size=8, lr=3e-3)
    assert len(history) == 8
    assert history[-1] < 0.7 * history[0]


def test_same_seed_same_model_other_seed_differs():
    x = _images()
    a, ha = train_autoencoder(x, bottleneck=3, epochs=2, batch_size=8, noise=0.1, seed=3)
    b, hb = train_autoencoder(x, bottleneck=3, epochs=2, batch_size=8, noise=0.1, seed=3)
    c, hc = train_autoencoder(x, bottleneck=3, epochs=2, batch_size=8, noise=0.1, seed=4)
    assert ha == hb
    for p, q in zip(a.parameters(), b.parameters(), strict=True):
        assert torch.equal(p, q)
    assert ha != hc


@pytest.mark.parametrize(
    ("normal", "unusual", "expected"),
    [
        ([0.1, 0.2, 0.3], [0.5, 0.9], 1.0),  # every unusual item scores higher
        ([0.5, 0.9], [0.1, 0.2, 0.3], 0.0),  # every unusual item scores lower
        ([0.4, 0.4], [0.4, 0.4, 0.4], 0.5),  # all tied: a coin toss
        ([0.1, 0.5], [0.5, 0.9], 0.875),  # one tie counts half: (1 + 1 + 0.5 + 1) / 4
        ([1, 3], [2, 4], 0.75),  # pairs (2>1, 2<3, 4>1, 4>3): 3 of 4
    ],
)
def test_auroc_known_answers(normal, unusual, expected):
    assert auroc(np.array(normal), np.array(unusual)) == pytest.approx(expected)


def test_auroc_matches_counting_pairs():
    rng = np.random.default_rng(0)
    normal, unusual = rng.integers(0, 5, 30).astype(float), rng.integers(2, 7, 20).astype(float)
    pairs = [(u > n) + 0.5 * (u == n) for u in unusual for n in normal]
    assert auroc(normal, unusual) == pytest.approx(np.mean(pairs))


def test_auroc_needs_both_groups():
    with pytest.raises(CourseError):
        auroc(np.array([]), np.array([1.0]))


def test_noise_is_clipped_and_seeded():
    x = torch.full((2, 3, 8, 8), 0.5)
    a = add_noise(x, 0.3, torch.Generator().manual_seed(1))
    b = add_noise(x, 0.3, torch.Generator().manual_seed(1))
    assert torch.equal(a, b) and not torch.equal(a, x)
    assert a.min() >= 0.0 and a.max() <= 1.0


def test_to_tensor_and_unlike_images():
    t = to_tensor(Image.new("L", (40, 20), 255), 16)
    assert t.shape == (3, 16, 16) and torch.allclose(t, torch.ones_like(t))
    unlike = unlike_images(16, n_each=3)
    assert set(unlike) == {"photo", "gray photo", "blank"}
    assert all(v.shape == (3, 3, 16, 16) for v in unlike.values())
    gray = unlike["gray photo"]
    assert torch.equal(gray[:, 0], gray[:, 1])  # gray: the three channels are equal


def test_pca_2d_finds_the_spread_direction():
    g = torch.Generator().manual_seed(0)
    along = torch.randn(200, 1, generator=g) * 5
    codes = torch.cat([along, 0.1 * torch.randn(200, 3, generator=g)], dim=1)
    projected = pca_2d(codes)
    assert projected.shape == (200, 2)
    first = projected[:, 0]
    assert abs(torch.corrcoef(torch.stack([first, along[:, 0]]))[0, 1]) > 0.99


def test_cnn_lstm_figure_feeds_truth_in_training_and_predictions_in_inference():
    import matplotlib

    matplotlib.use("Agg")
    from helpers.plots.diagrams import draw_cnn_lstm

    def words(fig):
        return [t.get_text() for t in fig.axes[0].texts]

    train, inference = draw_cnn_lstm(mode="train"), draw_cnn_lstm(mode="inference")
    # One wrong prediction ("blue"); only inference feeds it back as the next input.
    assert words(train).count("blue") == 1 and "red" in words(train)
    assert words(inference).count("blue") == 2 and "red" not in words(inference)
    assert "Video" in draw_cnn_lstm(video=True).axes[0].get_title()
    with pytest.raises(ValueError, match="mode"):
        draw_cnn_lstm(mode="greedy")
