"""The recorded beam search (notebook 09's tree) is the decoder's own beam search, step by step."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import pytest
import torch

from helpers.caption.beam_tree import BeamStep, beam_paths, best_path, record_beam_search
from helpers.models.cnn_lstm import LSTMModel
from helpers.plots.decoding import plot_beam_tree

END = 2
MAX_LEN = 9


def _padded(ids: list[int]) -> list[int]:
    """Ids cut after the first <end> and padded with <end>, as beam_search returns them."""
    out = []
    for t in ids:
        out.append(t)
        if t == END:
            break
    return out + [END] * (MAX_LEN - len(out))


@pytest.fixture(scope="module")
def decoder_and_features():
    """A small decoder with random weights and a batch of image features (seeded)."""
    torch.manual_seed(0)
    decoder = LSTMModel(16, 32, 12, max_seq_len=MAX_LEN).eval()
    return decoder, torch.randn(30, 16) * 2


@pytest.mark.parametrize("k", [2, 3, 5])
def test_recorded_best_equals_beam_search(decoder_and_features, k):
    decoder, features = decoder_and_features
    ids, scores = decoder.beam_search(features, beam_size=k, end_id=END)
    greedy = decoder.sample(features)
    greedy_scores = decoder.log_probability(features, greedy, END)
    compared = 0
    for j in range(len(features)):
        path, score = best_path(record_beam_search(decoder, features[j], k, END))
        # beam_search returns the greedy caption instead when that is likelier (an early-ending
        # difference); elsewhere the recorded best beam must be its answer exactly.
        if greedy_scores[j] > score + 1e-5:
            assert scores[j].item() == pytest.approx(greedy_scores[j].item(), abs=1e-5)
            continue
        compared += 1
        assert _padded(path) == ids[j].tolist()
        assert score == pytest.approx(scores[j].item(), abs=1e-5)
    assert compared >= len(features) // 2  # the comparison really ran on most images


def test_beam_of_one_is_greedy(decoder_and_features):
    decoder, features = decoder_and_features
    greedy = decoder.sample(features)
    logp = decoder.log_probability(features, greedy, END)
    for j in range(len(features)):
        steps = record_beam_search(decoder, features[j : j + 1], 1, END)
        assert all(s.parents in ([-1], [0]) for s in steps)
        path, score = best_path(steps)
        assert _padded(path) == _padded(greedy[j].tolist())
        assert score == pytest.approx(logp[j].item(), abs=1e-5)


def test_steps_are_sorted_and_parents_valid(decoder_and_features):
    decoder, features = decoder_and_features
    steps = record_beam_search(decoder, features[0], 3, END, max_steps=4)
    assert len(steps) == 4 and steps[0].parents == [-1, -1, -1]
    for before, step in zip(steps, steps[1:], strict=False):
        assert step.scores == sorted(step.scores, reverse=True)
        assert all(0 <= p < 3 for p in step.parents)
        # a summed log-probability never rises as words are added
        assert all(
            s <= before.scores[p] + 1e-6 for s, p in zip(step.scores, step.parents, strict=True)
        )
    assert all(len(p) == 4 for p in beam_paths(steps))


def test_finished_beams_keep_their_score():
    # A hand-made record: beam 0 ended at step 1 and goes on with <end> at the same score.
    steps = [
        BeamStep([5, 6], [-1, -1], [-0.1, -0.5], [False, False]),
        BeamStep([END, 7], [0, 1], [-0.3, -0.9], [True, False]),
        BeamStep([END, 8], [0, 1], [-0.3, -1.2], [True, False]),
    ]
    assert beam_paths(steps) == [[5, END, END], [6, 7, 8]]
    assert best_path(steps) == ([5, END, END], -0.3)


def test_one_image_only(decoder_and_features):
    decoder, features = decoder_and_features
    with pytest.raises(ValueError, match="one image"):
        record_beam_search(decoder, features[:2], 3, END)


def test_plot_beam_tree_draws_every_kept_word(decoder_and_features):
    decoder, features = decoder_and_features
    steps = record_beam_search(decoder, features[0], 3, END, max_steps=4)
    words = [f"w{i}" for i in range(12)]
    fig = plot_beam_tree(steps, words)
    texts = [t.get_text() for t in fig.axes[0].texts]
    for step in steps:
        for token in step.tokens:
            assert any(t.startswith(words[token]) for t in texts)
    assert min(t.get_fontsize() for t in fig.axes[0].texts) >= 11


def test_plot_scores_by_beam_starts_bars_at_zero():
    from helpers.plots.decoding import plot_scores_by_beam

    scores = {1: {"CIDEr": 2.51, "Bleu_4": 0.61}, 3: {"CIDEr": 2.47, "Bleu_4": 0.63}}
    fig = plot_scores_by_beam(scores, ["CIDEr", "Bleu_4"])
    for ax, metric in zip(fig.axes, ["CIDEr", "Bleu_4"], strict=True):
        assert ax.get_ylim()[0] == 0
        assert [round(p.get_height(), 2) for p in ax.patches] == [
            scores[1][metric],
            scores[3][metric],
        ]
