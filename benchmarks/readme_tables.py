"""Write the README's tables of measured results from the benchmarks' results files, between
<!-- measured: NAME --> and <!-- /measured --> markers, so the README quotes what was measured.
Run: python benchmarks/readme_tables.py [--check]   (--check: exit 1 if the README is out of date)
"""

import argparse
import re
import sys
from pathlib import Path

from helpers.evaluate.measured import measured_means, measured_table
from helpers.evaluate.objects import FAILURES
from helpers.files import atomic_path

README = Path(__file__).resolve().parents[1] / "README.md"
PERCENT, METRIC = "{:.1%}", "{:.3f}"
DEFAULT = {"variant": "default"}  # the runs of the default settings, not an exercise's variant
# The speed benchmarks: one row per setting the README quotes, named by its variant; rows of
# different settings are no sample of one quantity, so their tables have no range line.
SETTINGS = {"by": "variant", "spread": False}
RATIO = "{:.1f}x"


def _captioning(decoding: str) -> list[tuple[str, str, str]]:
    return [
        ("images", "images", "{}"),
        ("one at a time, img/s", f"{decoding}/one_at_a_time_images_per_s", "{:.1f}"),
        ("batch", "batch_size", "{}"),
        ("batched, img/s", f"{decoding}/batched_images_per_s", "{:.1f}"),
        ("ratio", f"{decoding}/speedup", RATIO),
        ("differing", f"{decoding}/differing_captions", "{}"),
        ("threads", "cpu_threads", "{}"),
    ]


def _rates(threads: str) -> list[tuple[str, str, str]]:
    return [
        ("resize, photos/s", f"{threads}/resize_photos_per_s", "{:.0f}"),
        ("ResNet-50, img/s", f"{threads}/resnet50_images_per_s", "{:.1f}"),
        ("ResNet-18, img/s", f"{threads}/resnet18_images_per_s", "{:.1f}"),
        ("LSTM, s/1,000 captions", f"{threads}/decoder_s_per_1000_captions", "{:.2f}"),
    ]


def _minutes(where: str) -> list[tuple[str, str, str]]:
    return [
        ("resize", f"{where}/resize", "{:.1f}"),
        ("ResNet-50 features", f"{where}/features_resnet50", "{:.1f}"),
        ("(ResNet-18 instead)", f"{where}/features_resnet18", "{:.1f}"),
        ("LSTM, 10 epochs", f"{where}/decoder_10_epochs", "{:.1f}"),
        ("in all, with ResNet-50", f"{where}/total_resnet50", "{:.1f}"),
    ]


