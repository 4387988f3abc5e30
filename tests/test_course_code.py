"""The code written out in notebooks 02-07, 11 and 13 computes exactly what helpers/ computes,
and plot_history marks the best epoch (the notebooks' text relies on both)."""

from __future__ import annotations

import ast
import hashlib
import io
import shutil
import zipfile
from pathlib import Path

import matplotlib
import nbformat
import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence

from helpers.data.download import download, extract, serve_directory
from helpers.data.images import load_rgb, resize_image, train_transform
from helpers.data.loaders import get_loader
from helpers.data.resize import resize_images
from helpers.data.vocabulary import build_vocabulary
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


def test_notebook_02_chapter_download_unpacks_the_files_the_course_does(small_coco, tmp_path):
    ns = notebook_code("02_download_coco.ipynb", "class DownloadProgressBar")
    site = tmp_path / "site"
    (site / "zips").mkdir(parents=True)
    source = site / "zips" / "val2014.zip"
    pictures = sorted((small_coco / "val2014").iterdir())[:5]
    with zipfile.ZipFile(source, "w") as zf:
        for path in pictures:
            zf.write(path, f"val2014/{path.name}")
    md5 = hashlib.md5(source.read_bytes()).hexdigest()
    with serve_directory(site) as base_url:
        url = f"{base_url}/zips/val2014.zip"
        ns["download_and_unzip"](url, tmp_path / "chapter")
        archive = download(url, tmp_path / "coco" / "val2014.zip", source.stat().st_size, md5)
    extract(archive, tmp_path / "coco", progress=False)
    assert [p.name for p in (tmp_path / "chapter").iterdir()] == ["val2014"]  # the zip is deleted
    chapter = sorted((tmp_path / "chapter" / "val2014").iterdir())
    course = sorted((tmp_path / "coco" / "val2014").iterdir())
    assert [p.name for p in chapter] == [p.name for p in course] == [p.name for p in pictures]
    assert all(a.read_bytes() == b.read_bytes() for a, b in zip(chapter, course, strict=True))


@pytest.mark.parametrize("threshold", [1, 30])
def test_notebook_03_build_vocabulary_equals_helpers(small_coco, threshold):
    ns = notebook_code("03_build_vocabulary.ipynb", "show_source(tokenize)", "class Vocab")
    annotations = small_coco / "annotations" / "captions_train2014.json"
    mine = ns["build_vocabulary"](annotations, threshold)
    theirs = build_vocabulary(annotations, threshold, progress=False)
    dropped = len(theirs.counts) + 4 - len(theirs)
    assert len(theirs) > 4 and (dropped > 0) == (threshold > 1)  # the threshold drops words
    assert mine.w2i == theirs.word_to_id
    assert [mine.i2w[i] for i in range(len(mine))] == theirs.id_to_word
    assert mine("giraffe") == theirs("giraffe") == 3


def test_notebook_04_chapter_resize_is_the_course_resize(small_coco, tmp_path):
    ns = notebook_code("04_resize_images.ipynb", "def disagreement", "def reshape_images")
    src = tmp_path / "originals"
    src.mkdir()
    for path in sorted((small_coco / "train2014").iterdir())[:6]:
        shutil.copy2(path, src / path.name)
    ns["reshape_images"](src, tmp_path / "chapter", [40, 40])
    # Draft decoding (a JPEG at least twice the size decoded smaller) is the course's one other
    # difference; the notebook counts the images it applies to.
    resize_images(src, tmp_path / "course", (40, 40), workers=1, progress=False, draft=False)
    assert sorted(p.name for p in (tmp_path / "chapter").iterdir()) == sorted(
        p.name for p in src.iterdir()
    )
    for path in src.iterdir():
        with Image.open(path) as original, Image.open(tmp_path / "chapter" / path.name) as copy:
            assert copy.size == (40, 40) and copy.mode == original.mode
            mine = ns["reshape_image"](original.convert("RGB"), (40, 40))
        theirs = resize_image(load_rgb(path), (40, 40))
        assert np.array_equal(np.asarray(mine), np.asarray(theirs))
        # Saved as the course saves its copies, the chapter's resize gives the course's file.
        buffer = io.BytesIO()
        mine.save(buffer, "JPEG", quality=95)
        with Image.open(buffer) as saved, Image.open(tmp_path / "course" / path.name) as course:
            assert np.array_equal(np.asarray(saved), np.asarray(course))


def test_notebook_05_chapter_loader_gives_the_course_batches(small_coco, tmp_path):
    ns = notebook_code(
        "05_dataset_and_loader.ipynb",
        "dataset = CocoCaptionDataset(images",
        "class CustomCocoDataset",
        "def collate_function",
        "def get_loader",
    )
    annotations = small_coco / "annotations" / "captions_train2014.json"
    vocab = build_vocabulary(annotations, 2, progress=False)
    images = tmp_path / "resized"
    resize_images(small_coco / "train2014", images, (40, 40), workers=1, progress=False)
    transform = train_transform(32, flip=True)
    settings = dict(batch_size=8, shuffle=True, num_workers=0, seed=3)
    mine = iter(ns["get_loader"](images, annotations, vocab, transform, **settings))
    theirs = iter(get_loader(images, annotations, vocab, transform, **settings))
    for _ in range(3):
        torch.manual_seed(0)
        got = next(mine)
        torch.manual_seed(0)
        want = next(theirs)
        assert torch.equal(got[0], want[0])
        assert got[1].dtype == torch.long and torch.equal(got[1], want[1])
        assert got[2] == want[2] == sorted(got[2], reverse=True)


def test_notebook_10_shows_each_step_of_distributed_training():
    """Notebook 10's excerpts of helpers/ still find their lines and hold the DDP code it teaches."""
    name = "10_faster_training.ipynb"
    ns = notebook_code(name, "show_source(setup_distributed)", "def excerpt")
    nb = nbformat.read(NOTEBOOKS / name, as_version=4)
    shown = [ns["show_source"](ns["setup_distributed"]).text]
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "excerpt":
                shown.append(eval(compile(ast.Expression(node), name, "eval"), ns).text)
    assert len(shown) == 6
    text = "\n".join(shown)
    for code in (
        "init_process_group",
        '"nccl" if device.type == "cuda" else "gloo"',
        "DistributedSampler(",
        "sampler.set_epoch(epoch)",
        "DistributedDataParallel(decoder",
        "sum_across(",
        "if run.main:",
        "save_checkpoint(checkpoint",
        "destroy_process_group()",
    ):
        assert code in text, code


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
