"""Beam search for one image, step by step: which partial captions it keeps, to draw as a tree."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from helpers.models import LSTMModel


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
    """Re-run LSTMModel.beam_search for ONE image (features (1, E) or (E,)), keeping every step.

    The same steps as beam_search with no length penalty: the first words are the top beam_size,
    then each step extends every beam by every word, and keeps the beam_size best sums; a finished
    beam goes on with <end> at no cost. Stops when all beams have ended, after max_seq_len steps,
    or after max_steps. (beam_search then also compares the best beam with the greedy caption.)
    """
    if features.dim() == 1:
        features = features.unsqueeze(0)
    if features.size(0) != 1:
        raise ValueError(f"record_beam_search takes one image's features, got {features.size(0)}")
    limit = min(decoder.max_seq_len, max_steps or decoder.max_seq_len)
    outputs, (h, c) = decoder.lstm_layer(features.unsqueeze(1))
    logp = decoder.linear_layer(outputs.squeeze(1)).log_softmax(-1)[0]  # (V,)
    scores, tokens = logp.topk(beam_size)
    finished = tokens == end_id
    steps = [BeamStep(tokens.tolist(), [-1] * beam_size, scores.tolist(), finished.tolist())]
    h, c = h.repeat_interleave(beam_size, dim=1), c.repeat_interleave(beam_size, dim=1)
    while len(steps) < limit and not finished.all():
        inputs = decoder.embedding_layer(tokens).unsqueeze(1)  # (K, 1, embed)
        outputs, (h, c) = decoder.lstm_layer(inputs, (h, c))
        logp = decoder.linear_layer(outputs.squeeze(1)).log_softmax(-1)  # (K, V)
        logp = torch.where(finished.unsqueeze(-1), torch.full_like(logp, -torch.inf), logp)
        logp[:, end_id] = torch.where(finished, 0.0, logp[:, end_id])
        vocab = logp.size(-1)
        scores, index = (scores.unsqueeze(-1) + logp).view(-1).topk(beam_size)
        parents, tokens = index // vocab, index % vocab
        finished = finished[parents] | (tokens == end_id)
        h, c = h[:, parents], c[:, parents]
        steps.append(
            BeamStep(tokens.tolist(), parents.tolist(), scores.tolist(), finished.tolist())
        )
    return steps


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
