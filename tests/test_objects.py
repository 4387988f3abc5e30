"""The object-level measure: captions parsed into objects bound to their colour and count, scored
against the truth as multisets; CHAIR; the round trip over every generated caption; the
evaluate command scoring a results file without a checkpoint."""

from __future__ import annotations

import json
from collections import Counter

import pytest
import torch

from helpers.caption.attention import Attended
from helpers.data.annotations import load_captions
from helpers.data.tiny_video import generate_tiny_video
from helpers.errors import CourseError
from helpers.evaluate.__main__ import main as evaluate_main
from helpers.evaluate.objects import (
    bound_objects,
    failure_counts,
    failure_kind,
    load_objects,
    object_report,
    object_scores,
    parse_objects,
    said_objects,
    shape_contrast,
    true_objects,
)
from helpers.evaluate.pointing import score_pointing
from helpers.evaluate.video import actor_scores, caption_is_right, said_actors, true_actors

RED_CIRCLE_BLUE_STAR = {
    "grayscale": False,
    "shapes": [
        {"shape": "circle", "color": "red", "box": [20, 50, 10]},
        {"shape": "star", "color": "blue", "box": [80, 50, 10]},
    ],
}
ONE_RED_CIRCLE = {"grayscale": False, "shapes": [{"shape": "circle", "color": "red"}]}
GRAY_CIRCLE = {"grayscale": True, "shapes": [{"shape": "circle", "color": "red"}]}


@pytest.mark.parametrize(
    ("caption", "objects"),
    [
        ("two red squares and a blue star", {("red", "square"): 2, ("blue", "star"): 1}),
        ("A red circle next to a blue star.", {("red", "circle"): 1, ("blue", "star"): 1}),
        (
            "a small green triangle above a large purple square",
            {("green", "triangle"): 1, ("purple", "square"): 1},
        ),
        ("a pair of orange stars on a gray background", {("orange", "star"): 2}),
        ("a red circle above another red circle", {("red", "circle"): 2}),
        ("two identical yellow circles on a white background", {("yellow", "circle"): 2}),
        ("a circle that is red, on the left", {("red", "circle"): 1}),
        ("an orange colored square in the middle", {("orange", "square"): 1}),
        ("a picture of a single gray circle on a black background", {(None, "circle"): 1}),
        (
            "a black and white photo of a star and a square",
            {(None, "star"): 1, (None, "square"): 1},
        ),
        ("two shapes on a striped background, a red star and a red star", {("red", "star"): 2}),
        ("circles", {(None, "circle"): 2}),
        ("a dog on a skateboard", {}),
    ],
)
def test_a_caption_names_its_objects_each_with_its_own_colour_and_count(caption, objects):
    assert said_objects(caption) == Counter(objects)


def test_the_measure_sees_swaps_counts_and_repeats_that_the_set_measure_misses():
    truth = {1: RED_CIRCLE_BLUE_STAR}
    for wrong in ("a blue circle and a red star", "two red circles and a blue star"):
        report = object_report({1: wrong}, truth)["all"]
        assert report["all_right"] == 0.0
        assert object_scores({1: wrong}, truth)["both"] == 1.0  # the old measure: "right"
    repeated = object_report({1: "a red circle and a red circle"}, {1: ONE_RED_CIRCLE})["all"]
    assert repeated["all_right"] == 0.0 and repeated["chair_s"] == 1.0
    assert repeated["precision"] == 0.5 and repeated["recall"] == 1.0
    right = object_report({1: "a blue star to the right of a red circle"}, truth)["all"]
    assert right["all_right"] == 1.0 and right["chair_i"] == 0.0


def test_precision_recall_and_chair_count_objects_as_multisets():
    captions = {1: "a red circle and a green star", 2: "a red circle"}
    report = object_report(captions, {1: RED_CIRCLE_BLUE_STAR, 2: ONE_RED_CIRCLE})
    everything = report["all"]
    # Named: 3 objects, 2 of them there; shown: 3 objects, 2 of them named.
    assert everything["precision"] == pytest.approx(2 / 3, abs=1e-3)
    assert everything["recall"] == pytest.approx(2 / 3, abs=1e-3)
    assert everything["chair_i"] == pytest.approx(1 / 3, abs=1e-3)
    assert everything["chair_s"] == 0.5 and everything["all_right"] == 0.5
    assert report["two shapes"]["images"] == 1 and report["one shape"]["all_right"] == 1.0


def test_grayscale_images_want_no_colour():
    truth = {1: GRAY_CIRCLE}
    assert (
        object_report({1: "a gray circle on a white background"}, truth)["grayscale"]["all_right"]
        == 1.0
    )
    assert object_report({1: "a red circle"}, truth)["grayscale"]["all_right"] == 0.0
    assert true_objects(GRAY_CIRCLE) == Counter({(None, "circle"): 1})


