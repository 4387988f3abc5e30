"""Models, checkpoints, the training loop and resume, and captioning from a checkpoint."""

from __future__ import annotations

import dataclasses
import functools
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.error import URLError

import pytest
import torch

from helpers.caption.captioner import Captioner, caption_files
from helpers.data.images import eval_transform, load_rgb, resize_image
from helpers.data.vocabulary import Vocabulary
from helpers.errors import CourseError
from helpers.models.backbones import build_backbone
from helpers.models.checkpoint import load_models, read_checkpoint
from helpers.models.cnn_lstm import CNNModel, LSTMModel
from helpers.train.config import TrainConfig
from helpers.train.loop import ensure_checkpoint, train


@pytest.fixture(scope="module")
def trained(small_coco, small_config, tmp_path_factory) -> Path:
    """A checkpoint trained for 2 epochs on the fixture (data folder kept for the module)."""
    data = tmp_path_factory.mktemp("data_dir")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COURSE_DATA_DIR", str(data))
        train(small_config(small_coco), out=data / "run", progress=False)
    return data / "run" / "last.pt"


def test_encoder_and_decoder_shapes():
    torch.manual_seed(0)
    encoder, decoder = (
        CNNModel(16, "small", None, freeze=False),
        LSTMModel(16, 24, 50, max_seq_len=7),
    )
    features = encoder(torch.randn(3, 3, 48, 48))
    assert features.shape == (3, 16)
    captions = torch.randint(0, 50, (3, 6))
    logits = decoder(features, captions, [6, 4, 2])
    assert logits.shape == (6 + 4 + 2, 50)  # one row per packed target word
    assert decoder.sample(features).shape == (3, 7)


def test_frozen_resnet_trains_only_the_head_and_stays_in_eval_mode():
    encoder = CNNModel(8, "resnet18", weights=None, freeze=True).train()
    trainable = {n for n, p in encoder.named_parameters() if p.requires_grad}
    assert trainable == {
        "linear_layer.weight",
        "linear_layer.bias",
        "batch_norm.weight",
        "batch_norm.bias",
    }
    assert not encoder.backbone.training  # its BatchNorm statistics must not drift
    assert encoder.batch_norm.training
    assert encoder(torch.randn(2, 3, 64, 64)).shape == (2, 8)


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_resnets_by_name_lose_their_classifier(name):
    net = build_backbone(name, None)
    assert net(torch.randn(1, 3, 64, 64)).shape == (1, net.out_features)
    assert net.out_features in (512, 2048)


