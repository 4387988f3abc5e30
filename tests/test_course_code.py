"""The code written out in notebooks 06, 07, 11 and 13 computes exactly what helpers/ computes,
and plot_history marks the best epoch (the notebooks' text relies on both)."""

from __future__ import annotations

import ast
from pathlib import Path

import matplotlib
import nbformat
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from helpers.models.cnn_lstm import CNNModel, LSTMModel
from helpers.train.loop import step_loss

matplotlib.use("Agg")

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def notebook_code(name: str, *starts: str) -> dict:
    """Run the imports and definitions of the notebook's code cells that contain `starts`."""
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    namespace: dict = {}
    for start in starts:
        cells = [c.source for c in nb.cells if c.cell_type == "code" and start in c.source]
        assert cells, f"{name}: no code cell contains {start!r}"
        # Only imports, functions and classes: the cell's other lines need the notebook's state.
        tree = ast.parse(cells[0])
        kinds = (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.ClassDef)
        module = ast.Module([node for node in tree.body if isinstance(node, kinds)], [])
        exec(compile(module, f"{name}: {start}", "exec"), namespace)
    return namespace


def batch(vocab_size: int = 12, n: int = 4, seed: int = 0):
    """A small sorted batch of random images and captions, as collate_captions makes."""
    g = torch.Generator().manual_seed(seed)
    lengths = sorted(torch.randint(3, 9, (n,), generator=g).tolist(), reverse=True)
    captions = torch.zeros(n, lengths[0], dtype=torch.long)
    for row, length in enumerate(lengths):
        captions[row, :length] = torch.randint(1, vocab_size, (length,), generator=g)
    return torch.randn(n, 3, 32, 32, generator=g), captions, lengths


@pytest.mark.parametrize("freeze", [True, False])
def test_notebook_06_classes_equal_helpers_models(freeze):
    ns = notebook_code("06_cnn_lstm_model.ipynb", "class CNNModel", "class LSTMModel")
    torch.manual_seed(0)
    encoder, decoder = CNNModel(16, "small", None, freeze), LSTMModel(16, 24, 12, 2, 7)
    torch.manual_seed(1)  # other weights, replaced below
    mine_enc = ns["CNNModel"](16, "small", None, freeze)
    mine_dec = ns["LSTMModel"](16, 24, 12, 2, 7)
    # Same initialisation, forget-gate bias included, before any weights are copied.
    for layer in range(2):
        ours = getattr(mine_dec.lstm_layer, f"bias_ih_l{layer}")[24:48]
        assert torch.equal(ours, getattr(decoder.lstm_layer, f"bias_ih_l{layer}")[24:48])
    assert not torch.equal(mine_dec.linear_layer.weight, decoder.linear_layer.weight)
    mine_enc.load_state_dict(encoder.state_dict())
    mine_dec.load_state_dict(decoder.state_dict())
    images, captions, lengths = batch()
    with torch.no_grad():
        for m in (encoder, decoder, mine_enc, mine_dec):
            m.train()
        assert mine_enc.backbone.training is (not freeze)
        expected = decoder(encoder(images), captions, lengths)
        got = mine_dec(mine_enc(images), captions, lengths)
        assert torch.equal(got, expected)
        for m in (encoder, decoder, mine_enc, mine_dec):
            m.eval()
        features = encoder.backbone(images)  # cached features: a 2-D input skips the backbone
        assert torch.equal(mine_enc(features), encoder(features))
        ids = decoder.sample(encoder(images))
        assert ids.shape == (4, 7)
        assert torch.equal(mine_dec.sample(mine_enc(images)), ids)


def test_notebook_07_training_step_matches_step_loss_and_learns():
    ns = notebook_code("07_train.ipynb", "def training_step")
    torch.manual_seed(0)
    encoder, decoder = CNNModel(16, "small", None, True), LSTMModel(16, 24, 12, 1, 7)
    encoder.train()
    decoder.train()
    params = [p for p in (*encoder.parameters(), *decoder.parameters()) if p.requires_grad]
    optimizer = torch.optim.Adam(params, lr=1e-2)
    criterion = nn.CrossEntropyLoss()
    data = batch()
    with torch.no_grad():
        expected, _ = step_loss(encoder, decoder, data, criterion, "cpu")
    frozen = encoder.backbone.features[0].weight.clone()
    first = ns["training_step"](encoder, decoder, data, criterion, optimizer, params, 5.0)
    assert first == expected.item()
    losses = [
        ns["training_step"](encoder, decoder, data, criterion, optimizer, params, 5.0)
        for _ in range(60)
    ]
    assert losses[-1] < 0.2 * first  # one batch is learned by heart
    assert torch.equal(encoder.backbone.features[0].weight, frozen)  # the frozen CNN stays


