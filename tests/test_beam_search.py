"""Beam search in the decoder: beam 1 is greedy, wider beams never find a less likely caption."""

from __future__ import annotations

import pytest
import torch

from helpers.models.cnn_lstm import LSTMModel

END = 2


def _until_end(row: torch.Tensor) -> list[int]:
    out = []
    for t in row.tolist():
        out.append(t)
        if t == END:
            break
    return out


@pytest.fixture(scope="module")
def decoder_and_features():
    """A small decoder with random weights and a batch of image features (seeded)."""
    torch.manual_seed(0)
    # Random weights: greedy captions end after 4.5 words on average, some never within 9.
    decoder = LSTMModel(16, 32, 12, max_seq_len=9).eval()
    return decoder, torch.randn(40, 16) * 2


def test_beam_of_one_is_exactly_greedy(decoder_and_features):
    decoder, features = decoder_and_features
    greedy = decoder.sample(features)
    beam, scores = decoder.beam_search(features, beam_size=1, end_id=END)
    assert [_until_end(r) for r in beam] == [_until_end(r) for r in greedy]
    assert torch.allclose(scores, decoder.log_probability(features, greedy, END), atol=1e-5)


@pytest.mark.parametrize("k", [2, 3, 5])
def test_wider_beams_are_never_less_likely_than_greedy(decoder_and_features, k):
    decoder, features = decoder_and_features
    greedy = decoder.log_probability(features, decoder.sample(features), END)
    ids, scores = decoder.beam_search(features, beam_size=k, end_id=END)
    assert torch.allclose(scores, decoder.log_probability(features, ids, END), atol=1e-5)
    assert bool((scores >= greedy - 1e-5).all())
    assert bool((scores > greedy + 1e-3).any())  # and sometimes strictly better


def test_beam_search_is_batched_not_per_image(decoder_and_features):
    decoder, features = decoder_and_features
    together, _ = decoder.beam_search(features, beam_size=3, end_id=END)
    alone = torch.cat(
        [decoder.beam_search(features[i : i + 1], 3, end_id=END)[0] for i in range(5)]
    )
    assert torch.equal(together[:5], alone)  # the same answers, computed for all images at once


def test_length_penalty_prefers_longer_captions(decoder_and_features):
    decoder, features = decoder_and_features

    def mean_length(ids):
        return sum(len(_until_end(r)) for r in ids) / len(ids)

    plain, _ = decoder.beam_search(features, beam_size=5, end_id=END)
    long, _ = decoder.beam_search(features, beam_size=5, length_penalty=2.0, end_id=END)
    assert mean_length(long) > mean_length(plain)
    assert long.shape == plain.shape == (40, 9)
