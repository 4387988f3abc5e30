"""Video through the training loop: frame (and motion) features, the two tasks (captions, and the
LRCN's actions) trained end to end on a tiny generated set, describing clips with the checkpoints
(library and CLI), the T = 1 control, and the checks on video settings."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_audio_only, write_untrained_checkpoint

from helpers.caption import video as caption_video
from helpers.caption.video import VideoModel, describe_split
from helpers.data.clip_cache import (
    ClipCaptions,
    clip_features,
    clips_features,
    ensure_clip_features,
)
from helpers.data.registry import resolve_dataset, video_split
from helpers.data.tiny_video import ACTIONS, Actor, generate_tiny_video
from helpers.data.video import (
    VideoItem,
    action_label,
    clip_tensor,
    count_frames,
    frame_indices,
    frames_to_read,
    load_videos,
    read_clip,
)
from helpers.data.vocabulary import SPECIALS, Vocabulary, action_vocabulary
from helpers.errors import CourseError
from helpers.evaluate.video import ActionReport, action_report, caption_is_right
from helpers.models.backbones import GridFeatures, build_backbone, grid_features
from helpers.models.checkpoint import read_checkpoint, save_checkpoint
from helpers.models.registry import build_models
from helpers.models.video import ActionLSTM
from helpers.train.config import TrainConfig
from helpers.train.data import feature_cache_path
from helpers.train.loop import train

av = pytest.importorskip("av")

# Sizes that train in a second or two on the tiny set of 16 + 6 clips.
SMALL = dict(embedding_size=16, hidden_size=16, resize=40, crop=32, batch_size=8)


def _one_line(err: pytest.ExceptionInfo, *says: str) -> str:
    text = str(err.value)
    assert "\n" not in text and all(s in text for s in says), text
    return text


def _randomise_batch_norm(net: torch.nn.Module) -> None:
    """BatchNorm statistics and shifts away from 0 and 1, so an all-zero input has features != 0."""
    generator = torch.Generator().manual_seed(0)
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            n = module.num_features
            module.running_mean.copy_(torch.randn(n, generator=generator) * 0.3)
            module.running_var.copy_(torch.rand(n, generator=generator) + 0.5)
            module.bias.data.copy_(torch.randn(n, generator=generator) * 0.3)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return generate_tiny_video(
        tmp_path_factory.mktemp("v") / "tiny", seed=1, n_train=16, n_val=6, progress=False
    )


@pytest.fixture(scope="module")
def image_checkpoint(tmp_path_factory) -> Path:
    """The chapter's image model (small backbone, dataset 'tiny') in the checkpoint format; its
    backbone is also the frozen CNN the video runs borrow (--weights)."""
    cfg = TrainConfig(dataset="tiny", pretrain_epochs=0, **SMALL)
    vocab = Vocabulary(["a", "red", "blue", "square", "circle", "moves", "grows"])
    path = tmp_path_factory.mktemp("image") / "best.pt"
    return write_untrained_checkpoint(
        path, cfg, vocab, lambda encoder: _randomise_batch_norm(encoder.backbone)
    )


def _video_config(tiny: Path, weights: Path, **changes) -> TrainConfig:
    base = dict(dataset=str(tiny), weights=str(weights), threshold=2, epochs=2, **SMALL)
    return TrainConfig(**{**base, **changes})


@pytest.fixture(scope="module")
def runs(tiny, image_checkpoint, tmp_path_factory) -> dict:
    """Four runs on the tiny set: LRCN, captions and attention captions with T = 4 and motion, and
    LRCN with T = 1."""
    data = tmp_path_factory.mktemp("data_dir")
    configs = {
        "lrcn": _video_config(tiny, image_checkpoint, decoder="lrcn", frames=4, motion=True),
        "caption": _video_config(tiny, image_checkpoint, frames=4, motion=True),
        "lrcn_t1": _video_config(tiny, image_checkpoint, decoder="lrcn", epochs=1),
        "attention": _video_config(
            tiny, image_checkpoint, decoder="attention", frames=4, motion=True, attention_size=8
        ),
    }
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COURSE_DATA_DIR", str(data))
        for name, cfg in configs.items():
            train(cfg, out=data / name, progress=False)
    return {"data": data, "configs": configs, **{name: data / name for name in configs}}


# --- 1. frame features, with motion ---------------------------------------------------------------


def test_motion_features_are_each_frame_and_its_difference_from_the_one_before():
    torch.manual_seed(0)
    backbone = build_backbone("small").eval()
    _randomise_batch_norm(backbone)
    f = backbone.out_features
    frames = torch.randn(5, 3, 32, 32)  # T + 1 = 5 frames
    with torch.no_grad():
        plain = clip_features(backbone, frames)
        assert plain.shape == (5, f)
        assert torch.allclose(plain, backbone(frames), atol=1e-5)
        both = clip_features(backbone, frames, motion=True)
        assert both.shape == (4, 2 * f)  # T = 4 steps from T + 1 frames
        assert torch.allclose(both[:, :f], backbone(frames[1:]), atol=1e-5)
        assert torch.allclose(both[:, f:], backbone(frames[1:] - frames[:-1]), atol=1e-5)
        # Nothing moves: the motion half is what the CNN makes of an all-zero frame, every step.
        still = frames[:1].repeat(5, 1, 1, 1)
        zero = backbone(torch.zeros(1, 3, 32, 32))
        assert zero.abs().sum() > 0  # not trivially zero: the BatchNorm shifts are not 0
        motion = clip_features(backbone, still, motion=True)[:, f:]
        assert torch.allclose(motion, zero.expand(4, -1), atol=1e-5)
        assert not torch.allclose(both[:, f:], zero.expand(4, -1), atol=1e-3)


@pytest.mark.parametrize("grid", [False, True])
@pytest.mark.parametrize("motion", [False, True])
def test_the_cache_batches_clips_into_the_same_rows_as_one_clip_at_a_time(grid, motion):
    # The cache runs the frames of several clips through the CNN at once (clips_features); the
    # notebook teaches one clip at a time (clip_features). Clips of different lengths.
    torch.manual_seed(0)
    backbone = build_backbone("small").eval()
    _randomise_batch_norm(backbone)
    net = GridFeatures(backbone) if grid else backbone
    clips = [torch.randn(n, 3, 32, 32) for n in (5, 3, 6)]
    with torch.no_grad():
        one = [clip_features(net, c, motion) for c in clips]
        many = clips_features(net, clips, motion)
    assert len(many) == 3
    for a, b in zip(one, many, strict=True):
        assert a.shape == b.shape
        assert torch.allclose(a, b, atol=1e-5)


# --- 2. both tasks trained end to end -------------------------------------------------------------


def test_both_tasks_train_and_store_their_video_settings(runs, tiny, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(runs["data"]))
    for name, decoder, frames, motion in (
        ("lrcn", "lrcn", 4, True),
        ("caption", "lstm", 4, True),
        ("lrcn_t1", "lrcn", 1, False),
    ):
        cfg = runs["configs"][name]
        assert (runs[name] / "last.pt").is_file() and (runs[name] / "best.pt").is_file()
        ckpt = read_checkpoint(runs[name] / "last.pt")
        config = ckpt["config"]
        assert (config["frames"], config["motion"], config["decoder"]) == (frames, motion, decoder)
        assert ckpt["epoch"] == cfg.epochs and len(ckpt["history"]["val_loss"]) == cfg.epochs
        # The encoder reads the frame's features and, with motion, its difference's: 2F inputs.
        streams = 2 if motion else 1
        assert ckpt["encoder"]["linear_layer.weight"].shape == (16, 512 * streams)
        cache = feature_cache_path(cfg, "train")
        assert cache.name.endswith(f"_t{frames}{'_motion' if motion else ''}.pt")
        assert cache.is_relative_to(runs["data"]) and cache.is_file()
        suffix = f"-t{frames}{'-motion' if motion else ''}"
        assert cfg.run_dir().name.endswith(("-lrcn" if decoder == "lrcn" else "") + suffix)
    # The LRCN's vocabulary is the train clips' action names, in the tiny set's order.
    items, _ = load_videos(tiny / "videodatainfo.json", tiny / "videos", "train")
    names = {action_label(i) for i in items} - {None}
    stored = read_checkpoint(runs["lrcn"] / "best.pt")["vocabulary"]
    assert stored == [*SPECIALS, *(a for a in ACTIONS if a in names)]
    caption_words = read_checkpoint(runs["caption"] / "best.pt")["vocabulary"]
    assert "square" in caption_words or "circle" in caption_words


def test_attention_on_video_looks_at_places_each_with_all_its_frames(runs, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_DATA_DIR", str(runs["data"]))
    cfg = runs["configs"]["attention"]
    cache = feature_cache_path(cfg, "val")
    assert cache.name.endswith("_grid_t4_motion.pt") and cache.is_file()
    model = VideoModel(runs["attention"], "cpu")
    capsys.readouterr()
    items, said = describe_split(model, "val")
    assert len(said) == 6 and all(isinstance(s, str) and "<" not in s for s in said)
    assert capsys.readouterr().out == ""  # the training's cache of tubes, read as it is
    cached = torch.load(cache, weights_only=True)["features"]
    one = model.features(items[1].path)
    channels = model.encoder.out_features
    # One tube per place of the grid: its 4 frames' features, then their 4 differences.
    assert one.shape == (cached.size(1), 4 * 2 * channels)
    assert torch.allclose(one, cached[1], atol=1e-5)
    frames = read_clip(items[1].path, frames_to_read(4, motion=True), size=cfg.resize)
    grids = grid_features(model.encoder.backbone, clip_tensor(frames, cfg.crop))
    assert torch.allclose(one[:, :channels], grids[1], atol=1e-5)  # place by place, frame 1


def test_a_finished_run_trains_no_more_and_other_frames_are_refused(runs, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(runs["data"]))
    cfg, out = runs["configs"]["lrcn"], runs["lrcn"]
    before = (out / "last.pt").read_bytes()
    history = train(cfg, out=out, progress=False)
    assert history.epoch == [1, 2] and (out / "last.pt").read_bytes() == before
    for changes in ({"frames": 2}, {"frames": 2, "motion": False}):
        with pytest.raises(CourseError) as err:
            train(dataclasses.replace(cfg, **changes), out=out, progress=False)
        _one_line(err, str(out / "last.pt"), "frames=4", "other settings")
    assert (out / "last.pt").read_bytes() == before


# --- 3. the LRCN's targets ------------------------------------------------------------------------


def test_action_clips_leave_out_two_actors_and_target_the_action_ids(tiny):
    items, _ = load_videos(tiny / "videodatainfo.json", tiny / "videos", "train")
    one = [k for k, item in enumerate(items) if len(item.actions) == 1]
    assert 0 < len(one) < len(items)  # the set has clips with two actors
    vocab = action_vocabulary(items)
    features = torch.arange(len(items), dtype=torch.float).view(-1, 1, 1).expand(-1, 3, 2)
    data = ClipCaptions(items, features, vocab, actions=True)
    assert len(data) == len(one)
    for (x, target), k in zip(data, one, strict=True):
        assert torch.equal(x, features[k])
        assert target.tolist() == [vocab.word_to_id[items[k].actions[0]["action"]]]
        assert target.item() >= len(SPECIALS)
    captions = ClipCaptions(items, features, vocab)
    assert len(captions) == 5 * len(items)  # captions: every clip, one or two actors


def test_action_vocabulary_follows_the_tiny_sets_order():
    def item(*actions: str) -> VideoItem:
        return VideoItem("v", Path("v.mp4"), "train", [], [{"action": a} for a in actions])

    items = [item("still"), item("jump"), item("up"), item("left", "right"), item("left")]
    vocab = action_vocabulary(items)
    assert vocab.id_to_word == [*SPECIALS, "left", "up", "still", "jump"]  # unknown names last
    assert list(ACTIONS)[:4] == ["left", "right", "up", "down"]
    assert action_vocabulary(items[::-1]).id_to_word == vocab.id_to_word
    assert "right" not in vocab  # it only appears in a two-actor clip


# --- 4. describing clips with the checkpoints -----------------------------------------------------


def test_video_models_describe_a_split_from_the_training_cache(runs, tiny, monkeypatch, capsys):
    monkeypatch.setenv("COURSE_DATA_DIR", str(runs["data"]))
    caches = sorted(p.name for p in (runs["data"] / "features").iterdir())
    lrcn = VideoModel(runs["lrcn"], "cpu")
    assert lrcn.actions and lrcn.path == runs["lrcn"] / "best.pt"
    items, said = describe_split(lrcn, "val")
    assert [i.video_id for i in items] == [f"video{k}" for k in range(16, 22)]
    assert len(said) == 6 and set(said) <= set(lrcn.vocab.id_to_word[len(SPECIALS) :])
    captioner = VideoModel(runs["caption"], "cpu")
    assert not captioner.actions
    items, said = describe_split(captioner, "val", beam_size=2)
    assert len(said) == 6 and all(isinstance(s, str) and "<" not in s for s in said)
    # The training cache served both: nothing rebuilt, no new cache file.
    assert capsys.readouterr().out == ""
    assert sorted(p.name for p in (runs["data"] / "features").iterdir()) == caches
    # A file read on its own gives the features the cache holds for it (the CLI's path).
    cfg = runs["configs"]["lrcn"]
    cached = ensure_clip_features(
        feature_cache_path(cfg, "val"),
        lrcn.encoder.backbone,
        cfg.backbone,
        items,
        cfg.frames,
        cfg.resize,
        cfg.crop,
        False,
        cfg.motion,
    )
    assert torch.allclose(lrcn.features(items[2].path), cached[2], atol=1e-5)
    report = action_report(items, describe_split(lrcn, "val")[1], lrcn.vocab.id_to_word[4:])
    assert report.clips == sum(action_label(i) in report.classes for i in items)


def test_the_lrcn_never_names_a_special_token():
    torch.manual_seed(0)
    lrcn = ActionLSTM(8, 8, len(SPECIALS) + 3).eval()
    with torch.no_grad():
        lrcn.linear_layer.bias[: len(SPECIALS)] = 100.0  # <pad> ... <unk> would win by far
        lrcn.linear_layer.bias[len(SPECIALS) + 1] = 10.0
    clips = torch.randn(5, 4, 8)
    assert lrcn(clips).argmax(1).lt(len(SPECIALS)).all()
    assert lrcn.predict(clips).tolist() == [len(SPECIALS) + 1] * 5
    # pool="mean" averages the steps; "last" reads the last one only.
    with torch.no_grad():
        hiddens, _ = lrcn.lstm_layer(clips)
        lrcn.pool = "mean"
        assert torch.allclose(lrcn(clips), lrcn.linear_layer(hiddens.mean(1)), atol=1e-6)
        lrcn.pool = "last"
        assert torch.allclose(lrcn(clips), lrcn.linear_layer(hiddens[:, -1]), atol=1e-6)


def test_action_report_on_a_known_case():
    def item(*actions: str) -> VideoItem:
        return VideoItem("v", Path("v.mp4"), "validate", [], [{"action": a} for a in actions])

    items = [
        item("left"),
        item("left"),
        item("left"),
        item("right"),
        item("right"),
        item("up"),
        item("left", "up"),  # two actors: no single label, not counted
        item("spin"),  # not one of the classes: not counted
    ]
    predicted = ["left", "left", "right", "right", "left", "up", "left", "spin"]
    report = action_report(items, predicted, ["left", "right", "up"])
    assert isinstance(report, ActionReport)
    assert report.confusion == [[2, 1, 0], [1, 1, 0], [0, 0, 1]]
    assert report.clips == 6 and report.accuracy == pytest.approx(4 / 6)
    assert report.per_class == pytest.approx({"left": 2 / 3, "right": 1 / 2, "up": 1.0})
    empty = action_report(items[:2], ["left", "up"], ["right", "down"])
    assert empty.clips == 0 and np.isnan(empty.accuracy) and empty.per_class == {}
    with pytest.raises(ValueError):
        action_report(items, predicted[:-1], ["left"])  # one prediction per clip


# --- 5. the T = 1 control -------------------------------------------------------------------------


def test_one_frame_is_the_middle_frame_and_the_image_model_reads_it(
    runs, tiny, image_checkpoint, tmp_path
):
    assert frames_to_read(1, False) == 1 and frames_to_read(4, True) == 5
    assert frame_indices(9, 1) == [4] and frame_indices(8, 1) == [4] and frame_indices(1, 1) == [0]
    video = tiny / "videos" / "video3.mp4"
    n = count_frames(video)
    middle = read_clip(video, 1, size=40)
    assert middle.indices == [n // 2]
    lrcn = VideoModel(runs["lrcn_t1"], "cpu")
    assert (lrcn.config["frames"], lrcn.config["motion"]) == (1, False)
    by_hand = lrcn.encoder.backbone(clip_tensor(middle, 32)).flatten(1)
    assert torch.allclose(lrcn.features(video), by_hand, atol=1e-5)
    assert lrcn.describe(lrcn.features(video)[None])[0] in lrcn.vocab.id_to_word[4:]
    # The chapter's image checkpoint (no frames or motion stored) is the case T = 1.
    assert "frames" in read_checkpoint(image_checkpoint)["config"]
    state = torch.load(image_checkpoint, weights_only=True)
    for key in ("frames", "motion", "pool"):
        del state["config"][key]
    old = tmp_path / "chapter.pt"
    torch.save(state, old)
    for path in (image_checkpoint, old):
        image = VideoModel(path, "cpu")
        assert (image.config["frames"], image.config["motion"], image.actions) == (1, False, False)
        features = image.features(video)
        by_hand = image.encoder.backbone(clip_tensor(middle, 32)).flatten(1)
        assert features.shape == (1, 512) and torch.allclose(features, by_hand, atol=1e-5)
        (text,) = image.describe(features[None])
        (wide,) = image.describe(features[None], beam_size=2)
        assert isinstance(text, str) and isinstance(wide, str)
    # An image attention checkpoint looks at the middle frame's grid, one place at a time.
    state["config"]["decoder"] = "attention"
    encoder, decoder = build_models({**state["config"], "weights": None}, state["vocab_size"])
    attention = tmp_path / "attention.pt"
    save_checkpoint(
        attention, **{**state, "encoder": encoder.state_dict(), "decoder": decoder.state_dict()}
    )
    grid = VideoModel(attention, "cpu")
    features = grid.features(video)
    by_hand = grid_features(grid.encoder.backbone, clip_tensor(middle, 32))[0]
    assert features.shape == by_hand.shape and torch.allclose(features, by_hand, atol=1e-5)
    (text,) = grid.describe(features[None])
    assert isinstance(text, str)


# --- 6. the command line --------------------------------------------------------------------------


def test_the_cli_says_caption_and_action_and_names_bad_files(runs, tiny, tmp_path, capsys):
    good, other = tiny / "videos" / "video0.mp4", tiny / "videos" / "video17.mp4"
    missing = tmp_path / "missing.mp4"
    audio = write_audio_only(tmp_path / "audio.mp4")
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(b"not a video at all " * 20)
    both = ["--checkpoint", str(runs["caption"]), "--checkpoint", str(runs["lrcn"])]
    argv = [str(p) for p in (missing, good, audio, garbage, other)]
    assert caption_video.main([*argv, *both, "--device", "cpu"]) == 1
    out, err = capsys.readouterr()
    lines = out.splitlines()
    assert [line.split("\t")[0] for line in lines] == [str(good), str(other)]
    actions = set(read_checkpoint(runs["lrcn"] / "best.pt")["vocabulary"][len(SPECIALS) :])
    for line in lines:
        path, said, action = line.split("\t")
        assert said.startswith("caption: ") and action.startswith("action: ")
        assert action.removeprefix("action: ") in actions
    errors = err.strip().splitlines()
    assert len(errors) == 3 and all(e.startswith("error: ") for e in errors)
    for line, path, says in zip(
        errors,
        (missing, audio, garbage),
        ("not found", "has no video stream", "not a readable video"),
        strict=True,
    ):
        assert str(path) in line and says in line, line
    # Only good files, one checkpoint, beam search: exit 0, the caption only.
    assert caption_video.main([str(good), *both[:2], "--beam-size", "3", "--device", "cpu"]) == 0
    out, err = capsys.readouterr()
    assert err == "" and out.startswith(f"{good}\tcaption: ") and out.count("\t") == 1


# --- 7. judging a caption against the clip --------------------------------------------------------


def test_caption_is_right_needs_each_actor_with_its_own_action(tiny):
    data = json.loads((tiny / "videodatainfo.json").read_text())
    actors = {v["video_id"]: v["actions"] for v in data["videos"]}
    assert {len(a) for a in actors.values()} == {1, 2}
    for s in data["sentences"]:  # every generated caption is right about its own clip
        assert caption_is_right(s["caption"], actors[s["video_id"]]), s
    square = Actor("square", "red", "left")
    assert caption_is_right("A red square moves to the left.", [square])
    assert caption_is_right("a video of a red square moving to the left", [square])
    assert not caption_is_right("a blue square moves to the left", [square])  # colour
    assert not caption_is_right("a red circle moves to the left", [square])  # shape
    assert not caption_is_right("a red square moves to the right", [square])  # action
    assert not caption_is_right("a red square", [square])  # no action
    turning = Actor("star", "green", "recolor", "blue")
    assert caption_is_right("the green star turns blue", [turning])
    assert not caption_is_right("the green star turns orange", [turning])
    pair = [Actor("square", "red", "up"), Actor("circle", "blue", "grow", x=0.5, y=0.27)]
    assert caption_is_right("a red square goes up and a blue circle grows", pair)
    assert caption_is_right("A blue circle gets bigger while a red square rises.", pair)
    assert not caption_is_right("a red square goes up", pair)  # one actor left out
    assert not caption_is_right("a red square grows and a blue circle goes up", pair)  # swapped
    assert not caption_is_right("a blue circle goes up and a red square grows", pair)
    assert not caption_is_right("a red square goes up and a green circle grows", pair)
    as_dicts = [dataclasses.asdict(a) for a in pair]
    assert caption_is_right("a red square goes up and a blue circle grows", as_dicts)


# --- 8. video settings are checked before any work ------------------------------------------------


def test_video_settings_are_checked_in_one_line(tiny, image_checkpoint):
    assert resolve_dataset("tiny_video").video and resolve_dataset(tiny).video
    assert not resolve_dataset("tiny").video and not resolve_dataset(tiny / "videos").video
    assert video_split(tiny, "val").name == "validate"
    weights = str(image_checkpoint)
    video = dict(dataset=str(tiny), weights=weights)
    cases = [
        (dict(dataset="tiny", frames=4), "are for video datasets"),
        (dict(dataset="tiny", motion=True), "are for video datasets"),
        (dict(dataset="tiny", decoder="lrcn"), "are for video datasets"),
        (dict(dataset=str(tiny)), "a video run needs a trained backbone"),
        (dict(video, cache_features=False), "keep --freeze and --cache-features"),
        (dict(video, freeze=False), "keep --freeze and --cache-features"),
        (dict(video, decoder="lrcn", pool="max"), "pool must be 'last' or 'mean'"),
        (dict(video, frames=0), "frames must be a whole number of at least 1"),
        (dict(video, dataset=str(tiny / "typo"), frames=4), "dataset folder not found"),
    ]
    for changes, says in cases:
        with pytest.raises(CourseError) as err:
            TrainConfig(**changes).check()
        _one_line(err, says)
    TrainConfig(**video, decoder="lrcn", frames=4, motion=True, pool="mean").check()
    TrainConfig(**video, decoder="attention", frames=4, motion=True).check()
    with pytest.raises(CourseError) as err:  # a folder that is neither: named, one line
        video_split(tiny / "videos")
    _one_line(err, str(tiny / "videos"), "not a video dataset folder")