def test_weights_that_cannot_be_downloaded_name_both_ways_out(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # nothing cached there

    def offline(*args, **kwargs):
        raise URLError("no network")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    with pytest.raises(CourseError) as err:
        build_backbone("resnet152", "IMAGENET1K_V1")
    message = str(err.value)
    assert "\n" not in message and "ResNet152_Weights.IMAGENET1K_V1" in message
    assert "resnet152.pth" in message and "weights=None" in message


def test_local_weights_file_is_loaded(tmp_path):
    torch.manual_seed(1)
    source = build_backbone("resnet18", None)
    state = {k: v for k, v in source.state_dict().items()}
    state["fc.weight"], state["fc.bias"] = torch.zeros(1000, 512), torch.zeros(1000)
    torch.save(state, tmp_path / "resnet18.pth")
    loaded = build_backbone("resnet18", tmp_path / "resnet18.pth")
    assert torch.equal(loaded.conv1.weight, source.conv1.weight)
    with pytest.raises(CourseError, match="resnet34.pth: weights file not found"):
        build_backbone("resnet34", tmp_path / "resnet34.pth")
    with pytest.raises(CourseError, match="not resnet34 weights"):
        torch.save(state, tmp_path / "other.pth")
        build_backbone("resnet34", tmp_path / "other.pth")


def test_training_writes_a_safe_checkpoint_and_learns(trained):
    ckpt = read_checkpoint(trained)
    assert ckpt["epoch"] == 2 and ckpt["step"] == 2 * 19  # 300 captions in batches of 16
    assert ckpt["config"]["hidden_size"] == 32 and ckpt["vocab_size"] == len(ckpt["vocabulary"])
    history = ckpt["history"]
    assert len(history["val_loss"]) == 2 and len(history["step_loss"]) == 38
    assert history["train_loss"][1] < history["step_loss"][0]  # it learned something
    # weights_only loading works: nothing but tensors and plain values inside
    torch.load(trained, weights_only=True)


@pytest.mark.parametrize("cache", [True, False], ids=["cached-features", "source-loop"])
def test_resume_continues_exactly_where_it_stopped(
    small_coco, small_config, tmp_path, monkeypatch, cache
):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    config = functools.partial(small_config, small_coco, cache_features=cache)
    straight = train(config(), out=tmp_path / "a", progress=False)
    train(config(epochs=1), out=tmp_path / "b", progress=False)
    resumed = train(config(epochs=2), out=tmp_path / "b", progress=False)
    assert resumed.step_loss == straight.step_loss  # no step repeated or skipped
    # a finished run, called again, returns its stored history untouched
    assert train(config(epochs=2), out=tmp_path / "b", progress=False) == resumed
    a, b = read_checkpoint(tmp_path / "a" / "last.pt"), read_checkpoint(tmp_path / "b" / "last.pt")
    for part in ("encoder", "decoder"):
        for key in a[part]:
            assert torch.equal(a[part][key], b[part][key]), key


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"hidden_size": 64}, "hidden_size=32"),
        ({"lr": 0.1}, "lr=0.002"),
        ({"threshold": 1}, "threshold=4"),
    ],
)
def test_resume_refuses_other_settings(
    small_coco, small_config, trained, monkeypatch, change, says
):
    monkeypatch.setenv("COURSE_DATA_DIR", str(trained.parent.parent))
    with pytest.raises(CourseError, match=says):
        train(small_config(small_coco, epochs=3, **change), out=trained.parent, progress=False)