def test_plot_history_marks_the_lowest_validation_loss():
    from helpers.plots.training import plot_history

    history = {
        "epoch": [1, 2, 3, 4],
        "train_loss": [1.0, 0.6, 0.5, 0.4],
        "val_loss": [0.9, 0.55, 0.5, 0.52],
        "step_loss": [2.0, 1.0, 0.8, 0.6, 0.5, 0.5, 0.4, 0.4],
    }
    fig = plot_history(history)
    loss_ax, ppl_ax = fig.axes
    assert loss_ax.get_yscale() == "linear"
    assert "linear" in loss_ax.get_title()
    labels = [t.get_text() for t in loss_ax.get_legend().get_texts()]
    assert any("epoch 3" in text and "best.pt" in text for text in labels)
    stars = [line for line in loss_ax.get_lines() if line.get_marker() == "*"]
    assert [tuple(s.get_xydata()[0]) for s in stars] == [(3.0, 0.5)]
    assert any(line.get_marker() == "*" for line in ppl_ax.get_lines())


def test_notebook_11_soft_attention_equals_helpers():
    from helpers.models.attention import SoftAttention

    ns = notebook_code("11_attention.ipynb", "class SoftAttention")
    torch.manual_seed(0)
    theirs, mine = SoftAttention(20, 16, 12), ns["SoftAttention"](20, 16, 12)
    assert not torch.equal(mine.score_layer.weight, theirs.score_layer.weight)
    mine.load_state_dict(theirs.state_dict())
    features, h = torch.randn(3, 9, 20), torch.randn(3, 16)
    got = mine(features, mine.feature_layer(features), h)
    want = theirs(features, theirs.feature_layer(features), h)
    assert all(torch.equal(a, b) for a, b in zip(got, want, strict=True))


def test_notebook_13_teacher_forcing_scores_every_word_as_training_does():
    ns = notebook_code("13_when_it_goes_wrong.ipynb", "import torch", "def teacher_forced")
    torch.manual_seed(0)
    encoder, decoder = CNNModel(16, "small", None, True), LSTMModel(16, 24, 12, 1, 7)
    encoder.eval()
    decoder.eval()
    images, captions, lengths = batch()
    with torch.no_grad():
        features = encoder(images)
        scores = ns["teacher_forced"](decoder, features, captions)
        expected = decoder(features, captions, lengths)  # the logits training's loss takes
    assert scores.shape == (*captions.shape, 12)
    got = pack_padded_sequence(scores, lengths, batch_first=True).data
    assert torch.allclose(got, expected, atol=1e-6)


def test_notebook_13_nltk_bleu_on_the_coco_tokens_is_the_coco_scorers(small_coco):
    from nltk.translate.bleu_score import corpus_bleu

    from helpers.evaluate import reference_captions, score_captions

    ns = notebook_code("13_when_it_goes_wrong.ipynb", "def no_punctuation")
    refs = reference_captions(small_coco / "annotations" / "captions_val2014.json")
    ids = sorted(refs)
    candidates = {i: refs[i][0] for i in ids}  # each image's first caption, against the others
    others = {i: refs[i][1:] for i in ids}
    skip = ("METEOR", "ROUGE-L", "CIDEr", "SPICE")
    coco = score_captions(others, candidates, skip=skip, use_java=False).scores["Bleu_4"]

    def nltk_bleu(words) -> float:
        return corpus_bleu(
            [[words(r) for r in others[i]] for i in ids], [words(candidates[i]) for i in ids]
        )

    assert nltk_bleu(ns["no_punctuation"]) == pytest.approx(coco, abs=1e-6)
    assert abs(nltk_bleu(str.split) - coco) > 0.01  # why the notebook tokenizes first
