"""Tokenizing, the Vocabulary (ids, encode/decode, JSON files), building it, its CLI, captions files."""

from __future__ import annotations

import json
import pickle
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import nltk
import pytest

import helpers.data.vocabulary
from helpers.data.annotations import coco_index, load_captions
from helpers.data.vocabulary import (
    SPECIALS,
    Vocabulary,
    build_vocabulary,
    count_words,
    ensure_vocabulary,
    main,
    tokenize,
    vocabulary_path,
)
from helpers.errors import CourseError
from helpers.files import file_digest

# Hand-made captions with known counts: "a" 7; ".", "cat", "dog" 4; "red" 2; five words once.
CAPTIONS = [
    "A dog.",
    "a DOG and a cat.",
    "  A red cat  ",
    "A dog, a red cat.",
    "a cat runs after the dog.",
]


def write_captions(path: Path, captions: list[str]) -> Path:
    """A minimal COCO captions file: one image per caption."""
    images = [
        {"id": i, "file_name": f"{i}.jpg", "width": 8, "height": 8} for i in range(len(captions))
    ]
    anns = [{"id": 100 + i, "image_id": i, "caption": c} for i, c in enumerate(captions)]
    path.write_text(json.dumps({"images": images, "annotations": anns}), encoding="utf-8")
    return path


@pytest.fixture
def captions_file(tmp_path) -> Path:
    return write_captions(tmp_path / "captions.json", CAPTIONS)


@pytest.fixture
def vocab(captions_file) -> Vocabulary:
    return build_vocabulary(captions_file, threshold=2, progress=False)


def assert_one_line_naming(err: pytest.ExceptionInfo, path: Path) -> None:
    message = str(err.value)
    assert "\n" not in message
    assert str(path) in message


# --- tokenize ---------------------------------------------------------------------------------


def test_tokenize_lower_cases_and_splits_punctuation():
    assert tokenize("A Man's DOG, on a sofa.") == [
        "a",
        "man",
        "'s",
        "dog",
        ",",
        "on",
        "a",
        "sofa",
        ".",
    ]


def test_tokenize_ignores_leading_and_trailing_spaces():
    assert tokenize("  A red cat.  \n") == ["a", "red", "cat", "."]
    assert tokenize("   ") == []


def test_tokenize_splits_a_period_between_two_sentences():
    assert tokenize("A dog. A cat.") == ["a", "dog", ".", "a", "cat", "."]
    assert tokenize("about 3.5 meters.") == ["about", "3.5", "meters", "."]


def test_tokenize_needs_no_punkt_data(monkeypatch, tmp_path):
    # With an empty NLTK data path, anything that needs the Punkt model raises LookupError.
    monkeypatch.setattr(nltk.data, "path", [str(tmp_path)])
    monkeypatch.setenv("NLTK_DATA", str(tmp_path))
    assert tokenize("Two dogs. One cat.") == ["two", "dogs", ".", "one", "cat", "."]


# --- Vocabulary ---------------------------------------------------------------------------------


def test_ids_0_to_3_are_the_special_words():
    vocab = Vocabulary(["dog"])
    assert [vocab(w) for w in ("<pad>", "<start>", "<end>", "<unk>")] == [0, 1, 2, 3]
    assert vocab.id_to_word[:4] == list(SPECIALS)
    assert vocab("dog") == 4 and len(vocab) == 5


def test_count_words_counts_every_token(captions_file):
    counts = count_words(captions_file, progress=False)
    assert counts == Counter(
        {
            "a": 7,
            ".": 4,
            "dog": 4,
            "cat": 4,
            "red": 2,
            "and": 1,
            ",": 1,
            "runs": 1,
            "after": 1,
            "the": 1,
        }
    )


