"""The COCO caption metrics: pycocoevalcap's numbers, results-file checks, the no-Java path, SPICE."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading

import pytest
from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider
from pycocoevalcap.rouge.rouge import Rouge
from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

from helpers.data.annotations import load_captions
from helpers.errors import CourseError
from helpers.evaluate import metrics
from helpers.evaluate.metrics import (
    metrics_table,
    ptb_tokenize,
    python_tokenize,
    score_captions,
    spice_missing,
)
from helpers.evaluate.references import evaluate_results, human_agreement

needs_java = pytest.mark.skipif(
    shutil.which("java") is None, reason="Java not installed (the PTB tokenizer and METEOR need it)"
)

REFS = {
    1: ["A dog runs on the grass.", "A brown dog is running.", "The dog running in a field"],
    2: ["Two cats sleep on a sofa.", "A pair of cats sleeping on the couch.", "Cats on a sofa"],
    3: ["A man rides a red bike.", "Someone riding a bicycle down the street.", "A man's bicycle"],
}
CANDS = {1: "A dog running on grass.", 2: "two cats on a couch", 3: "A man riding a red bike"}
BLEU_ROUGE_CIDER = {"Bleu_1", "Bleu_2", "Bleu_3", "Bleu_4", "ROUGE_L", "CIDEr"}


@pytest.fixture
def annotations(tmp_path):
    """A COCO captions file of REFS."""
    anns = [
        {"id": 10 * i + k, "image_id": i, "caption": c}
        for i, caps in REFS.items()
        for k, c in enumerate(caps)
    ]
    data = {"images": [{"id": i, "file_name": f"{i}.jpg"} for i in REFS], "annotations": anns}
    path = tmp_path / "captions_val2014.json"
    path.write_text(json.dumps(data))
    return path


def official_scores(gts: dict, res: dict) -> dict[str, float]:
    """BLEU, ROUGE-L and CIDEr straight from pycocoevalcap's scorers."""
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    out = {f"Bleu_{n + 1}": bleu[n] for n in range(4)}
    out["ROUGE_L"] = Rouge().compute_score(gts, res)[0]
    out["CIDEr"] = Cider().compute_score(gts, res)[0]
    return out


@needs_java
def test_scores_are_pycocoevalcaps_own():
    report = score_captions(REFS, CANDS, per_image=True)
    gts = PTBTokenizer().tokenize({i: [{"caption": c} for c in refs] for i, refs in REFS.items()})
    res = PTBTokenizer().tokenize({i: [{"caption": c}] for i, c in CANDS.items()})
    expected = official_scores(gts, res)
    # The same pycocoevalcap Meteor object (its JVM is slow to start), called directly.
    expected["METEOR"] = metrics._meteor.compute_score(gts, res)[0]
    assert report.official and report.tokenizer == "PTB"
    assert set(report.scores) == set(expected)
    for name, value in expected.items():
        assert report.scores[name] == pytest.approx(value, abs=1e-9), name
    cider_each = Cider().compute_score(gts, res)[1]
    assert [report.per_image[i]["CIDEr"] for i in (1, 2, 3)] == pytest.approx(list(cider_each))
    assert report.n_images == 3


@needs_java
def test_ptb_tokenize_is_pycocoevalcaps_tokenizer_and_keeps_lines_apart():
    captions = ["A man's dog doesn't run -- fast!", "Two cats; 50% of a sofa...", "café (left)"]
    theirs = PTBTokenizer().tokenize({i: [{"caption": c}] for i, c in enumerate(captions)})
    assert ptb_tokenize(captions) == [theirs[i][0] for i in range(3)]
    # A line break inside a caption must not shift the captions after it.
    assert ptb_tokenize(["a dog\nrunning\r\nfast", "a cat\u2028sleeping", "end."]) == [
        "a dog running fast",
        "a cat sleeping",
        "end",
    ]


@needs_java
def test_python_tokenizer_agrees_with_ptb_on_ordinary_captions(small_coco):
    data = load_captions(small_coco / "annotations" / "captions_val2014.json")
    captions = [a["caption"] for a in data["annotations"]]
    captions += ["A man's dog doesn't run.", "Two cats, a dog; and a t-shirt!", "It is 3.5 m tall"]
    assert [python_tokenize(c) for c in captions] == ptb_tokenize(captions)


