"""Sizes and kinds checked before the work, each in one line: sizes against what the backbone, the
clips and the memory can take; a checkpoint's kind against what a command does with it; course
flags against the notebooks; --quiet and an unwritable data_dir."""

from __future__ import annotations

import importlib
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import write_untrained_checkpoint

from helpers.caption.captioner import Captioner
from helpers.caption.video import VideoModel
from helpers.data.clip_cache import ensure_clip_features
from helpers.data.tiny_video import generate_tiny_video
from helpers.data.video import frame_count, load_videos
from helpers.data.vocabulary import Vocabulary, build_vocabulary
from helpers.errors import CourseError, run_cli
from helpers.models.backbones import SmallCNN
from helpers.models.checkpoint import model_kind
from helpers.train.config import TrainConfig, check_fits

ROOT = Path(__file__).resolve().parents[1]


@dataclass
class Ran:
    """What a command did: its exit code and what it printed."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def command(monkeypatch, capsys):
    """Run a course command in this process (no second start-up of torch), in a data_dir of its
    own; its --quiet is undone afterwards."""

    def run(*args: str, data_dir: Path) -> Ran:
        monkeypatch.setenv("COURSE_DATA_DIR", str(data_dir))
        monkeypatch.setenv("TQDM_DISABLE", "0")  # restored after the test, whatever --quiet set
        capsys.readouterr()
        main = importlib.import_module(f"{args[0]}.__main__").main
        with pytest.raises(SystemExit) as done:
            run_cli(main, list(args[1:]))
        out = capsys.readouterr()
        return Ran(done.value.code, out.out, out.err)

    return run


def one_line(run: Ran, starts: str) -> None:
    """The command failed with exit code 2 and one error line that starts as given."""
    assert run.returncode == 2, run.stderr
    assert run.stderr.strip().splitlines() == [run.stderr.strip()], run.stderr
    assert run.stderr.startswith(f"error: {starts}"), run.stderr


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (["--resize", "5", "--crop", "5"], "crop 5 is too small for the small backbone"),
        (["--crop", "12", "--resize", "20"], "crop 12 is too small for the small backbone"),
        (["--resize", "100000"], "resize 100000 makes images of 10,000,000,000 pixels"),
        (["--hidden-size", "100000000"], "embedding_size 128, hidden_size 100000000, batch_size"),
        (["--embedding-size", "3000000", "--batch-size", "2"], "embedding_size 3000000"),
    ],
)
def test_train_refuses_sizes_that_cannot_work_before_any_image_is_resized(
    small_coco, tmp_path, command, flags, says
):
    run = command(
        "helpers.train", "--dataset", str(small_coco), "--epochs", "1", "--quiet", *flags,
        data_dir=tmp_path,
    )  # fmt: skip
    one_line(run, says)
    assert not (tmp_path / "resized").exists()
    assert not (tmp_path / "checkpoints" / "small_coco-small" / "last.pt").exists()


def test_the_memory_check_counts_the_weights_and_their_training_state(monkeypatch):
    cfg = TrainConfig(hidden_size=1024, embedding_size=512)
    monkeypatch.setattr("helpers.train.config.available_memory", lambda device: 10 * 2**20)
    with pytest.raises(
        CourseError, match=r"need at least \d+\.\d MiB .* but cpu has 10\.0 MiB free"
    ):
        check_fits(cfg, 10_000)
    monkeypatch.setattr("helpers.train.config.available_memory", lambda device: 2**30)
    check_fits(cfg, 10_000)  # about 0.3 GiB: fits
    monkeypatch.setattr("helpers.train.config.available_memory", lambda device: None)
    check_fits(TrainConfig(hidden_size=100_000), 10)  # a system that does not say: not refused


@pytest.fixture(scope="module")
def words(small_coco) -> Vocabulary:
    return build_vocabulary(small_coco / "annotations" / "captions_train2014.json", 4, False)


def checkpoint(tmp_path: Path, words: Vocabulary, **changes) -> Path:
    """An untrained checkpoint whose config says what kind of model it is."""
    base = dict(embedding_size=16, hidden_size=16, resize=40, crop=32, pretrain_epochs=0)
    cfg = TrainConfig(**{**base, **changes})
    return write_untrained_checkpoint(tmp_path / "best.pt", cfg, words)


def test_caption_refuses_a_beam_wider_than_the_vocabulary(small_coco, words, tmp_path, command):
    path = checkpoint(tmp_path, words)
    image = next((small_coco / "val2014").iterdir())
    run = command(
        "helpers.caption", str(image), "--checkpoint", str(path), "--beam-size", "1000",
        data_dir=tmp_path,
    )  # fmt: skip
    one_line(run, f"beam size 1000 is larger than the vocabulary of {path} ({len(words)} words)")
    captioner = Captioner(path)
    assert len(captioner.caption([captioner_image(image)], beam_size=len(words))) == 1


def captioner_image(path: Path):
    from helpers.data.images import load_rgb

    return load_rgb(path)


@pytest.mark.parametrize(
    ("changes", "kind"),
    [
        ({"frames": 2}, "a video captioner of 2 frames"),
        ({"frames": 8, "motion": True}, "a video captioner of 8 frames and their motion"),
        ({"decoder": "lrcn", "frames": 4}, "an action classifier of video clips (LRCN)"),
    ],
)
def test_a_video_checkpoint_is_refused_for_images_naming_its_kind(
    small_coco, words, tmp_path, command, changes, kind
):
    path = checkpoint(tmp_path, words, **changes)
    with pytest.raises(CourseError, match=re.escape(f"is {kind}, which cannot caption single")):
        Captioner(path)
    image = next((small_coco / "val2014").iterdir())
    run = command("helpers.caption", str(image), "--checkpoint", str(path), data_dir=tmp_path)
    one_line(run, f"{path}: is {kind}")
    run = command(
        "helpers.evaluate", "--checkpoint", str(path), "--dataset", str(small_coco),
        data_dir=tmp_path,
    )  # fmt: skip
    one_line(run, f"{path}: is {kind}")
    assert VideoModel(path).config["frames"] == changes["frames"]  # videos it reads


def test_one_frame_models_caption_images_and_the_kinds_have_names(words, tmp_path):
    assert model_kind(TrainConfig().__dict__) == "an image captioner"
    assert model_kind(TrainConfig(decoder="attention").__dict__) == (
        "an image captioner with attention"
    )
    Captioner(checkpoint(tmp_path, words, frames=1))  # a video model of the middle frame


@pytest.mark.parametrize("name", ["captions.json", "notes.txt", "sub/weights.bin"])
def test_weights_that_are_no_weights_are_one_line(small_coco, tmp_path, command, name):
    path = tmp_path / name
    path.parent.mkdir(exist_ok=True)
    path.write_text('{"images": []}')
    run = command(
        "helpers.train", "--dataset", str(small_coco), "--weights", str(path), "--epochs", "1",
        "--quiet", data_dir=tmp_path,
    )  # fmt: skip
    one_line(run, f"{path}: not small weights (not a file that torch.save wrote)")


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> list:
    tiny = generate_tiny_video(
        tmp_path_factory.mktemp("v") / "tiny", seed=2, n_train=6, n_val=2, progress=False
    )
    items, _ = load_videos(tiny / "videodatainfo.json", tiny / "videos", "train")
    return items


def test_more_frames_than_any_clip_has_is_refused_before_decoding(clips, tmp_path, monkeypatch):
    longest = max(frame_count(item.path) for item in clips)
    monkeypatch.setattr(
        "helpers.data.clip_cache.read_clip", lambda *a, **k: pytest.fail("decoded a clip")
    )
    for t, motion, most in ((10_000, False, longest), (longest, True, longest - 1)):
        with pytest.raises(CourseError, match=f"frames {t}: the longest clip .* has {longest} "):
            ensure_clip_features(
                tmp_path / "c.pt", SmallCNN(4), "small", clips, t, 40, 32, False, motion
            )
        with pytest.raises(CourseError, match=f"choose frames of at most {most}$"):
            ensure_clip_features(
                tmp_path / "c.pt", SmallCNN(4), "small", clips, t, 40, 32, False, motion
            )


def test_clip_features_that_cannot_fit_in_memory_are_refused(clips, tmp_path, monkeypatch):
    monkeypatch.setattr("helpers.data.clip_cache.available_memory", lambda: 1000)
    with pytest.raises(
        CourseError, match=r"frames 4: the features of 6 clips need .* KiB, but 1,000 bytes is free"
    ):
        ensure_clip_features(tmp_path / "c.pt", SmallCNN(4), "small", clips, 4, 40, 32, False)


def test_quiet_training_on_an_empty_data_dir_prints_one_line(small_coco, tmp_path, command):
    run = command(
        "helpers.train", "--dataset", str(small_coco), "--epochs", "1", "--pretrain-epochs", "1",
        "--quiet", "--embedding-size", "16", "--hidden-size", "16", "--resize", "40",
        "--crop", "32", data_dir=tmp_path,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines() == [run.stdout.strip()]
    assert run.stdout.startswith("done: val loss") and run.stderr == ""


@pytest.mark.parametrize("name", ["tiny_coco", "tiny_video"])
def test_the_generated_sets_are_quiet_when_a_command_is(name, tmp_path, monkeypatch):
    module = importlib.import_module(f"helpers.data.{name}")
    asked = []
    monkeypatch.setattr(module, f"generate_{name}", lambda *a, **k: asked.append(k["progress"]))
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("TQDM_DISABLE", "1")  # what a command's --quiet sets
    getattr(module, f"ensure_{name}")()
    monkeypatch.setenv("TQDM_DISABLE", "")
    getattr(module, f"ensure_{name}")()
    assert asked == [False, True]


def test_a_data_dir_that_cannot_be_written_is_one_line(tmp_path, command):
    (tmp_path / "a_file").write_text("")
    run = command(
        "helpers.train", "--epochs", "1", "--quiet", data_dir=tmp_path / "a_file" / "data"
    )
    one_line(run, str(tmp_path / "a_file" / "data"))
    assert "cannot" in run.stderr
