"""Video on the tiny video set: LRCN action recognition and video captioning against the
single-frame control (the chapter's model on the middle frame), over seeds.

For each seed: the chapter's image model (trained or reused) lends its frozen CNN to four video
runs on 8 frames with motion, or 1 frame: LRCN (actions) and the captioner, each also as the
single-frame control; plus LRCN averaging its steps (pool="mean", as the paper) beside the last
step. Prints the action accuracy per class, the captions that name every object with its action
(one- and two-actor clips), BLEU-4 / METEOR / CIDEr against the four references the humans face,
and the humans' own row; one JSON line per seed, each also written to
benchmarks/results/video_tiny.jsonl as soon as it is measured, then a summary (mean, min, max).
Run: python benchmarks/video_tiny.py [--seeds 0 1 2] [--beams 1 3]   (about 2 minutes per seed)
"""

import argparse
import json
import time

from helpers.caption.video import VideoModel, describe_split
from helpers.data.paths import data_dir
from helpers.evaluate.measured import about_run, record_result
from helpers.evaluate.references import over_seeds
from helpers.evaluate.video import action_report, caption_report
from helpers.train.config import TrainConfig
from helpers.train.data import video_items
from helpers.train.loop import ensure_checkpoint

p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
p.add_argument("--beams", type=int, nargs="+", default=[1], help="caption beam sizes (1 = greedy)")
p.add_argument("--skip", nargs="*", default=["SPICE"], help="metrics to skip (SPICE is slow)")
p.add_argument("--no-record", action="store_true", help="print only; leave the results file alone")
args = p.parse_args()
# The results file the notebooks quote holds runs of the default settings only.
record = not args.no_record and args.beams == [1] and args.skip == ["SPICE"]
humans = caption_report(
    video_items(TrainConfig(dataset="tiny_video"), "val", False), None, args.skip
)
people = {**humans["metrics"], **{k: v for k, v in humans.items() if "right" in k}}

RUNS = {  # name: the video settings; the rest as the chapter's run
    "LRCN, 8 frames": dict(decoder="lrcn", frames=8, motion=True, epochs=30),
    "LRCN, 8 frames, mean of steps": dict(
        decoder="lrcn", frames=8, motion=True, epochs=30, pool="mean"
    ),
    "single frame, actions": dict(decoder="lrcn", frames=1, epochs=30),
    "captions, 8 frames": dict(frames=8, motion=True, epochs=15),
    "single frame, captions": dict(frames=1, epochs=15),
}


def folder(seed: int, name: str, cfg: TrainConfig):
    """The default run folder for seed 0, one of its own for the others and for pool="mean"."""
    run = cfg.run_dir()
    suffix = ("-mean" if cfg.pool == "mean" else "") + (f"-seed{seed}" if seed else "")
    return run.with_name(run.name + suffix)


rows: dict[str, list[dict]] = {}
for seed in args.seeds:
    began = time.perf_counter()
    chapter = ensure_checkpoint(
        TrainConfig(seed=seed),
        None if seed == 0 else data_dir() / "checkpoints" / f"tiny-small-seed{seed}",
    )
    line = {"benchmark": "video_tiny", "seed": seed, "seconds": {}}
    for name, settings in RUNS.items():
        cfg = TrainConfig(dataset="tiny_video", weights=str(chapter), seed=seed, **settings)
        began = time.perf_counter()
        model = VideoModel(ensure_checkpoint(cfg, folder(seed, name, cfg)), device="cpu")
        line["seconds"][name] = round(time.perf_counter() - began, 1)
        beams = [1] if model.actions else args.beams
        for beam in beams:
            key = name if beam == 1 else f"{name}, beam {beam}"
            items, said = describe_split(model, "val", beam)
            if model.actions:
                r = action_report(items, said, model.vocab.id_to_word[4:])
                row = {"accuracy": round(r.accuracy, 3), "clips": r.clips}
                row.update({f"accuracy {k}": round(v, 3) for k, v in r.per_class.items()})
            else:
                report = caption_report(items, said, args.skip)
                row = {
                    **report["metrics"],
                    **{k: v for k, v in report.items() if "right" in k},
                }
            rows.setdefault(key, []).append(row)
            line[key] = row
    line |= {"people": people} | about_run()
    if record:
        record_result("video_tiny", line)
    print(json.dumps(line), flush=True)

summary = {"benchmark": "video_tiny", "seeds": args.seeds}
summary.update(over_seeds(rows))
summary["humans"] = people
print(json.dumps(summary))
