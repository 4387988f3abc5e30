"""Videos as phones record them: H.264 with B-frames, a rotation tag, a variable frame rate, an
audio track, 1080p and minutes-long clips. Each is written here with PyAV, then read as training
and captioning read clips: the right frames, upright, in bounded time and memory."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from helpers.data.video import frame_indices, read_clip


def gray(i: int, n: int) -> int:
    """The grey level of frame i of n: each frame says which it is, and survives compression."""
    return round(20 + 200 * i / max(1, n - 1))


def write_clip(
    path: Path,
    n: int,
    size: tuple[int, int] = (64, 48),
    fps: int = 25,
    rotation: int = 0,
    times_ms: list[int] | None = None,
    audio: bool = False,
    keyint: int = 250,
    picture=None,
) -> Path:
    """An H.264 clip of n frames (x264's default B-frames), frame i a flat grey(i) unless
    `picture(i)` draws it; with a display rotation, millisecond times (a variable rate), AAC."""
    width, height = size
    with av.open(str(path), "w") as container:
        options = {"preset": "veryfast", "bf": "3", "g": str(keyint), "threads": "1"}
        video = container.add_stream("libx264", rate=fps, options=options)
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        if times_ms is not None:
            video.codec_context.time_base = Fraction(1, 1000)
        if rotation:
            video.set_display_rotation(rotation)
        sound = container.add_stream("aac", rate=16000) if audio else None
        for i in range(n):
            pixels = picture(i) if picture else np.full((height, width, 3), gray(i, n), np.uint8)
            frame = av.VideoFrame.from_ndarray(pixels, format="rgb24")
            if times_ms is not None:
                frame.pts, frame.time_base = times_ms[i], Fraction(1, 1000)
            for packet in video.encode(frame):
                container.mux(packet)
            if sound is not None:
                samples = np.zeros((1, 640), np.float32)
                chunk = av.AudioFrame.from_ndarray(samples, format="fltp", layout="mono")
                chunk.sample_rate = 16000
                for packet in sound.encode(chunk):
                    container.mux(packet)
        for stream in (video, sound):
            if stream is not None:
                for packet in stream.encode():
                    container.mux(packet)
    return path


def assert_frames(clip, n: int, t: int) -> None:
    """The clip holds the T evenly spread frames of n, in the order they are shown."""
    assert clip.n_frames == n and clip.indices == frame_indices(n, t)
    levels = [round(float(frame.mean())) for frame in clip.frames]
    assert all(abs(level - gray(i, n)) <= 4 for level, i in zip(levels, clip.indices, strict=True))


def test_b_frames_are_read_in_the_order_they_are_shown(tmp_path):
    path = write_clip(tmp_path / "b.mp4", 48)
    with av.open(str(path)) as container:
        packets = [p for p in container.demux(video=0) if p.size]
    assert any(p.dts < p.pts for p in packets)  # stored out of order: there are B-frames
    assert_frames(read_clip(path, 8), 48, 8)


def test_a_portrait_phone_clip_is_turned_upright(tmp_path):
    upright = np.zeros((64, 32, 3), np.uint8)
    upright[:32] = (220, 30, 30)  # red above, blue below, as the person holding the phone saw it
    upright[32:] = (30, 30, 220)
    stored = np.asarray(Image.fromarray(upright).rotate(90, expand=True))  # the sensor's side-on
    path = write_clip(tmp_path / "p.mp4", 10, (64, 32), rotation=-90, picture=lambda i: stored)
    clip = read_clip(path, 3)
    assert clip.rotation == -90 and clip.frames.shape == (3, 64, 32, 3)
    top, bottom = clip.frames[:, :24].mean(axis=(0, 1, 2)), clip.frames[:, 40:].mean(axis=(0, 1, 2))
    assert top[0] > 150 > top[2] and bottom[2] > 150 > bottom[0]
    assert read_clip(path, 3, size=56).frames.shape == (3, 56, 56, 3)


def test_a_variable_frame_rate_is_sampled_by_frame(tmp_path):
    steps = [33, 66, 20, 100, 33, 250, 16] * 6  # a phone's frame rate drops in the dark
    times = list(np.cumsum([0, *steps[:39]]))
    path = write_clip(tmp_path / "v.mp4", 40, times_ms=[int(t) for t in times])
    assert_frames(read_clip(path, 8), 40, 8)


def test_an_audio_track_is_ignored(tmp_path):
    path = write_clip(tmp_path / "a.mp4", 30, audio=True)
    with av.open(str(path)) as container:
        assert container.streams.audio and container.streams.video
    assert_frames(read_clip(path, 8), 30, 8)


def test_a_1080p_clip_is_read_a_frame_at_a_time(tmp_path):
    path = write_clip(tmp_path / "hd.mp4", 12, (1920, 1080))
    clip = read_clip(path, 4, size=56)
    assert clip.frames.shape == (4, 56, 56, 3)  # only the small copies are kept
    assert_frames(clip, 12, 4)


def test_a_clip_of_minutes_decodes_a_few_frames_per_frame_kept(tmp_path):
    n = 10 * 180  # three minutes at 10 frames a second
    path = write_clip(tmp_path / "long.mp4", n, (32, 24), fps=10, keyint=50)
    clip = read_clip(path, 8)
    assert_frames(clip, n, 8)
    assert clip.decoded <= 8 * 50 + 8  # at most one group of pictures per frame kept
    assert clip.decoded < n / 4


@pytest.mark.parametrize("t", [1, 8, 20])
def test_seeking_gives_the_frames_reading_in_order_gives(tmp_path, t, monkeypatch):
    path = write_clip(tmp_path / "c.mp4", 16, keyint=5)
    sought = read_clip(path, t)
    monkeypatch.setattr("helpers.data.video._frame_times", lambda p: ([], []))
    in_order = read_clip(path, t)  # the reader's fallback for untimed packets: from the start
    assert np.array_equal(sought.frames, in_order.frames) and sought.indices == in_order.indices
    if t == 1:  # the middle frame: from the keyframe before it, not from the first frame
        assert sought.decoded < in_order.decoded