@pytest.mark.parametrize("java", [None, False], ids=["official", "no-java"])
def test_perfect_captions_score_bleu4_one(java):
    if java is None and shutil.which("java") is None:
        pytest.skip("Java not installed")
    refs = {i: [caps[0]] * 3 for i, caps in REFS.items()}
    report = score_captions(refs, {i: caps[0] for i, caps in refs.items()}, use_java=java)
    assert report.scores["Bleu_4"] == pytest.approx(1.0, abs=1e-6)
    assert report.scores["ROUGE_L"] == pytest.approx(1.0)
    assert report.scores["CIDEr"] > 0
    if java is None:
        assert report.scores["METEOR"] > 0.9


@pytest.mark.parametrize(
    "content, says",
    [
        ('[{"image_id": 1, "caption": "a dog"', "not valid JSON"),
        ('{"image_id": 1, "caption": "a dog"}', "not a COCO results file"),
        ('[{"image_id": 1}]', 'entry 0 is not an {"image_id", "caption"} object'),
        ('[{"image_id": 99, "caption": "a dog"}]', "image id 99 is not in captions_val2014.json"),
        ('[{"image_id": "1", "caption": "a dog"}]', "image id '1' is not in captions_val2014.json"),
        (
            '[{"image_id": 2, "caption": "a cat"}, {"image_id": 1, "caption": " "}]',
            "entry 1 (image 1) has an empty caption",
        ),
        (
            '[{"image_id": 1, "caption": "a"}, {"image_id": 1, "caption": "b"}]',
            "image 1 has two captions (entries 0 and 1)",
        ),
        ("[]", "no captions"),
    ],
)
def test_bad_results_file_is_a_one_line_error(annotations, tmp_path, content, says):
    path = tmp_path / "my_results.json"
    path.write_text(content)
    with pytest.raises(CourseError) as err:
        evaluate_results(annotations, path)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith(str(path)) and says in message


def test_without_java_metrics_are_unofficial_and_meteor_is_skipped(
    annotations, tmp_path, monkeypatch
):
    monkeypatch.setattr(metrics, "find_java", lambda: None)
    results = tmp_path / "results.json"
    results.write_text(json.dumps([{"image_id": i, "caption": c} for i, c in CANDS.items()]))
    report = evaluate_results(annotations, results)
    assert set(report.scores) == BLEU_ROUGE_CIDER
    assert not report.official and report.tokenizer == "python"
    assert "Java not found" in report.skipped["METEOR"] and "SPICE" in report.skipped
    # The same scorers, fed the documented Python tokenization.
    gts = {i: [python_tokenize(c) for c in refs] for i, refs in REFS.items()}
    res = {i: [python_tokenize(c)] for i, c in CANDS.items()}
    assert report.scores == pytest.approx(official_scores(gts, res))
    in_memory = evaluate_results(annotations, json.loads(results.read_text()))
    assert in_memory.scores == report.scores
    table = metrics_table(report)
    assert "score (unofficial)" in table and "unofficial Python tokenizer" in table
    assert "skipped METEOR, SPICE: Java not found" in table


def test_spice_is_skipped_with_a_reason_when_its_models_are_missing(tmp_path, monkeypatch):
    from pycocoevalcap.spice import get_stanford_models, spice

    monkeypatch.setattr(get_stanford_models, "SPICEDIR", str(tmp_path))
    monkeypatch.setattr(spice, "Spice", None)  # constructing it would start a download
    reason = spice_missing()
    assert "stanford-corenlp-3.6.0 models not in" in reason and "internet" in reason
    report = score_captions(REFS, CANDS, skip=["meteor"])
    assert report.skipped["METEOR"] == "on request"
    if report.official:
        assert report.skipped["SPICE"] == reason
    else:  # without Java, Java is the first reason
        assert "Java" in report.skipped["SPICE"]
    (tmp_path / "lib").mkdir()
    for name in ("stanford-corenlp-3.6.0.jar", "stanford-corenlp-3.6.0-models.jar"):
        (tmp_path / "lib" / name).touch()
    assert spice_missing() is None


