"""The evaluate CLI: caption a split with a checkpoint, write the results and metrics files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers.caption.captioner import Captioner
from helpers.errors import CourseError, run_cli
from helpers.evaluate.__main__ import main
from helpers.evaluate.split import evaluate_checkpoint
from helpers.models.cnn_lstm import LSTMModel
from helpers.train.loop import train


@pytest.fixture(scope="module")
def checkpoint(small_coco, small_config, tmp_path_factory) -> Path:
    """A checkpoint trained for one epoch on the 60-image fixture (a few seconds)."""
    data = tmp_path_factory.mktemp("data_dir")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COURSE_DATA_DIR", str(data))
        train(small_config(small_coco, epochs=1), out=data / "run", progress=False)
    return data / "run" / "last.pt"


def val_split(small_coco: Path) -> list[str]:
    return [
        "--annotations",
        str(small_coco / "annotations" / "captions_val2014.json"),
        "--images",
        str(small_coco / "val2014"),
    ]


def test_cli_writes_results_and_metrics(checkpoint, small_coco, tmp_path, capsys):
    out = tmp_path / "results.json"
    args = ["--checkpoint", str(checkpoint), *val_split(small_coco), "--out", str(out)]
    assert main([*args, "--batch-size", "8", "--skip", "METEOR"]) == 0
    results = json.loads(out.read_text())
    val = json.loads((small_coco / "annotations" / "captions_val2014.json").read_text())
    metrics = json.loads((tmp_path / "results.metrics.json").read_text())
    assert [r["image_id"] for r in results] == sorted(img["id"] for img in val["images"])
    assert all(set(r) == {"image_id", "caption"} and r["caption"].strip() for r in results)
    assert metrics["n_images"] == 20 and metrics["results"] == str(out)
    assert {"Bleu_4", "ROUGE_L", "CIDEr"} <= set(metrics["scores"])
    assert metrics["skipped"]["METEOR"] == "on request"
    printed = capsys.readouterr().out
    assert "BLEU-4" in printed and f"wrote {out}" in printed
    # The library function gives the same captions: decoding is deterministic.
    again, report = evaluate_checkpoint(
        checkpoint, *val_split(small_coco)[1::2], skip=["METEOR"], progress=False
    )
    assert again == results and report.scores == pytest.approx(metrics["scores"])


@pytest.mark.skipif(not hasattr(LSTMModel, "beam_search"), reason="beam search not written yet")
def test_beam_size_reaches_the_decoder(checkpoint, small_coco):
    captioner = Captioner(checkpoint, device="cpu")
    ann, images = val_split(small_coco)[1::2]
    results, report = evaluate_checkpoint(
        captioner, ann, images, beam_size=3, skip=["METEOR"], progress=False
    )
    assert len(results) == 20 and report.n_images == 20
    with pytest.raises(CourseError, match="beam size"):
        evaluate_checkpoint(captioner, ann, images, beam_size=0, progress=False)


@pytest.mark.parametrize(
    "args, says",
    [
        (["--checkpoint", "missing.pt"], "missing.pt: checkpoint not found"),
        (["--checkpoint", "x.pt", "--images", "somewhere"], "--annotations and --images together"),
    ],
)
def test_cli_errors_are_one_line(small_coco, args, says, capsys):
    if "--images" not in args:
        args = [*args, *val_split(small_coco)]
    with pytest.raises(SystemExit) as exit_:
        run_cli(main, args)
    assert exit_.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and says in err


def test_cli_human_column_faces_the_same_references(checkpoint, small_coco, tmp_path, capsys):
    out = tmp_path / "results.json"
    args = ["--checkpoint", str(checkpoint), *val_split(small_coco), "--out", str(out)]
    assert main([*args, "--skip", "METEOR", "--human"]) == 0
    metrics = json.loads((tmp_path / "results.metrics.json").read_text())
    assert {"human", "model_4_refs"} <= set(metrics)
    assert metrics["model_4_refs"]["n_images"] == metrics["human"]["n_images"] == 20
    assert "human (4 refs)" in capsys.readouterr().out
