"""Decoding for any decoder with start, step and reorder: beam search over all images of a batch at
once, and the log-probability of given captions."""

from __future__ import annotations

import torch
from torch import nn


def sum_until_end(logp: torch.Tensor, ids: torch.Tensor, end_id: int) -> torch.Tensor:
    """Summed log-probabilities (B, T, V) of the words `ids` (B, T), up to and including the first <end>."""
    logp = logp.gather(-1, ids.unsqueeze(-1)).squeeze(-1)
    # Count words up to the first <end>: positions after it do not belong to the caption.
    ended_before = (ids == end_id).long().cumsum(1) - (ids == end_id).long()
    return (logp * (ended_before == 0)).sum(1)


def _rank(scores: torch.Tensor, lengths: torch.Tensor, length_penalty: float) -> torch.Tensor:
    return scores / ((5 + lengths) / 6) ** length_penalty if length_penalty else scores


@torch.no_grad()
def beam_search(
    decoder: nn.Module,
    features: torch.Tensor,
    beam_size: int = 3,
    length_penalty: float = 0.0,
    end_id: int = 2,
    record: list | None = None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """Keep the `beam_size` likeliest partial captions per image; all images at once.

    Works for any decoder with `start`, `step`, `reorder` and `max_seq_len`: the chapter's LSTM
    and the attention decoder. Returns ids (B, max_seq_len), padded with <end> after the end, each
    caption's summed log-probability, and what the decoder reports per word (the attention
    weights, (B, max_seq_len, L)) or None. With length_penalty a > 0, finished captions are
    compared by score / ((5 + length) / 6) ** a (as in Google's NMT), which favours longer ones.
    A `record` list receives, after each step, the kept beams' last tokens, parent beams, summed
    log-probabilities and finished flags, each (B, K): helpers.caption.beam_tree records them.
    """
    batch, k = features.size(0), beam_size
    rows = torch.arange(batch, device=features.device)
    logp, state, extra = decoder.start(features)
    vocab = logp.size(-1)
    scores, tokens = logp.topk(k, dim=-1)  # (B, K): the first word of each beam
    seqs = tokens.unsqueeze(-1)
    # What the decoder reports per word, kept per beam: (B, K, words so far, ...).
    extras = None if extra is None else extra.unsqueeze(1).unsqueeze(2).repeat(1, k, 1, 1)
    finished = tokens == end_id
    lengths = torch.ones_like(tokens)
    if record is not None:
        record.append((tokens, torch.full_like(tokens, -1), scores, finished))
    state = decoder.reorder(state, rows.repeat_interleave(k))  # each image's state, K times
    for _ in range(1, decoder.max_seq_len):
        if finished.all():
            break
        logp, state, extra = decoder.step(seqs[:, :, -1].reshape(-1), state)
        logp = logp.view(batch, k, vocab)
        # A finished beam may only go on with <end>, at no cost, so its score stays fixed.
        logp = torch.where(finished.unsqueeze(-1), torch.full_like(logp, -torch.inf), logp)
        logp[..., end_id] = torch.where(finished, 0.0, logp[..., end_id])
        best, index = (scores.unsqueeze(-1) + logp).view(batch, -1).topk(k, dim=-1)
        beam, token = index // vocab, index % vocab
        seqs = torch.cat(
            [seqs.gather(1, beam.unsqueeze(-1).expand_as(seqs)), token.unsqueeze(-1)], -1
        )
        if extras is not None:
            parents = rows.unsqueeze(1), beam
            step_extra = extra.view(batch, k, 1, *extra.shape[1:])[parents]
            extras = torch.cat([extras[parents], step_extra], 2)
        lengths = lengths.gather(1, beam) + (~finished.gather(1, beam)).long()
        finished = finished.gather(1, beam) | (token == end_id)
        scores = best
        if record is not None:
            record.append((token, beam, scores, finished))
        state = decoder.reorder(state, (beam + rows.unsqueeze(1) * k).view(-1))
    pick = _rank(scores, lengths, length_penalty).argmax(-1)
    ids = torch.full((batch, decoder.max_seq_len), end_id, dtype=seqs.dtype, device=seqs.device)
    ids[:, : seqs.size(-1)] = seqs[rows, pick]
    weights = None
    if extras is not None:
        weights = extras.new_zeros(batch, decoder.max_seq_len, *extras.shape[3:])
        weights[:, : extras.size(2)] = extras[rows, pick]
    best, best_length = scores[rows, pick], lengths[rows, pick]
    if k > 1:
        # A beam can drop the greedy caption's prefix early and end up worse; keeping the greedy
        # caption (a beam of 1) as a candidate guarantees beam search never returns a less likely one.
        greedy, greedy_score, greedy_weights = beam_search(decoder, features, 1, 0.0, end_id)
        greedy_length = (greedy != end_id).sum(1) + (greedy == end_id).any(1).long()
        better = _rank(greedy_score, greedy_length, length_penalty) > _rank(
            best, best_length, length_penalty
        )
        ids[better], best[better] = greedy[better], greedy_score[better]
        if weights is not None:
            weights[better] = greedy_weights[better]
    return ids, best, weights