def test_a_notebook_run_shows_one_bar_not_a_line_per_epoch(
    small_coco, small_config, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    train(small_config(small_coco), out=tmp_path / "run", progress="run")
    out, err = capsys.readouterr()
    assert "epoch 1/2" not in out + err  # neither a bar per epoch nor a summary line per epoch
    assert "training: 100%" in err and "2/2" in err and "val_loss=" in err
    assert "time: training, 2 epochs" in out
    train(small_config(small_coco, epochs=3), out=tmp_path / "run", progress=True)
    out, err = capsys.readouterr()
    assert "epoch 3/3: train loss" in out and "epoch 3/3" in err  # terminals: a line per epoch
    with pytest.raises(CourseError, match="progress='epochs': use True, False or 'run'"):
        train(small_config(small_coco), out=tmp_path / "run", progress="epochs")


def test_ensure_checkpoint_reuses_a_finished_run(small_coco, small_config, trained, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(trained.parent.parent))
    monkeypatch.setattr("helpers.train.loop.train", lambda *a, **k: pytest.fail("trained again"))
    best = trained.parent / "best.pt"
    assert ensure_checkpoint(small_config(small_coco, num_workers=0), trained.parent) == best


def test_best_checkpoint_is_the_lowest_validation_loss_and_captions_by_default(
    small_coco, small_config, tmp_path, monkeypatch
):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    losses = iter([3.0, 1.0, 2.0, 1.5])  # the best epoch is the 2nd, before the last
    monkeypatch.setattr("helpers.train.loop.validation_loss", lambda *a, **k: next(losses))
    out = tmp_path / "run"
    train(small_config(small_coco, epochs=2), out=out, progress=False)
    train(small_config(small_coco, epochs=4), out=out, progress=False)  # resumed: 2 epochs more
    best, last = read_checkpoint(out / "best.pt"), read_checkpoint(out / "last.pt")
    assert (best["epoch"], last["epoch"]) == (2, 4)
    assert best["history"]["val_loss"] == [3.0, 1.0]
    assert ensure_checkpoint(small_config(small_coco, epochs=4), out) == out / "best.pt"
    # A run folder stands for its best checkpoint, in the library and on the command line.
    _, decoder, _, ckpt = load_models(out)
    assert ckpt["epoch"] == 2
    for key, value in decoder.state_dict().items():
        assert torch.equal(value, best["decoder"][key]), key


def test_captioner_preprocesses_like_validation(trained, small_coco):
    captioner = Captioner(trained, device="cpu")
    cfg = read_checkpoint(trained)["config"]
    path = next((small_coco / "val2014").iterdir())
    seen_in_validation = eval_transform(cfg["crop"])(
        resize_image(load_rgb(path), (cfg["resize"], cfg["resize"]))
    )
    assert torch.allclose(captioner.load_image(path), seen_in_validation)


def test_killed_training_resumes_from_an_intact_checkpoint(small_coco, tmp_path):
    env = {**os.environ, "COURSE_DATA_DIR": str(tmp_path), "PYTHONUNBUFFERED": "1"}
    out = tmp_path / "run"
    cmd = [
        sys.executable,
        "-m",
        "helpers.train",
        "--dataset",
        str(small_coco),
        "--epochs",
        "3",
        "--embedding-size",
        "32",
        "--hidden-size",
        "32",
        "--resize",
        "40",
        "--crop",
        "32",
        "--batch-size",
        "4",
        "--pretrain-epochs",
        "1",
        "--no-cache-features",  # the source's loop: slow enough to be killed mid-epoch
        "--out",
        str(out),
        "--quiet",
    ]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        while not (out / "last.pt").exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        assert (out / "last.pt").exists(), proc.communicate()
        time.sleep(0.3)  # into the second epoch
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert read_checkpoint(out / "last.pt")["epoch"] in (1, 2)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "resuming from" in done.stdout
    assert read_checkpoint(out / "last.pt")["epoch"] == 3


@pytest.mark.parametrize("damage", ["truncate", "garbage", "zip garbage", "foreign"])
def test_damaged_checkpoints_give_one_line(trained, tmp_path, damage):
    bad = tmp_path / "bad.pt"
    rng = random.Random(0)
    if damage == "truncate":
        bad.write_bytes(trained.read_bytes()[: trained.stat().st_size // 2])
    elif damage == "garbage":
        bad.write_bytes(rng.randbytes(4096))
    elif damage == "zip garbage":  # a real checkpoint with bytes of its pickle overwritten
        data = bytearray(trained.read_bytes())
        for at in rng.sample(range(64, len(data) // 4), 200):
            data[at] = rng.randrange(256)
        bad.write_bytes(bytes(data))
    else:
        torch.save({"state_dict": {}}, bad)
    with pytest.raises(CourseError) as err:
        load_models(bad)
    assert "\n" not in str(err.value) and str(bad) in str(err.value)


def test_a_vocabulary_that_does_not_match_is_one_line(trained):
    ckpt = read_checkpoint(trained)
    smaller = Vocabulary(ckpt["vocabulary"][4:-1])
    with pytest.raises(CourseError, match=r"vocabulary of \d+ words, but the vocabulary given has"):
        Captioner(trained, smaller, device="cpu")
    swapped = list(ckpt["vocabulary"][4:])
    swapped[0], swapped[1] = swapped[1], swapped[0]
    with pytest.raises(CourseError, match="differs from the one it was trained with"):
        Captioner(trained, Vocabulary(swapped), device="cpu")


def test_captioning_skips_bad_files_and_captions_the_rest(trained, small_coco, tmp_path):
    good = sorted((small_coco / "val2014").iterdir())[:3]
    (tmp_path / "notes.jpg").write_text("not an image")
    paths = [good[0], tmp_path / "missing.jpg", tmp_path / "notes.jpg", *good[1:]]
    results = caption_files(Captioner(trained, device="cpu"), paths, batch_size=2)
    assert [r.error is None for r in results] == [True, False, False, True, True]
    assert all(r.caption and "<" not in r.caption for r in results if r.error is None)
    cli = subprocess.run(
        [
            sys.executable,
            "-m",
            "helpers.caption",
            *map(str, paths),
            "--checkpoint",
            str(trained),
            "--device",
            "cpu",
        ],
        capture_output=True,
        text=True,
    )
    assert cli.returncode == 1
    assert len(cli.stdout.strip().splitlines()) == 3
    errors = cli.stderr.strip().splitlines()
    assert (
        len(errors) == 2
        and "missing.jpg: image file not found" in errors[0]
        and "Traceback" not in cli.stderr
    )


def test_train_cli_lists_the_config():
    run = subprocess.run(
        [sys.executable, "-m", "helpers.train", "--help"], capture_output=True, text=True
    )
    assert run.returncode == 0
    for field in dataclasses.fields(TrainConfig):
        assert "--" + field.name.replace("_", "-") in run.stdout
    from helpers.train.__main__ import _field_help

    # every setting explains itself (its comment in TrainConfig is its --help text)
    assert set(_field_help()) == {f.name for f in dataclasses.fields(TrainConfig)}
    assert "the global batch: split over the processes" in " ".join(run.stdout.split())


def test_captioner_beam_sizes(trained, small_coco):
    captioner = Captioner(trained, device="cpu")
    images = torch.stack(
        [captioner.load_image(p) for p in sorted((small_coco / "val2014").iterdir())[:6]]
    )
    assert captioner.caption(images, beam_size=1) == captioner.caption(images)
    assert len(captioner.caption(images, beam_size=3, length_penalty=0.5)) == 6
    with pytest.raises(CourseError, match="beam size must be 1"):
        captioner.caption(images, beam_size=0)


def test_amp_is_for_cuda_and_says_so_elsewhere(capsys):
    from helpers.distributed import Distributed
    from helpers.train.loop import _autocast

    cpu = Distributed(device=torch.device("cpu"))
    assert _autocast(TrainConfig(amp=True), cpu, progress=True) is None
    assert capsys.readouterr().out == "--amp works on CUDA only: training in float32 on cpu\n"
    assert _autocast(TrainConfig(amp=False), cpu, progress=True) is None


def test_a_global_batch_that_does_not_split_is_one_line():
    from helpers.distributed import Distributed
    from helpers.train.data import loaders

    with pytest.raises(CourseError, match="batch size 16 does not split over 3 processes"):
        loaders(TrainConfig(batch_size=16), None, None, Distributed(0, 3), progress=False)


def test_a_weights_file_named_relative_or_in_full_is_the_same_run(tmp_path, monkeypatch):
    (tmp_path / "w.pth").write_bytes(b"")
    monkeypatch.chdir(tmp_path)
    relative, full = TrainConfig(weights="w.pth"), TrainConfig(weights=str(tmp_path / "w.pth"))
    assert relative.weights == full.weights == str((tmp_path / "w.pth").resolve())
    assert TrainConfig(weights="IMAGENET1K_V1").weights == "IMAGENET1K_V1"  # a name stays a name


def test_pretraining_can_also_name_the_commonest_word_pairs(small_coco, small_config, tmp_path):
    from itertools import pairwise

    from helpers.data.images import eval_transform
    from helpers.data.vocabulary import build_vocabulary, tokenize
    from helpers.train.data import image_captions
    from helpers.train.pretrain import WordsInImage

    cfg = small_config(small_coco, threshold=1)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COURSE_DATA_DIR", str(tmp_path))
        vocab = build_vocabulary(cfg.data.split("train").annotations, threshold=1)
        captions = image_captions(cfg, vocab, "train")
    words = WordsInImage(captions, eval_transform(cfg.crop))
    pairs = WordsInImage(captions, eval_transform(cfg.crop), pairs=6)
    n = len(vocab)
    assert words.targets.shape == (60, n) and pairs.targets.shape == (60, n + 6)
    assert torch.equal(pairs.targets[:, :n], words.targets)  # the words are as before
    for k, (a, b) in enumerate(pairs.pairs):
        assert min(a, b) >= 4  # no <pad>, <start>, <end> or <unk>
        pair = (vocab.id_to_word[a], vocab.id_to_word[b])
        said = [
            any(pair in pairwise(tokenize(t)) for t in captions.captions(i))
            for i in captions.image_ids
        ]
        assert pairs.targets[:, n + k].tolist() == [float(s) for s in said]
    image, target = pairs[0]
    assert image.shape == (3, cfg.crop, cfg.crop) and target.shape == (n + 6,)
    # Asked for enough pairs, the targets include each colour with its shape: what binds them.
    many = WordsInImage(captions, eval_transform(cfg.crop), pairs=1000).pairs
    named = {(vocab.id_to_word[a], vocab.id_to_word[b]) for a, b in many}
    assert any((c, s) in named for c in ("red", "blue", "green") for s in ("circle", "square"))
