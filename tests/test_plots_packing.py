"""The padding -> packing figure: its numbers are the order pack_padded_sequence reads the words."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest
import torch
from torch.nn.utils.rnn import pack_padded_sequence

from helpers.data.loaders import collate_captions
from helpers.data.vocabulary import Vocabulary
from helpers.errors import CourseError
from helpers.plots.diagrams import plot_packing

WORDS = ["a", "red", "circle", "on", "the", "left", "."]


@pytest.fixture
def vocab() -> Vocabulary:
    return Vocabulary(WORDS)


def _batch(vocab: Vocabulary) -> tuple[torch.Tensor, list[int]]:
    captions = ["a red circle .", "a circle on the left .", "a circle ."]
    items = [(torch.zeros(3, 2, 2), torch.tensor(vocab.encode(c))) for c in captions]
    _, targets, lengths = collate_captions(items)
    return targets, lengths


def test_numbers_follow_packed_order(vocab):
    targets, lengths = _batch(vocab)
    fig = plot_packing(targets, lengths, vocab)
    ax = fig.axes[0]
    numbers = {}
    for text in ax.texts:
        if (text.get_gid() or "").startswith("order "):
            b, t = map(int, text.get_gid().split()[1:])
            numbers[int(text.get_text())] = (b, t)
    # Every real position numbered once, no padding numbered.
    assert sorted(numbers.values()) == sorted(
        (b, t) for b, n in enumerate(lengths) for t in range(n)
    )
    # Time step by time step: the k-th number is the k-th word of torch's packed data.
    packed = pack_padded_sequence(targets, lengths, batch_first=True)
    read = [int(targets[numbers[k]]) for k in range(1, len(numbers) + 1)]
    assert read == packed.data.tolist()
    assert [numbers[k][1] for k in range(1, len(numbers) + 1)] == sorted(
        t for n in lengths for t in range(n)
    )
    sizes = [
        text.get_text() for text in ax.texts if (text.get_gid() or "").startswith("batch_size")
    ]
    assert sizes == [str(s) for s in packed.batch_sizes.tolist()]
    # The words are written in their cells, the padding as <pad>.
    drawn = [text.get_text() for text in ax.texts if text.get_gid() is None]
    assert drawn.count("<pad>") == targets.numel() - sum(lengths)
    assert drawn.count("left") == 1
    plt.close(fig)


def test_unsorted_lengths_are_refused(vocab):
    targets, lengths = _batch(vocab)
    with pytest.raises(CourseError, match="sorted longest first"):
        plot_packing(targets.flip(0), lengths[::-1], vocab)