def test_threshold_drops_rare_words(captions_file):
    words = lambda t: build_vocabulary(captions_file, threshold=t, progress=False).id_to_word[4:]  # noqa: E731
    assert words(1) == ["a", ".", "cat", "dog", "red", ",", "after", "and", "runs", "the"]
    assert words(2) == ["a", ".", "cat", "dog", "red"]
    assert words(4) == ["a", ".", "cat", "dog"]
    assert words(5) == ["a"]
    assert words(8) == []


def test_most_frequent_first_ties_alphabetical(vocab):
    # "." "cat" and "dog" all occur 4 times: they follow "a" (7) in alphabetical order.
    assert vocab.id_to_word[4:] == ["a", ".", "cat", "dog", "red"]
    assert vocab.counts["runs"] == 1  # counts keep the dropped words too


def test_encode_wraps_with_start_and_end(vocab):
    assert vocab.encode("A red dog.") == [1, vocab("a"), vocab("red"), vocab("dog"), vocab("."), 2]
    assert vocab.encode("") == [1, 2]


def test_unknown_words_become_unk(vocab):
    assert vocab.encode("giraffes eat leaves") == [1, 3, 3, 3, 2]
    assert vocab.encode("A giraffe runs") == [1, vocab("a"), 3, 3, 2]  # "runs" was dropped
    assert "giraffe" not in vocab and "dog" in vocab


def test_decode_stops_at_end_and_skips_start_and_pad(vocab):
    a, dog = vocab("a"), vocab("dog")
    assert vocab.decode([1, a, 0, dog, 2, a, a, 0]) == ["a", "dog"]
    assert vocab.decode([a, 3]) == ["a", "<unk>"]
    assert vocab.decode(vocab.encode("a red cat.")) == ["a", "red", "cat", "."]


def test_save_load_round_trip_is_json_not_pickle(vocab, tmp_path):
    path = tmp_path / "sub" / "vocab.json"
    vocab.save(path)
    loaded = Vocabulary.load(path)
    assert loaded.word_to_id == vocab.word_to_id
    assert loaded.id_to_word == vocab.id_to_word
    assert loaded.counts == vocab.counts
    data = json.loads(path.read_text(encoding="utf-8"))
    assert data["word_to_id"]["<unk>"] == 3
    with pytest.raises(pickle.UnpicklingError):
        pickle.loads(path.read_bytes())
    assert [p.name for p in path.parent.iterdir()] == ["vocab.json"]  # no temporary file left


def good_mapping(**extra: int) -> dict:
    return {"<pad>": 0, "<start>": 1, "<end>": 2, "<unk>": 3, **extra}


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "not a vocabulary file"),
        (json.dumps({"words": ["a"]}), "not a vocabulary file"),
        (json.dumps({"word_to_id": {**good_mapping(), "a": "4"}}), "not a vocabulary file"),
        (json.dumps({"word_to_id": good_mapping(a=4, b=4)}), "duplicate ids"),
        (json.dumps({"word_to_id": good_mapping(a=5)}), "without gaps"),
        (
            json.dumps({"word_to_id": {"<start>": 0, "<pad>": 1, "<end>": 2, "<unk>": 3}}),
            "must be <pad>",
        ),
        (json.dumps({"word_to_id": {"a": 0, "b": 1}}), "must be <pad>"),
        (json.dumps({"word_to_id": good_mapping(a=4), "counts": [1, 2]}), "'counts'"),
        (json.dumps({"word_to_id": good_mapping(a=4), "counts": {"a": "many"}}), "'counts'"),
    ],
)
def test_bad_vocabulary_files_give_one_line_naming_the_file(tmp_path, content, problem):
    path = tmp_path / "vocab.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CourseError, match=problem) as err:
        Vocabulary.load(path)
    assert_one_line_naming(err, path)


def test_missing_vocabulary_file(tmp_path):
    with pytest.raises(CourseError, match="vocabulary file not found") as err:
        Vocabulary.load(tmp_path / "nope.json")
    assert_one_line_naming(err, tmp_path / "nope.json")


