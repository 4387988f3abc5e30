"""Reading video clips with PyAV: T frames sampled evenly, one decoded frame in memory at a time;
MSR-VTT-layout annotations (a `videos` list and a `sentences` list), checked once; and a clip's
frames as the CNN takes them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from helpers.data.images import MEAN, STD
from helpers.errors import CourseError
from helpers.files import read_json

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".webm", ".mov")


def _open(path: Path):
    """The file opened by PyAV and its first video stream; one-line errors for what is not a video."""
    import av

    if not path.is_file():
        raise CourseError(f"{path}: video file not found")
    try:
        container = av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as err:
        raise CourseError(f"{path}: not a readable video ({_first_line(err)})") from None
    if not container.streams.video:
        kinds = ", ".join(sorted({s.type for s in container.streams})) or "nothing"
        container.close()
        raise CourseError(f"{path}: has no video stream (it holds {kinds})")
    return container, container.streams.video[0]


def _first_line(err: Exception) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:120]


def count_frames(path: str | os.PathLike) -> int:
    """The number of frames in a video, counted from its packets (demuxed, not decoded)."""
    import av

    path = Path(path)
    container, stream = _open(path)
    try:
        return sum(1 for packet in container.demux(stream) if packet.size > 0)
    except av.error.FFmpegError as err:
        raise CourseError(f"{path}: damaged video ({_first_line(err)})") from None
    finally:
        container.close()


def frame_count(path: str | os.PathLike) -> int:
    """The number of frames in a video: from its header where it says, else counted."""
    container, stream = _open(Path(path))
    with container:
        if stream.frames > 0:
            return stream.frames
    return count_frames(path)


def frame_indices(n_frames: int, t: int) -> list[int]:
    """T frame numbers spread evenly over n frames (each the middle of its T-th of the clip).

    A clip shorter than T frames repeats some of its frames, in order: the model always gets T.
    """
    if n_frames < 1:
        raise ValueError("a clip needs at least one frame")
    return [min(n_frames - 1, int((k + 0.5) * n_frames / t)) for k in range(t)]


@dataclass
class Clip:
    """T frames of a video as uint8 (T, H, W, 3), upright, and how they were picked."""

    frames: np.ndarray
    n_frames: int  # frames in the file
    indices: list[int] = field(default_factory=list)  # which of them, in order
    decoded: int = 0  # frames decoded to get them: a few per frame kept, not the whole clip
    rotation: int = 0  # degrees the file asked its frames to be turned to stand upright

    @property
    def repeated(self) -> int:
        """How many of the T frames repeat the one before (the clip had fewer than T)."""
        return sum(a == b for a, b in zip(self.indices, self.indices[1:], strict=False))


def _frame_times(path: Path) -> tuple[list[int], list[int]]:
    """Every frame's presentation time and the keyframes' times, from the packets (nothing
    decoded), both sorted; empty if the file does not time its packets."""
    import av

    container, stream = _open(path)
    times, keys = [], []
    try:
        for packet in container.demux(stream):
            if packet.size == 0:
                continue
            if packet.pts is None:
                return [], []
            times.append(packet.pts)
            if packet.is_keyframe:
                keys.append(packet.pts)
    except av.error.FFmpegError as err:
        raise CourseError(f"{path}: damaged video ({_first_line(err)})") from None
    finally:
        container.close()
    return sorted(times), sorted(keys)


def _picture(frame, size: int | None) -> np.ndarray:
    """A decoded frame as upright RGB (turned as the file's display matrix says), resized."""
    img = frame.to_image()
    if frame.rotation:  # a phone held upright stores its frames on their side, with a rotation
        img = img.rotate(frame.rotation, expand=True)
    if size is not None:
        img = img.resize((size, size), Image.BILINEAR)
    return np.asarray(img.convert("RGB"))


def read_clip(path: str | os.PathLike, t: int = 8, size: int | None = None) -> Clip:
    """T frames sampled evenly across a video, upright, each resized to size x size if given.

    The packets are read (not decoded) to time every frame; then for each chosen frame the reader
    seeks to the keyframe before it and decodes from there, one frame at a time, keeping only the
    chosen ones (resized at once). So a long clip costs a few groups of pictures per frame kept,
    and a large one the memory of one decoded frame plus T small ones. B-frames, variable frame
    rates and audio tracks change nothing: frames are counted in the order they are shown.
    """
    import av

    path = Path(path)
    if t < 1:
        raise CourseError(f"{path}: T must be at least 1 frame, got {t}")
    times, keys = _frame_times(path)
    n = len(times) if times else count_frames(path)
    if n == 0:
        raise CourseError(f"{path}: the video stream has no frames")
    wanted = frame_indices(n, t)
    keep: dict[int, np.ndarray] = {}
    decoded, rotation = 0, 0
    container, stream = _open(path)
    stream.thread_type = "AUTO"
    try:
        if not times:  # untimed packets: decode in order from the start, as shown
            for i, frame in enumerate(container.decode(stream)):
                decoded += 1
                if i > wanted[-1]:
                    break
                if i in wanted:
                    keep[i], rotation = _picture(frame, size), frame.rotation
        else:
            at, frames = None, None  # the time of the last frame decoded; the decoding
            for i in sorted(set(wanted)):
                target = times[i]
                key = max((k for k in keys if k <= target), default=times[0])
                if frames is None or at is None or at < key:  # behind its keyframe: jump there
                    container.seek(key, backward=True, any_frame=False, stream=stream)
                    frames = container.decode(stream)
                # The same generator goes on from where the last frame was kept: no frame lost.
                for frame in frames:
                    decoded += 1
                    at = frame.pts
                    if frame.pts is not None and frame.pts >= target:
                        keep[i], rotation = _picture(frame, size), frame.rotation
                        break
    except av.error.FFmpegError as err:
        raise CourseError(f"{path}: damaged video ({_first_line(err)})") from None
    finally:
        container.close()
    missing = [i for i in wanted if i not in keep]
    if missing:  # fewer frames decoded than packets counted: a truncated file
        got = len(keep) and max(keep) + 1
        raise CourseError(f"{path}: damaged video (decoded {got} of {n} frames)")
    return Clip(np.stack([keep[i] for i in wanted]), n, wanted, decoded, rotation)


@dataclass
class VideoItem:
    """One video of an annotation file: its file, captions and (tiny video set) action labels."""

    video_id: str
    path: Path
    split: str
    captions: list[str]
    actions: list[dict] = field(default_factory=list)


def _read_annotations(annotations: Path) -> tuple[list[dict], dict[str, list[str]]]:
    """An MSR-VTT-layout file's video entries and each video's captions, checked once."""
    data = read_json(annotations, "video annotations file")
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("videos"), list)
        or not isinstance(data.get("sentences"), list)
    ):
        raise CourseError(
            f"{annotations}: not an MSR-VTT annotations file (needs 'videos' and 'sentences' lists)"
        )
    captions: dict[str, list[str]] = {}
    for s in data["sentences"]:
        if not isinstance(s, dict) or not isinstance(s.get("caption"), str) or "video_id" not in s:
            raise CourseError(f"{annotations}: a sentence lacks 'video_id' or 'caption'")
        captions.setdefault(s["video_id"], []).append(s["caption"])
    for v in data["videos"]:
        if not isinstance(v, dict) or "video_id" not in v:
            raise CourseError(f"{annotations}: a video entry lacks 'video_id'")
    return data["videos"], captions