TABLES = {  # marker name: (results file, columns, rows chosen, heading[, measured_table options])
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
        "the default model, greedy, 400 val images",
    ),
    "real_photos_rates_1": (
        "real_photos_speed",
        _rates("rates_1_thread"),
        DEFAULT,
        "rates on the real COCO photos, 1 thread",
        SETTINGS,
    ),
    "real_photos_rates_all": (
        "real_photos_speed",
        [*_rates("rates_all_threads"), ("threads", "cores_here", "{}")],
        DEFAULT,
        "rates on the real COCO photos, all threads",
        SETTINGS,
    ),
    "real_photos_minutes_here": (
        "real_photos_speed",
        _minutes("projected_minutes_here"),
        DEFAULT,
        "minutes of the 5,000-photo run at these rates, all threads",
        SETTINGS,
    ),
    "real_photos_minutes_8_cores": (
        "real_photos_speed",
        _minutes("estimated_minutes_8_cores"),
        DEFAULT,
        "minutes on an 8-core laptop: an ESTIMATE from these rates",
        SETTINGS,
    ),
    "train_speed_epoch": (
        "train_speed",
        [
            ("images", "train_images", "{}"),
            ("captions", "train_captions", "{}"),
            ("chapter's loop, s", "source_seconds_per_epoch", "{:.1f}"),
            ("cached, s", "cached_seconds_per_epoch", "{:.2f}"),
            ("ratio", "epoch_speedup", RATIO),
            ("val loss: chapter's", "source_val_loss", "{:.3f}"),
            ("cached", "cached_val_loss", "{:.3f}"),
        ],
        DEFAULT,
        "one epoch (training + validation), frozen ResNet-18 at 224 px",
        SETTINGS,
    ),
    "train_speed_run": (
        "train_speed",
        [
            ("epochs", "epochs", "{}"),
            ("chapter's loop, s", "source_total_seconds", "{:.1f}"),
            ("cached, s", "cached_total_seconds", "{:.1f}"),
            ("of it the cache", "cache_build_seconds", "{:.1f}"),
            ("ratio", "total_speedup", RATIO),
            ("threads", "cpu_threads", "{}"),
        ],
        DEFAULT,
        "the whole run, cache build included",
        SETTINGS,
    ),
    "caption_speed_greedy": (
        "caption_speed",
        _captioning("greedy"),
        DEFAULT,
        "greedy captioning of the tiny-COCO val images, default model",
        SETTINGS,
    ),
    "caption_speed_beam": (
        "caption_speed",
        _captioning("beam3"),
        DEFAULT,
        "beam-3 captioning, the same images",
        SETTINGS,
    ),
    "resize_speed": (
        "resize_speed",
        [
            ("to px", "size", "{}"),
            ("rounds", "rounds", "{}"),
            ("chapter's", "images_per_second/a_chapter_serial", "{:.0f}"),
            ("draft + pool", "images_per_second/b_fast_draft_pool", "{:.0f}"),
            ("ratio", "fast_over_chapter", RATIO),
            ("draft alone", "images_per_second/c_draft_one_process", "{:.0f}"),
            ("pool alone", "images_per_second/d_pool_no_draft", "{:.0f}"),
            ("reduced", "draft_reduced", "{}"),
        ],
        None,
        "photos resized per second",
        SETTINGS,
    ),
    "resize_stages": (
        "resize_speed",
        [
            ("decode", "ms_per_image_one_process/decode_full", "{:.1f}"),
            ("decode, draft", "ms_per_image_one_process/decode_draft", "{:.1f}"),
            ("LANCZOS", "ms_per_image_one_process/lanczos_from_full", "{:.1f}"),
            ("LANCZOS from draft", "ms_per_image_one_process/lanczos_from_draft", "{:.1f}"),
            ("encode", "ms_per_image_one_process/encode_q95", "{:.1f}"),
            ("difference", "mean_abs_diff_draft_vs_plain", "{:.1f}"),
        ],
        None,
        "ms per photo, one process; mean difference from the full decode, grey levels",
        SETTINGS,
    ),
    "attention_ablation": (
        "attention_ablation",
        [
            ("two shapes", "objects/two shapes/all_right", PERCENT),
            ("one shape", "objects/one shape/all_right", PERCENT),
            ("grayscale", "objects/grayscale/all_right", PERCENT),
            ("CHAIR-i", "objects/all/chair_i", PERCENT),
            ("pointing", "pointing/hit", PERCENT),
            ("BLEU-4", "metrics/Bleu_4", METRIC),
            ("CIDEr", "metrics/CIDEr", METRIC),
        ],
        None,
        "all objects right, greedy unless a beam is named, mean (lowest-highest seed)",
        {"means": True},
    ),
    "attention_failures": (
        "attention_ablation",
        [(kind, f"failures/{kind}", "{:.0f}") for kind in FAILURES],
        None,
        "how the wrong captions of the 400 val images fail, captions per run, mean (lowest-highest seed)",
        {"means": True},
    ),
    "video_ablation": (
        "video_ablation",
        [
            ("two actors: both right", "both right, two actors", PERCENT),
            ("one actor: both right", "both right, one actor", PERCENT),
            ("actions (LRCN)", "accuracy", PERCENT),
            ("CIDEr", "metrics/CIDEr", METRIC),
        ],
        None,
        "each shape with its own colour and action, greedy, mean (lowest-highest seed)",
        {"means": True},
    ),
    "course_time": (
        "course_time",
        [("seconds", "seconds", "{:.0f}")],
        {"mode": "in-order"},
        "each notebook in order from an empty data_dir, 2 CPU cores, seconds",
        {"by": "notebook", "spread": False},
    ),
    "course_time_alone": (
        "course_time",
        [("seconds", "seconds", "{:.0f}")],
        {"mode": "alone"},
        "a notebook alone, from a data_dir of its own, 2 CPU cores, seconds",
        {"by": "notebook", "spread": False},
    ),
    "digest_cost": (
        "digest_cost",
        [
            ("train images", "train_images", "{:,}"),
            ("one split: cold, s", "train_split_cold_s", "{:.2f}"),
            ("warm, s", "train_split_warm_s", "{:.2f}"),
            ("train and val: cold, s", "run_cold_s", "{:.2f}"),
            ("warm, s", "run_warm_s", "{:.2f}"),
            ("threads", "cpu_threads", "{}"),
        ],
        None,
        "checking a run's inputs: its captions' digests and its image folders' listings",
        SETTINGS,
    ),
    "busy_laptop": (
        "busy_laptop",
        [
            ("threads alone", "threads", "{}"),
            ("alone, s", "alone_s", "{:.1f}"),
            ("threads beside", "threads_busy", "{}"),
            ("beside a busy process, s", "busy_s", "{:.1f}"),
            ("ratio", "ratio", "{:.2f}x"),
            ("cores", "usable_cores", "{}"),
        ],
        None,
        "the chapter's model trained briefly, alone and beside one CPU-bound process, seconds",
        SETTINGS,
    ),
    "kernel_speed": (
        "kernel_speed",
        [
            ("CNN batch: NCHW, ms", "cnn_train_batch_ms/nchw", "{:.0f}"),
            ("channels-last", "cnn_train_batch_ms/channels_last", "{:.0f}"),
            ("ratio", "cnn_train_speedup", RATIO),
            ("CNN per image: NCHW, ms", "cnn_infer_ms_per_image/nchw", "{:.2f}"),
            ("channels-last", "cnn_infer_ms_per_image/channels_last", "{:.2f}"),
            ("ratio", "cnn_infer_speedup", RATIO),
            ("attention batch: every row, ms", "attention_train_batch_ms/every_row", "{:.0f}"),
            ("running rows", "attention_train_batch_ms/running_rows", "{:.0f}"),
            ("ratio", "attention_speedup", RATIO),
            ("threads", "cpu_threads", "{}"),
        ],
        DEFAULT,
        "the small CNN at 64 px and the attention decoder, one batch of 64 (training) or per image",
        SETTINGS,
    ),
}
BLOCK = re.compile(r"(<!-- measured: (\w+) -->\n)(.*?)(<!-- /measured -->)", re.S)


def block(name: str) -> str:
    """The fenced table that goes between the markers of `name`."""
    results, columns, where, heading, *options = TABLES[name]
    options = dict(options[0]) if options else {}
    if options.pop("means", False):  # an ablation: each row's mean and range over its seeds
        table = measured_means(results, columns, **options)
    else:
        table = measured_table(results, columns, where=where, **options)
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
