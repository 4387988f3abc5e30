"""Beam search for one image, step by step: which partial captions it keeps, to draw as a tree."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from helpers.models.cnn_lstm import LSTMModel


@dataclass
class BeamStep:
    """The beams kept after one step, best first: last word, parent beam, summed log-probability."""

    tokens: list[int]  # the word id each kept beam ends with at this step
    parents: list[int]  # index of the beam of the previous step it extends (-1 at step 0)
    scores: list[float]  # summed log-probability of the whole partial caption
    finished: list[bool]  # True once the beam has said <end> (its score then stays fixed)


@torch.no_grad()
def record_beam_search(
    decoder: LSTMModel,
    features: torch.Tensor,
    beam_size: int = 3,
    end_id: int = 2,
    max_steps: int | None = None,
) -> list[BeamStep]:
    """LSTMModel.beam_search for ONE image (features (1, E) or (E,)), with every step it kept.

    The first words are the top beam_size, then each step extends every beam by every word and
    keeps the beam_size best sums; a finished beam goes on with <end> at no cost. It stops when
    all beams have ended or after max_seq_len steps; max_steps keeps only the first steps.
    (beam_search then also compares the best beam with the greedy caption.)
    """
    if features.dim() == 1:
        features = features.unsqueeze(0)
    if features.size(0) != 1:
        raise ValueError(f"record_beam_search takes one image's features, got {features.size(0)}")
    record: list = []
    decoder.beam_search(features, beam_size, 0.0, end_id, record=record)
    return [
        BeamStep(tokens[0].tolist(), parents[0].tolist(), scores[0].tolist(), done[0].tolist())
        for tokens, parents, scores, done in record[: max_steps or None]
    ]


def beam_paths(steps: list[BeamStep]) -> list[list[int]]:
    """The word ids of each beam kept at the last step, traced back through the parents."""
    paths = []
    for beam in range(len(steps[-1].tokens)):
        ids, at = [], beam
        for step in reversed(steps):
            ids.append(step.tokens[at])
            at = step.parents[at]
        paths.append(ids[::-1])
    return paths


def best_path(steps: list[BeamStep]) -> tuple[list[int], float]:
    """The likeliest beam of the last step (no length penalty): its word ids and its score."""
    last = steps[-1]
    beam = max(range(len(last.scores)), key=lambda b: last.scores[b])
    return beam_paths(steps)[beam], last.scores[beam]
