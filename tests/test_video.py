"""The tiny video set (real H.264 MP4 files in MSR-VTT's layout) and reading clips with PyAV."""

from __future__ import annotations

import filecmp
import json
from pathlib import Path

import numpy as np
import pytest
from conftest import write_audio_only
from PIL import Image

from helpers.data.tiny_video import ACTIONS, Actor, generate_tiny_video, write_mp4
from helpers.data.video import count_frames, frame_indices, load_videos, read_clip
from helpers.errors import CourseError

av = pytest.importorskip("av")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    return generate_tiny_video(
        tmp_path_factory.mktemp("v") / "tiny", seed=1, n_train=16, n_val=6, progress=False
    )


def test_the_same_seed_gives_the_same_bytes(tiny, tmp_path):
    # `tiny` was made by one process; these clips by two side by side.
    again = generate_tiny_video(
        tmp_path / "again", seed=1, n_train=16, n_val=6, progress=False, workers=2
    )
    names = sorted(p.relative_to(tiny) for p in tiny.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    differ = [n for n in names if not filecmp.cmp(tiny / n, again / n, shallow=False)]
    assert differ == []
    other = generate_tiny_video(tmp_path / "other", seed=2, n_train=16, n_val=6, progress=False)
    assert not filecmp.cmp(tiny / "videos" / "video0.mp4", other / "videos" / "video0.mp4", False)
    stamp = (tiny / "videodatainfo.json").stat().st_mtime_ns
    generate_tiny_video(tiny, seed=1, n_train=16, n_val=6, progress=False)  # identical: kept
    assert (tiny / "videodatainfo.json").stat().st_mtime_ns == stamp


def test_clips_are_real_mp4_with_truthful_captions(tiny):
    data = json.loads((tiny / "videodatainfo.json").read_text())
    assert len(data["videos"]) == 22 and len(data["sentences"]) == 22 * 5
    for video in data["videos"]:
        path = tiny / "videos" / f"{video['video_id']}.mp4"
        with av.open(str(path)) as container:
            assert container.streams.video[0].codec_context.name == "h264"
        assert count_frames(path) == video["frames"] and 8 <= video["frames"] <= 16
        captions = [
            s["caption"].lower() for s in data["sentences"] if s["video_id"] == video["video_id"]
        ]
        assert len(captions) == 5 and len(set(captions)) == 5
        for actor in video["actions"]:
            said = [p.format(new=actor["new_color"]) for p in ACTIONS[actor["action"]][0]]
            said.append(ACTIONS[actor["action"]][1].format(new=actor["new_color"]))
            for text in captions:
                assert f"{actor['color']} {actor['shape']}" in text
                assert any(phrase in text for phrase in said), (text, actor)
    assert {v["split"] for v in data["videos"]} == {"train", "validate"}


def test_one_frame_cannot_tell_the_actions_apart():
    # At the middle of the clip every action draws the same picture; only the motion differs.
    middle = {action: Actor("square", "red", action, "blue").at(0.5) for action in ACTIONS}
    assert len(set(middle.values())) == 1
    ends = {
        a: (Actor("square", "red", a, "blue").at(0), Actor("square", "red", a, "blue").at(1))
        for a in ACTIONS
    }
    assert len(set(ends.values())) == len(ACTIONS)  # the first and last frames tell them apart
    left, right = Actor("star", "red", "left"), Actor("star", "red", "right")
    assert left.at(0.25)[0] == right.at(0.75)[0]  # a left mover's past is a right mover's future


def test_frames_are_sampled_evenly_and_short_clips_repeat():
    assert frame_indices(16, 8) == [1, 3, 5, 7, 9, 11, 13, 15]
    assert frame_indices(8, 8) == list(range(8))
    assert frame_indices(3, 6) == [0, 0, 1, 1, 2, 2]
    assert frame_indices(1, 4) == [0, 0, 0, 0]


def test_read_clip_keeps_t_frames_resized(tiny):
    path = tiny / "videos" / "video0.mp4"
    n = count_frames(path)
    clip = read_clip(path, 8, size=32)
    assert clip.frames.shape == (8, 32, 32, 3) and clip.frames.dtype == np.uint8
    assert clip.n_frames == n and clip.repeated == 0
    long = read_clip(path, 24)
    assert long.frames.shape == (24, 128, 128, 3) and long.repeated == 24 - n


def test_a_large_video_is_read_at_the_size_asked(tmp_path):
    frames = [Image.new("RGB", (640, 480), (i * 20, 100, 50)) for i in range(12)]
    path = tmp_path / "large.mp4"
    import av as pyav

    with pyav.open(str(path), mode="w") as container:
        stream = container.add_stream("libx264", rate=8)
        stream.width, stream.height, stream.pix_fmt = 640, 480, "yuv420p"
        for img in frames:
            for packet in stream.encode(pyav.VideoFrame.from_image(img)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    clip = read_clip(path, 4, size=48)
    assert clip.frames.shape == (4, 48, 48, 3)
    assert abs(int(clip.frames[0, 0, 0, 0]) - 20) < 12  # frame 1 of 12 (index 1): red 20


def _one_line(err: pytest.ExceptionInfo, path: Path, says: str) -> None:
    text = str(err.value)
    assert "\n" not in text and str(path) in text and says in text, text


def test_bad_videos_are_one_line_naming_the_file(tiny, tmp_path):
    good = (tiny / "videos" / "video0.mp4").read_bytes()
    cases = {}
    cases["truncated.mp4"] = (good[: len(good) // 2], "")
    cases["garbage.mp4"] = (b"this is not a video at all" * 10, "not a readable video")
    cases["empty.mp4"] = (b"", "not a readable video")
    for name, (data, says) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(CourseError) as err:
            read_clip(path, 8)
        _one_line(err, path, says)
    with pytest.raises(CourseError) as err:
        read_clip(tmp_path / "missing.mp4", 8)
    _one_line(err, tmp_path / "missing.mp4", "not found")


def test_audio_only_and_frameless_videos_are_refused(tmp_path, monkeypatch):

    audio = write_audio_only(tmp_path / "audio.mp4")
    with pytest.raises(CourseError) as err:
        read_clip(audio, 8)
    _one_line(err, audio, "has no video stream (it holds audio)")
    # A container whose video stream holds no frame (PyAV cannot write one): counted as 0.
    import helpers.data.video

    empty = tmp_path / "frameless.mp4"
    write_mp4(empty, [Image.new("RGB", (128, 128))])
    with monkeypatch.context() as mp:
        mp.setattr(helpers.data.video, "_frame_times", lambda path: ([], []))
        mp.setattr(helpers.data.video, "count_frames", lambda path: 0)
        with pytest.raises(CourseError) as err:
            read_clip(empty, 8)
    _one_line(err, empty, "has no frames")


def test_an_msrvtt_file_is_read_by_changing_one_path(tmp_path, tiny):
    """Three clips in MSR-VTT's own format (train_val_videodatainfo.json), one of them missing."""
    videos = tmp_path / "TrainValVideo"
    videos.mkdir()
    for k in (0, 1):
        (videos / f"video{k}.mp4").write_bytes((tiny / "videos" / f"video{k}.mp4").read_bytes())
    entries = [
        {
            "category": 9,
            "url": "https://www.youtube.com/watch?v=example",
            "video_id": f"video{k}",
            "start time": 137.72,
            "end time": 149.44,
            "split": "train" if k < 2 else "validate",
            "id": k,
        }
        for k in range(3)
    ]
    sentences = [
        {
            "caption": f"a person does thing {j} in video {k}",
            "video_id": f"video{k}",
            "sen_id": 3 * k + j,
        }
        for k in range(3)
        for j in range(3)
    ]
    info = {"contributor": "Microsoft MSM group", "year": "2016", "version": "1.0"}
    path = tmp_path / "train_val_videodatainfo.json"
    path.write_text(json.dumps({"info": info, "videos": entries, "sentences": sentences}))
    items, skipped = load_videos(path, videos)
    assert [i.video_id for i in items] == ["video0", "video1"]
    assert items[1].captions == [f"a person does thing {j} in video 1" for j in range(3)]
    assert items[0].actions == [] and items[0].split == "train"
    assert skipped == [f"video2: no video file in {videos}"]
    train, _ = load_videos(path, videos, "train")
    assert len(train) == 2 and load_videos(path, videos, "validate")[0] == []
    tiny_items, tiny_skipped = load_videos(tiny / "videodatainfo.json", tiny / "videos", "validate")
    assert len(tiny_items) == 6 and not tiny_skipped and tiny_items[0].actions
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"videos": entries}))
    with pytest.raises(CourseError, match="needs 'videos' and 'sentences' lists"):
        load_videos(bad, videos)


def test_frame_features_are_cached_per_clip(tiny, tmp_path, capsys):
    import torch

    from helpers.data.clip_cache import ensure_clip_features
    from helpers.data.video import clip_tensor
    from helpers.models.backbones import build_backbone

    torch.manual_seed(0)
    backbone = build_backbone("small").eval()
    items, _ = load_videos(tiny / "videodatainfo.json", tiny / "videos", "validate")
    path = tmp_path / "frames.pt"
    features = ensure_clip_features(path, backbone, "small", items, t=4, progress=False)
    assert features.shape == (6, 4, 512) and capsys.readouterr().out == ""
    by_hand = backbone(clip_tensor(read_clip(items[2].path, 4, size=56), 48)).flatten(1)
    assert torch.allclose(features[2], by_hand, atol=1e-5)
    again = ensure_clip_features(path, backbone, "small", items, t=4, progress=False)
    assert torch.equal(again, features) and capsys.readouterr().out == ""
    more = ensure_clip_features(path, backbone, "small", items, t=6, progress=False)
    assert more.shape == (6, 6, 512) and "stale (other views" in capsys.readouterr().out


def test_more_pairs_add_two_actor_clips_after_the_mixed_ones(tmp_path):
    from helpers.data.tiny_video import ANNOTATIONS

    plain = generate_tiny_video(tmp_path / "a", seed=4, n_train=6, n_val=3, progress=False)
    more = generate_tiny_video(
        tmp_path / "b", seed=4, n_train=6, n_val=3, train_pairs=4, val_pairs=2, progress=False
    )
    old = json.loads((plain / ANNOTATIONS).read_text())["videos"]
    new = json.loads((more / ANNOTATIONS).read_text())["videos"]
    for split, n, pairs in (("train", 6, 4), ("validate", 3, 2)):
        before = [v for v in old if v["split"] == split]
        after = [v for v in new if v["split"] == split]
        assert len(after) == n + pairs
        # The mixed clips show what they showed; the added ones show two actors each.
        assert [v["actions"] for v in after[:n]] == [v["actions"] for v in before]
        assert all(len(v["actions"]) == 2 for v in after[n:])
    train = [v for v in new if v["split"] == "train"]
    assert (more / "videos" / f"{train[0]['video_id']}.mp4").read_bytes() == (
        plain / "videos" / f"{train[0]['video_id']}.mp4"
    ).read_bytes()