def test_a_mention_is_bound_to_its_own_object_for_the_pointing_game():
    red, blue = RED_CIRCLE_BLUE_STAR["shapes"]
    (mention,) = parse_objects("a red circle".split())
    assert (mention.color_at, mention.shape_at) == (1, 2)
    assert bound_objects(mention, RED_CIRCLE_BLUE_STAR) == [red]
    (wrong,) = parse_objects("a blue circle".split())
    assert bound_objects(wrong, RED_CIRCLE_BLUE_STAR) == []  # no blue circle: names nothing


def test_every_generated_caption_parses_back_to_its_truth(small_coco):
    checked = 0
    for split in ("train", "val"):
        annotations = small_coco / "annotations" / f"captions_{split}2014.json"
        objects = load_objects(annotations)
        for ann in load_captions(annotations)["annotations"]:
            assert said_objects(ann["caption"]) == true_objects(objects[ann["image_id"]]), ann
            checked += 1
    assert checked == 5 * (60 + 20)


def _results(annotations, swap: bool) -> list[dict]:
    """Each image's first human caption, with the colours of two-shape captions swapped if asked."""
    data = load_captions(annotations)
    objects = load_objects(annotations)
    first = {}
    for ann in data["annotations"]:
        first.setdefault(ann["image_id"], ann["caption"])
    results = []
    for image_id, caption in sorted(first.items()):
        truth = objects[image_id]
        colors = [s["color"] for s in truth["shapes"]]
        if swap and len(colors) == 2 and colors[0] != colors[1] and not truth["grayscale"]:
            words = caption.split()
            caption = " ".join(
                colors[1] if w == colors[0] else colors[0] if w == colors[1] else w for w in words
            )
        results.append({"image_id": image_id, "caption": caption})
    return results


def test_evaluate_scores_a_results_file_without_a_checkpoint(small_coco, tmp_path, capsys):
    annotations = small_coco / "annotations" / "captions_val2014.json"
    objects = load_objects(annotations)
    swappable = sum(
        1
        for t in objects.values()
        if len(t["shapes"]) == 2
        and not t["grayscale"]
        and t["shapes"][0]["color"] != t["shapes"][1]["color"]
    )
    assert swappable > 0
    rates = {}
    for swap in (False, True):
        results = tmp_path / f"swap{swap}.json"
        results.write_text(json.dumps(_results(annotations, swap)))
        out = tmp_path / f"scored{swap}.json"
        args = ["--results", str(results), "--annotations", str(annotations), "--out", str(out)]
        assert evaluate_main([*args, "--skip", "METEOR", "SPICE"]) == 0
        metrics = json.loads(out.with_name(f"{out.stem}.metrics.json").read_text())
        assert json.loads(out.read_text()) == json.loads(results.read_text())
        rates[swap] = metrics["objects"]["all"]["all_right"]
        assert metrics["objects_human"]["all"]["all_right"] == 1.0  # the people's row
        assert "checkpoint" not in metrics and "Bleu_4" in metrics["scores"]
    printed = capsys.readouterr().out
    assert "all objects right" in printed and "CHAIR-i" in printed
    assert rates[False] == 1.0
    assert rates[True] == pytest.approx(1.0 - swappable / len(objects), abs=1e-3)


def test_a_results_file_for_other_images_is_one_line_before_any_scoring(small_coco, tmp_path):
    annotations = small_coco / "annotations" / "captions_val2014.json"
    results = tmp_path / "r.json"
    results.write_text(json.dumps([{"image_id": 7, "caption": "a red circle"}]))
    with pytest.raises(CourseError, match="image id 7 is not in"):
        evaluate_main(["--results", str(results), "--annotations", str(annotations)])
    assert not (tmp_path / "r.metrics.json").exists()


def test_the_bound_pointing_game_wants_the_object_with_the_colour_the_caption_binds(tmp_path):
    """A red circle on the left, a blue circle on the right: the map that wrote "circle" in "a red
    circle" must peak on the red one. Peaking on the blue circle is a miss in the bound game, and
    a hit in the older one, which takes any circle."""
    annotations = tmp_path / "captions_val2014.json"
    image = {"id": 1, "file_name": "x.jpg", "width": 200, "height": 100}
    ann = {"id": 1, "image_id": 1, "caption": "a red circle and a blue circle"}
    annotations.write_text(json.dumps({"images": [image], "annotations": [ann]}))
    red = {"shape": "circle", "color": "red", "box": [50, 50, 30]}
    blue = {"shape": "circle", "color": "blue", "box": [150, 50, 30]}
    truth = {"grayscale": False, "shapes": [red, blue]}
    (tmp_path / "objects_val2014.json").write_text(json.dumps({"1": truth}))
    words = "a red circle".split()
    on_blue = torch.zeros(3, 4, 4)
    on_blue[:, 1, 3] = 1  # every word looks at the right-hand (blue) circle
    game = score_pointing({1: Attended(words, on_blue)}, annotations, 100, 100)
    assert (game.words, game.hits) == (2, 0)  # "red" and "circle": both missed
    older = score_pointing({1: Attended(words, on_blue)}, annotations, 100, 100, bound=False)
    assert (older.words, older.hits) == (2, 1)  # "circle" hits the blue circle there
    on_red = torch.zeros(3, 4, 4)
    on_red[:, 1, 0] = 1
    game = score_pointing({1: Attended(words, on_red)}, annotations, 100, 100)
    assert (game.words, game.hits) == (2, 2) and game.by["two shapes"].hits == 2
    wrong = score_pointing({1: Attended("a green circle".split(), on_red)}, annotations, 100, 100)
    assert (wrong.words, wrong.unnamed) == (0, 2)  # no green circle: its words name nothing


