"""The video diagrams draw what the video models do: frames first, then the words or one label."""

from __future__ import annotations

import matplotlib.pyplot as plt
import pytest

from helpers.errors import CourseError
from helpers.plots.diagrams import draw_video_lstm


def _texts(ax) -> list[str]:
    return [t.get_text() for t in ax.texts]


def test_video_caption_diagram_has_frame_steps_then_word_steps():
    fig = draw_video_lstm("caption")
    texts = _texts(fig.axes[0])
    steps = [t.split("\n")[1] for t in texts if t.startswith("LSTM\n")]
    # Three frames drawn (1, 2 and T), then one step per word read: <start> and four words.
    assert steps == ["t=0", "t=1", "t=T-1", "t=T", "t=T+1", "t=T+2", "t=T+3", "t=T+4"]
    assert [t for t in texts if t.startswith("frame")] == ["frame 1", "frame 2", "frame T"]
    assert texts.count("CNN") == 3 and texts.count("word emb.") == 5
    # Before the last frame nothing is written; from it on, each step writes the next word and
    # the next step reads it: every word but <end> appears twice, as an output and an input.
    assert texts.count("(dropped)") == 2
    for word in ("<start>", "a", "red", "circle", "grows"):
        assert texts.count(word) == 2, word
    assert texts.count("<end>") == 1
    plt.close(fig)


def test_video_action_diagram_has_one_label_from_the_last_step_or_the_mean():
    fig = draw_video_lstm("action")
    last, mean = fig.axes
    for ax in (last, mean):
        texts = _texts(ax)
        assert sum(t.startswith("LSTM\n") for t in texts) == 3
        assert sum('"grow"' in t for t in texts) == 1  # one label per clip, no words
        assert "<start>" not in texts
    assert "mean of the steps' outputs" in _texts(mean)
    assert "mean of the steps' outputs" not in _texts(last)
    plt.close(fig)


def test_video_diagram_refuses_an_unknown_task():
    with pytest.raises(CourseError, match="'captions'"):
        draw_video_lstm("captions")
