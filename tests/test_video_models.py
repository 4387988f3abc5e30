"""The chapter's model with T embeddings: the same CNN on every frame, the frames into the LSTM at
t = 0..T-1, then the words. The chapter's image captioner is the case T = 1."""

from __future__ import annotations

import torch

from helpers.models.cnn_lstm import CNNModel, LSTMModel

END = 2


def _decoder() -> LSTMModel:
    torch.manual_seed(0)
    return LSTMModel(16, 24, 15, 1, 9).eval()


def test_an_image_is_a_video_of_one_frame():
    decoder = _decoder()
    image = torch.randn(5, 16)
    captions = torch.randint(3, 15, (5, 6))
    lengths = [6, 6, 5, 4, 2]
    one = decoder(image, captions, lengths)
    assert torch.equal(one, decoder(image.unsqueeze(1), captions, lengths))
    assert torch.equal(decoder.sample(image), decoder.sample(image.unsqueeze(1)))
    for k in (1, 3):
        a, b = (
            decoder.beam_search(image, k, end_id=END),
            decoder.beam_search(image[:, None], k, end_id=END),
        )
        assert torch.equal(a[0], b[0]) and torch.allclose(a[1], b[1])


def test_frames_go_in_first_and_words_are_scored_from_the_last_frame_on():
    decoder = _decoder()
    frames = torch.randn(3, 4, 16)  # 3 clips of T = 4 frame embeddings
    captions = torch.randint(3, 15, (3, 5))
    logits = decoder(frames, captions, [5, 5, 5])
    # By hand: frames, then the words; the outputs from the last frame on score words 0..4.
    outputs, _ = decoder.lstm_layer(torch.cat([frames, decoder.embedding_layer(captions)], 1))
    by_hand = decoder.linear_layer(outputs[:, 3:8])  # (B, 5, V)
    assert torch.allclose(logits.view(5, 3, -1).transpose(0, 1), by_hand, atol=1e-6)
    # Shorter captions in the batch: only their words are scored, as for images.
    assert decoder(frames, captions, [5, 4, 2]).shape == (11, 15)


def test_beam_search_over_video_features():
    decoder = _decoder()
    frames = torch.randn(4, 6, 16)
    greedy = decoder.sample(frames)
    ids, scores = decoder.beam_search(frames, 1, end_id=END)
    for g, b in zip(greedy.tolist(), ids.tolist(), strict=True):
        n = g.index(END) + 1 if END in g else len(g)
        assert g[:n] == b[:n]
    assert torch.allclose(scores, decoder.log_probability(frames, greedy, END), atol=1e-5)
    wide, wide_scores = decoder.beam_search(frames, 3, end_id=END)
    assert (wide_scores >= scores - 1e-5).all()
    assert torch.allclose(wide_scores, decoder.log_probability(frames, wide, END), atol=1e-5)


def test_the_same_cnn_embeds_every_frame():
    torch.manual_seed(0)
    encoder = CNNModel(16, "small", None, freeze=False).eval()
    clips = torch.randn(2, 3, 3, 32, 32)  # 2 clips of 3 frames
    per_frame = encoder(clips.flatten(0, 1)).view(2, 3, 16)
    assert torch.allclose(encoder(clips), per_frame, atol=1e-6)
    features = torch.randn(2, 3, encoder.backbone.out_features)  # cached per-frame features
    assert torch.allclose(
        encoder(features), encoder(features.flatten(0, 1)).view(2, 3, 16), atol=1e-6
    )