class StuckMeteor:
    """Like pycocoevalcap's Meteor, but its Java never answers (as on some odd inputs)."""

    def __init__(self) -> None:
        code = "import time; time.sleep(60)"
        pipe = subprocess.PIPE
        self.meteor_p = subprocess.Popen(
            [sys.executable, "-c", code], stdin=pipe, stdout=pipe, stderr=pipe
        )
        self.lock = threading.Lock()

    def compute_score(self, gts, res):
        self.lock.acquire()
        return float(self.meteor_p.stdout.readline())


def test_a_stuck_meteor_times_out_and_is_stopped(monkeypatch):
    from pycocoevalcap.meteor import meteor

    monkeypatch.setattr(metrics, "_meteor", None)  # the shared real one comes back afterwards
    monkeypatch.setattr(meteor, "Meteor", StuckMeteor)
    gts, res = {1: ["a dog"]}, {1: ["a dog"]}
    with pytest.raises(TimeoutError, match="no answer after 1 s"):
        metrics._meteor_scores(gts, res, timeout=1)
    assert metrics._meteor is None  # dropped: the next call starts a fresh one


@needs_java
def test_odd_characters_reach_meteor_without_hanging():
    refs = {1: ["a dog | a cat", "a dog\nrunning ||| fast"], 2: ["two cats", "cats\r\nsleeping"]}
    report = score_captions(refs, {1: "a dog ||| running\nfast", 2: "two | cats"}, timeout=60)
    assert "METEOR" in report.scores, report.skipped


def test_human_agreement_on_the_tiny_val_split(small_coco):
    report = human_agreement(small_coco / "annotations" / "captions_val2014.json", skip=["METEOR"])
    assert report.n_images == 20
    assert (
        0.3 < report.scores["Bleu_1"] <= 1 and 0 < report.scores["Bleu_4"] < report.scores["Bleu_1"]
    )
    assert report.scores["CIDEr"] > 0.5
    assert "first caption against its other captions" in str(report)


def test_real_coco_human_agreement(coco_sample):
    """The first of 5 real captions against the other 4, on 100 val2017 images."""
    official = human_agreement(coco_sample / "captions.json")
    s = official.scores
    # Published human agreement on COCO (c5): BLEU-1 0.66, BLEU-4 0.22, METEOR 0.25, CIDEr 0.85.
    assert 0.55 < s["Bleu_1"] < 0.75 and 0.15 < s["Bleu_4"] < 0.30
    assert 0.42 < s["ROUGE_L"] < 0.58 and 0.7 < s["CIDEr"] < 1.4
    if official.official:
        assert 0.20 < s["METEOR"] < 0.30
        # The Python fallback tokenizer barely moves the numbers on real captions.
        fallback = human_agreement(coco_sample / "captions.json", use_java=False)
        for name in BLEU_ROUGE_CIDER:
            assert fallback.scores[name] == pytest.approx(s[name], abs=0.01), name


def test_model_and_humans_face_the_same_references(tmp_path):
    from helpers.evaluate.references import against_other_references, human_agreement

    ann = tmp_path / "captions.json"
    caps = {
        1: [
            "a red circle",
            "a red circle on a white background",
            "one red circle",
            "a circle that is red",
        ],
        2: [
            "two blue stars",
            "a pair of blue stars",
            "two stars that are blue",
            "blue stars side by side",
        ],
    }
    anns = [
        {"id": 10 * i + k, "image_id": i, "caption": c}
        for i, cs in caps.items()
        for k, c in enumerate(cs)
    ]
    ann.write_text(
        json.dumps(
            {"images": [{"id": i, "file_name": f"{i}.jpg"} for i in caps], "annotations": anns}
        )
    )
    quiet = {"skip": ["METEOR"], "use_java": False}
    humans = human_agreement(ann, **quiet)
    # A model that writes exactly the first human caption scores exactly what the humans score.
    copy = [{"image_id": i, "caption": cs[0]} for i, cs in caps.items()]
    assert against_other_references(ann, copy, **quiet).scores == humans.scores
    wrong = [
        {"image_id": 1, "caption": "a blue square"},
        {"image_id": 2, "caption": "a green triangle"},
    ]
    assert against_other_references(ann, wrong, **quiet).scores["CIDEr"] < humans.scores["CIDEr"]