# --- captions files (helpers.annotations), through build_vocabulary ----------------------------


def test_missing_annotations_file(tmp_path):
    path = tmp_path / "captions_train2014.json"
    with pytest.raises(CourseError, match="captions file not found") as err:
        build_vocabulary(path, progress=False)
    assert_one_line_naming(err, path)


def test_instances_file_is_not_a_captions_file(tmp_path):
    path = tmp_path / "instances_train2014.json"
    data = {
        "images": [{"id": 1, "file_name": "1.jpg"}],
        "annotations": [{"id": 5, "image_id": 1, "bbox": [0, 0, 4, 4], "category_id": 3}],
    }
    path.write_text(json.dumps(data))
    with pytest.raises(CourseError, match="instances") as err:
        build_vocabulary(path, progress=False)
    assert_one_line_naming(err, path)


@pytest.mark.parametrize(
    "content", [{"annotations": []}, [1, 2], {"images": [], "annotations": {}}]
)
def test_non_coco_json_is_refused(tmp_path, content):
    path = tmp_path / "other.json"
    path.write_text(json.dumps(content))
    with pytest.raises(CourseError, match="not a COCO captions file") as err:
        build_vocabulary(path, progress=False)
    assert_one_line_naming(err, path)


@pytest.mark.parametrize("caption", ["", "   \t "])
def test_empty_caption_is_refused(tmp_path, caption):
    path = write_captions(tmp_path / "captions.json", ["a dog.", caption])
    with pytest.raises(CourseError, match="annotation 101 .* empty caption") as err:
        build_vocabulary(path, progress=False)
    assert_one_line_naming(err, path)


def test_caption_of_an_unknown_image_is_refused(tmp_path):
    path = write_captions(tmp_path / "captions.json", ["a dog."])
    data = json.loads(path.read_text())
    data["annotations"][0]["image_id"] = 42
    path.write_text(json.dumps(data))
    with pytest.raises(CourseError, match="image 42") as err:
        load_captions(path)
    assert_one_line_naming(err, path)


def test_coco_index_answers_queries_without_chatter(captions_file, capsys):
    coco = coco_index(captions_file)
    assert capsys.readouterr().out == ""  # pycocotools prints "creating index..." otherwise
    assert sorted(coco.getImgIds()) == [0, 1, 2, 3, 4]
    assert [a["caption"] for a in coco.loadAnns(coco.getAnnIds(imgIds=2))] == ["  A red cat  "]
    assert coco.loadImgs(4)[0]["file_name"] == "4.jpg"


def test_coco_index_checks_the_file(tmp_path):
    path = write_captions(tmp_path / "captions.json", ["a dog.", " "])
    with pytest.raises(CourseError, match="empty caption") as err:
        coco_index(path)
    assert_one_line_naming(err, path)


def test_coco_index_of_the_small_tiny_coco(small_coco):
    coco = coco_index(small_coco / "annotations" / "captions_train2014.json")
    assert len(coco.getImgIds()) == 60
    assert all(len(coco.getAnnIds(imgIds=i)) == 5 for i in coco.getImgIds())


# --- command line ------------------------------------------------------------------------------


def test_cli_writes_a_vocabulary(captions_file, tmp_path, capsys):
    out = tmp_path / "out" / "vocab.json"
    assert main(["--annotations", str(captions_file), "--threshold", "4", "--out", str(out)]) == 0
    assert Vocabulary.load(out).id_to_word[4:] == ["a", ".", "cat", "dog"]
    assert "8 words (threshold 4)" in capsys.readouterr().out


def test_cli_bad_path_is_one_line_without_traceback(tmp_path):
    missing = tmp_path / "missing.json"
    command = [sys.executable, "-m", "helpers.data.vocabulary", "--annotations", str(missing)]
    command += ["--out", str(tmp_path / "v.json")]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [f"error: {missing}: captions file not found"]
    assert not (tmp_path / "v.json").exists()