def test_video_captions_are_checked_object_by_object_with_their_actions():
    square = {"shape": "square", "color": "red", "action": "left"}
    star = {"shape": "star", "color": "green", "action": "recolor", "new_color": "blue"}
    assert said_actors("A red square moves to the left.") == true_actors([square])
    assert actor_scores("the green star turns blue", [star]) == dict.fromkeys(
        ("objects", "actions", "both"), True
    )
    swapped = actor_scores(
        "a red square turns blue and a green star moves to the left", [square, star]
    )
    assert swapped == {
        "objects": True,
        "actions": True,
        "both": False,
    }  # each with the other's action
    extra = actor_scores("a red square moves to the left and a red square spins", [square])
    assert not extra["objects"] and not extra["both"]
    assert caption_is_right("a red square moves to the left and a red square spins", [square])


def test_every_generated_video_caption_parses_back_to_its_truth(tmp_path):
    root = generate_tiny_video(tmp_path / "video", seed=1, n_train=12, n_val=4, progress=False)
    data = json.loads((root / "videodatainfo.json").read_text())
    actors = {v["video_id"]: v["actions"] for v in data["videos"]}
    assert len(data["sentences"]) == 5 * 16
    for s in data["sentences"]:
        assert said_actors(s["caption"]) == true_actors(actors[s["video_id"]]), s


def test_a_verdict_says_what_is_wrong_object_by_object():
    from helpers.evaluate.objects import describe_objects, object_verdict

    red, blue = {"shape": "circle", "color": "red"}, {"shape": "star", "color": "blue"}
    truth = {"grayscale": False, "shapes": [red, blue]}
    assert object_verdict("a blue star next to a red circle .", truth) == "right"
    swapped = object_verdict("a blue circle and a red star", truth)
    assert swapped == (
        "WRONG (said, not shown: a blue circle and a red star; "
        "shown, not said: a red circle and a blue star)"
    )
    assert object_verdict("two red circles and a blue star", truth) == (
        "WRONG (said, not shown: a red circle)"
    )
    assert object_verdict("a red circle", GRAY_CIRCLE) == (
        "WRONG (said, not shown: a red circle; shown, not said: a circle)"
    )
    assert describe_objects(Counter({("red", "square"): 2, (None, "star"): 1})) == (
        "two red squares and a star"
    )


@pytest.mark.parametrize(
    ("caption", "kind"),
    [
        ("an orange circle and a green triangle", None),
        ("a green circle above an orange triangle", "swapped"),
        ("a green circle and a green triangle", "copied"),
        ("an orange circle", "missing"),
        ("an orange circle, a green triangle and a red star", "extra"),
        ("a red circle and a green triangle", "wrong"),
        ("an orange circle and a green square", "wrong"),
    ],
)
def test_a_wrong_caption_is_named_by_how_it_fails(caption, kind):
    truth = {
        "grayscale": False,
        "shapes": [{"color": "orange", "shape": "circle"}, {"color": "green", "shape": "triangle"}],
    }
    assert failure_kind(caption, truth) == kind
    counts = failure_counts({1: caption}, {1: truth})
    assert sum(counts.values()) == (kind is not None) and (kind is None or counts[kind] == 1)


def test_shape_contrast_is_the_faintest_shapes_gap_from_the_background():
    from PIL import Image, ImageDraw

    image = Image.new("L", (100, 100), 120)
    draw = ImageDraw.Draw(image)
    draw.ellipse((10, 40, 30, 60), fill=250)  # bright: a gap of 130
    draw.rectangle((70, 40, 90, 60), fill=130)  # faint: a gap of 10
    truth = {"shapes": [{"box": [20, 50, 10]}, {"box": [80, 50, 10]}]}
    assert shape_contrast(image.convert("RGB"), truth) == pytest.approx(10)
    truth["shapes"].pop()
    assert shape_contrast(image, truth) == pytest.approx(130, abs=1)  # the square is background now
