"""Write the README's tables of measured results from the benchmarks' results files, between
<!-- measured: NAME --> and <!-- /measured --> markers, so the README quotes what was measured.
Run: python benchmarks/readme_tables.py [--check]   (--check: exit 1 if the README is out of date)
"""

import argparse
import re
import sys
from pathlib import Path

from helpers.evaluate.measured import measured_table
from helpers.files import atomic_path

README = Path(__file__).resolve().parents[1] / "README.md"
PERCENT, METRIC = "{:.1%}", "{:.3f}"
DEFAULT = {"variant": "default"}  # the runs of the default settings, not an exercise's variant


def _model(prefix: str, what: str = "all_right") -> list[tuple[str, str, str]]:
    return [
        ("BLEU-4", f"{prefix}/metrics/Bleu_4", METRIC),
        ("CIDEr", f"{prefix}/metrics/CIDEr", METRIC),
        ("all right", f"{prefix}/objects/all/{what}", PERCENT),
        ("two shapes", f"{prefix}/objects/two shapes/{what}", PERCENT),
        ("CHAIR-s", f"{prefix}/objects/all/chair_s", PERCENT),
    ]


TABLES = {  # marker name: (results file, columns, rows chosen, heading)
    "train_tiny": (
        "train_tiny",
        [
            ("best val loss", "best_val_loss", METRIC),
            ("at epoch", "best_epoch", "{}"),
            ("all objects right", "objects/all/all_right", PERCENT),
            ("two shapes", "objects/two shapes/all_right", PERCENT),
            ("one small shape", "objects/one small shape/all_right", PERCENT),
            ("CHAIR-s", "objects/all/chair_s", PERCENT),
            ("squeezed: all right", "squeeze objects/all/all_right", PERCENT),
        ],
        DEFAULT,
        "the default model, greedy, 200 val images",
    ),
    "attention_chapter": (
        "attention_tiny",
        _model("chapter"),
        DEFAULT,
        "chapter's decoder, greedy",
    ),
    "attention_chapter_beam": (
        "attention_tiny",
        _model("chapter, beam 3"),
        DEFAULT,
        "chapter's decoder, beam 3",
    ),
    "attention": ("attention_tiny", _model("attention"), DEFAULT, "attention, greedy"),
    "attention_beam": ("attention_tiny", _model("attention, beam 3"), DEFAULT, "attention, beam 3"),
    "attention_people": ("attention_tiny", _model("people"), DEFAULT, "people (first caption)"),
    "pointing": (
        "attention_tiny",
        [
            ("words", "attention/pointing/words", "{}"),
            ("bound hits", "attention/pointing/hit", PERCENT),
            ("chance", "attention/pointing/chance", PERCENT),
            ("uniform", "attention/pointing/uniform", PERCENT),
            ("unbound hits", "attention/unbound pointing/hit", PERCENT),
            ("beam 3: bound hits", "attention, beam 3/pointing/hit", PERCENT),
        ],
        DEFAULT,
        "the pointing game, attention model",
    ),
    "video_actions": (
        "video_tiny",
        [
            ("LRCN, last step", "LRCN, 8 frames/accuracy", PERCENT),
            ("mean of steps", "LRCN, 8 frames, mean of steps/accuracy", PERCENT),
            ("middle frame", "single frame, actions/accuracy", PERCENT),
        ],
        None,
        "action accuracy, one-shape val clips",
    ),
    "video_captions": (
        "video_tiny",
        [
            (f"{who}: {what}", f"{run}/{key}", fmt)
            for who, run in (
                ("8 frames", "captions, 8 frames"),
                ("middle", "single frame, captions"),
            )
            for what, key, fmt in (
                ("CIDEr", "CIDEr", METRIC),
                ("both right", "both right", PERCENT),
                ("two actors", "both right, two actors", PERCENT),
            )
        ],
        None,
        "video captions, greedy, 150 val clips",
    ),
}
BLOCK = re.compile(r"(<!-- measured: (\w+) -->\n)(.*?)(<!-- /measured -->)", re.S)


def block(name: str) -> str:
    """The fenced table that goes between the markers of `name`."""
    results, columns, where, heading = TABLES[name]
    table = measured_table(results, columns, where=where)
    return f"{heading} (benchmarks/results/{results}.jsonl):\n\n```\n{table}\n```\n"


def updated(text: str) -> str:
    """The README text with every marked table rewritten from the results files."""
    unknown = [m.group(2) for m in BLOCK.finditer(text) if m.group(2) not in TABLES]
    if unknown:
        sys.exit(f"README.md: unknown measured tables {unknown}; known: {sorted(TABLES)}")
    return BLOCK.sub(lambda m: m.group(1) + block(m.group(2)) + m.group(4), text)


if __name__ == "__main__":
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--check", action="store_true", help="only check; exit 1 if out of date")
    args = p.parse_args()
    text = README.read_text(encoding="utf-8")
    new = updated(text)
    if args.check:
        if new != text:
            sys.exit(
                "README.md: its measured tables differ from benchmarks/results (rerun this script)"
            )
        print("README.md: measured tables match benchmarks/results")
    elif new != text:
        with atomic_path(README) as tmp:
            tmp.write_text(new, encoding="utf-8")
        print("README.md: measured tables rewritten")