# --- ensure_vocabulary -------------------------------------------------------------------------


def test_ensure_vocabulary_builds_once_then_loads(small_coco, monkeypatch, tmp_path):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    path = vocabulary_path(small_coco, 4)
    assert path.parent == tmp_path and not path.exists()
    built = ensure_vocabulary(small_coco, 4)
    assert path.is_file() and "circle" in built

    def no_rebuild(*args, **kwargs):
        raise AssertionError("the vocabulary was built again")

    monkeypatch.setattr(helpers.data.vocabulary, "build_vocabulary", no_rebuild)
    loaded = ensure_vocabulary(small_coco, 4)
    assert loaded.word_to_id == built.word_to_id
    with pytest.raises(AssertionError, match="built again"):
        ensure_vocabulary(small_coco, 5)  # another threshold is another file


def test_vocabulary_paths_of_folders_do_not_clash(small_coco, tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    other = tmp_path / "elsewhere" / small_coco.name
    assert small_coco.name == "tiny"  # the fixture's folder has the name of the built-in dataset
    assert vocabulary_path("tiny", 4) == tmp_path / "vocab_tiny_t4.json"
    assert (
        len({vocabulary_path("tiny", 4), vocabulary_path(small_coco, 4), vocabulary_path(other, 4)})
        == 3
    )
    assert vocabulary_path(small_coco, 4) == vocabulary_path(str(small_coco), 4)


# --- real COCO captions ------------------------------------------------------------------------


def test_real_coco_captions(coco_sample):
    annotations = coco_sample / "captions.json"
    vocab = build_vocabulary(annotations, threshold=4, progress=False)
    assert {"a", "man", "on", "of", "with"} <= set(vocab.word_to_id)
    assert all(w == w.strip() and w for w in vocab.word_to_id)
    assert all(w == w.strip() and w for w in vocab.counts)
    captions = [a["caption"] for a in load_captions(annotations)["annotations"]]
    assert any(c != c.strip() for c in captions)  # the sample has captions with stray spaces
    for caption in captions:
        ids = vocab.encode(caption)
        assert ids[0] == 1 and ids[-1] == 2 and all(0 <= i < len(vocab) for i in ids)
        words = vocab.decode(ids)
        assert len(words) == len(tokenize(caption))
        assert all(w == t or w == "<unk>" for w, t in zip(words, tokenize(caption), strict=True))


def test_ensure_vocabulary_rebuilds_when_the_captions_change(small_coco, tmp_path, monkeypatch):
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    root = tmp_path / "copy"
    shutil.copytree(small_coco, root)
    assert "zebra" not in ensure_vocabulary(root, 1)
    ann = root / "annotations" / "captions_train2014.json"
    data = json.loads(ann.read_text())
    data["annotations"][0]["caption"] = "A zebra."
    ann.write_text(json.dumps(data))
    assert "zebra" in ensure_vocabulary(root, 1)  # a stale vocabulary is never used silently


def test_a_saved_build_is_reused_without_a_rebuild_notice(
    small_coco, tmp_path, monkeypatch, capsys
):
    # Notebook 03 builds and saves a vocabulary by hand; ensure_vocabulary must then take it as is.
    monkeypatch.setenv("COURSE_DATA_DIR", str(tmp_path))
    annotations = small_coco / "annotations" / "captions_train2014.json"
    built = build_vocabulary(annotations, 4, progress=False)
    assert built.source_sha256 == file_digest(annotations)
    built.save(vocabulary_path(small_coco, 4))
    assert Vocabulary.load(vocabulary_path(small_coco, 4)).source_sha256 == built.source_sha256
    capsys.readouterr()
    monkeypatch.setattr(helpers.data.vocabulary, "build_vocabulary", None)  # a rebuild would fail
    assert ensure_vocabulary(small_coco, 4).word_to_id == built.word_to_id
    assert capsys.readouterr().out == ""