def split_captions(annotations: str | os.PathLike, split: str) -> list[str]:
    """Every caption of the videos of one split (what its vocabulary is built from)."""
    videos, captions = _read_annotations(Path(annotations))
    return [c for v in videos if v.get("split") == split for c in captions.get(v["video_id"], [])]


def load_videos(
    annotations: str | os.PathLike, videos: str | os.PathLike, split: str | None = None
) -> tuple[list[VideoItem], list[str]]:
    """The videos of an MSR-VTT-layout file (optionally one split) whose files exist, with their
    captions; and one line for each video left out (no file, or no caption)."""
    annotations, videos = Path(annotations), Path(videos)
    entries, captions = _read_annotations(annotations)
    items, skipped = [], []
    for v in entries:
        if split is not None and v.get("split") != split:
            continue
        video_id = v["video_id"]
        path = next(
            (
                videos / f"{video_id}{s}"
                for s in VIDEO_SUFFIXES
                if (videos / f"{video_id}{s}").is_file()
            ),
            None,
        )
        if path is None:
            skipped.append(f"{video_id}: no video file in {videos}")
        elif not captions.get(video_id):
            skipped.append(f"{video_id}: no caption in {annotations.name}")
        else:
            items.append(
                VideoItem(
                    video_id, path, v.get("split", ""), captions[video_id], v.get("actions", [])
                )
            )
    return items, skipped


def action_label(item: VideoItem) -> str | None:
    """The clip's action when it has exactly one actor (LRCN gives one label per clip), else None."""
    if len(item.actions) == 1 and isinstance(item.actions[0].get("action"), str):
        return item.actions[0]["action"]
    return None


def clip_tensor(clip: Clip, crop: int) -> torch.Tensor:
    """A clip's frames as the CNN takes them: (T, 3, crop, crop), centre-cropped and normalised."""
    frames = torch.from_numpy(clip.frames).permute(0, 3, 1, 2).float() / 255
    top = round((frames.shape[-2] - crop) / 2)  # as torchvision's CenterCrop
    left = round((frames.shape[-1] - crop) / 2)
    frames = frames[:, :, top : top + crop, left : left + crop]
    mean, std = torch.tensor(MEAN).view(1, 3, 1, 1), torch.tensor(STD).view(1, 3, 1, 1)
    return (frames - mean) / std


def frames_to_read(t: int, motion: bool) -> int:
    """Frames sampled from a clip for T steps: one more with motion, for the first difference."""
    return t + 1 if motion else t
