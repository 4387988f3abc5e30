"""Judge a checkpoint: caption every image of a split, write a COCO results file, and score it
with the official COCO metrics (beside the human agreement, with --human); or score a results file
(--results). On a tiny set the captions are also checked object by object against the truth."""

from __future__ import annotations

import argparse
from pathlib import Path

from helpers.caption.captioner import Captioner
from helpers.checks import arg, finite, parser, positive, writable_file
from helpers.checks import device as check_device
from helpers.data.registry import dataset_split
from helpers.errors import CourseError, run_cli
from helpers.evaluate.metrics import (
    SCORERS,
    metrics_table,
    metrics_to_skip,
)
from helpers.evaluate.objects import (
    load_objects,
    object_report,
    objects_path,
    objects_table,
    people_report,
)
from helpers.evaluate.pointing import pointing_game
from helpers.evaluate.references import (
    against_other_references,
    evaluate_results,
    human_agreement,
    load_results,
    reference_captions,
)
from helpers.evaluate.split import evaluate_checkpoint, metrics_path
from helpers.files import read_json, write_json
from helpers.models.checkpoint import best_checkpoint, read_checkpoint


def main(argv: list[str] | None = None) -> int:
    p = parser("python -m helpers.evaluate", __doc__)
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--checkpoint",
        type=Path,
        help="a checkpoint written by helpers.train, or its run folder (then its best.pt)",
    )
    source.add_argument(
        "--results",
        type=Path,
        help='a COCO results file ([{"image_id", "caption"}, ...]) to score, without a checkpoint',
    )
    p.add_argument("--annotations", type=Path, help="a COCO captions JSON (with --images)")
    p.add_argument("--images", type=Path, help="the folder of its images (with --annotations)")
    p.add_argument(
        "--dataset",
        default="tiny",
        help="without --annotations: tiny, coco2014, coco2017-val or a folder",
    )
    p.add_argument("--split", default="val", help="without --annotations: the split to caption")
    p.add_argument(
        "--beam-size", type=arg(positive), default=1, help="1: greedy, as the source (default)"
    )
    p.add_argument(
        "--length-penalty", type=arg(finite, float), default=0.0, help="> 0 favours longer captions"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results JSON (default: <checkpoint folder>/<annotations name>_beam<K>_results.json, "
        "or the --results file itself); the metrics go beside it as <name>.metrics.json",
    )
    p.add_argument("--batch-size", type=arg(positive), default=32, help="images per batch (32)")
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: CUDA when available)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--skip", nargs="+", default=[], metavar="METRIC", help=", ".join(SCORERS))
    p.add_argument(
        "--human", action="store_true", help="also score human agreement, the bar to reach"
    )
    p.add_argument(
        "--per-image", action="store_true", help="add each image's scores to the metrics JSON"
    )
    p.add_argument("--markdown", action="store_true", help="print the tables as markdown")
    args = p.parse_args(argv)
    _check(args)

    if args.results is not None:
        results = read_json(args.results, "results file")
        report = evaluate_results(args.annotations, results, args.per_image, args.skip)
    else:
        captioner = Captioner(args.checkpoint, None, args.device)
        results, report = evaluate_checkpoint(
            captioner,
            args.annotations,
            args.images,
            args.beam_size,
            args.length_penalty,
            args.batch_size,
            args.device,
            args.per_image,
            args.skip,
            progress=not args.quiet,
        )
    if args.out != args.results:
        write_json(args.out, results)
    reports = {"model": report}
    if args.human:
        # The humans face four references per image; so does the model in the column beside them.
        fair = against_other_references(args.annotations, results, skip=args.skip)
        reports["model (4 refs)"] = fair
        reports["human (4 refs)"] = human_agreement(args.annotations, skip=args.skip)
    made_by = {"checkpoint": str(args.checkpoint)} if args.checkpoint else {}
    summary = {
        **made_by,
        "annotations": str(args.annotations),
        "images": str(args.images) if args.images else None,
        "results": str(args.out),
        "beam_size": args.beam_size,
        "length_penalty": args.length_penalty,
        **report.to_dict(),
    }
    if args.results is not None:  # how the captions were made is the results file's business
        summary = {k: v for k, v in summary.items() if k not in ("beam_size", "length_penalty")}
    if args.human:
        summary["model_4_refs"] = reports["model (4 refs)"].to_dict()
        summary["human"] = reports["human (4 refs)"].to_dict()
    print(metrics_table(reports, markdown=args.markdown))
    if objects_path(args.annotations).is_file():  # a tiny set: what is true is known
        objects = _object_reports(args.annotations, results)
        summary["objects"], summary["objects_human"] = objects["model"], objects["people"]
        print()
        print(objects_table(objects, markdown=args.markdown))
        if args.checkpoint and captioner.kind.attention:  # where it looked, object by object
            game = pointing_game(
                captioner, args.annotations, args.images, args.beam_size, progress=not args.quiet
            )
            rates = summary["pointing"] = game.summary()
            print(
                f"\nbound pointing game: {rates['hit']:.1%} of {rates['words']} colour and shape "
                f"words peak inside their own object (chance {rates['chance']:.1%}, "
                f"uniform attention {rates['uniform']:.1%})"
                if rates["words"]
                else "\nbound pointing game: no caption names an object of its image to point at"
            )
    write_json(metrics_path(args.out), summary, indent=1)
    made = "scored" if args.out == args.results else "wrote"
    print(f"{made} {args.out} ({len(results)} captions); metrics in {metrics_path(args.out)}")
    return 0


def _check(args: argparse.Namespace) -> None:
    """Every input and output place checked before minutes of captioning and scoring."""
    check_device(args.device)
    if (args.annotations is None) != (args.images is None) and args.results is None:
        raise CourseError("give --annotations and --images together (or neither, for --dataset)")
    if args.annotations is None:
        split = dataset_split(args.dataset, args.split)
        args.annotations, args.images = split.annotations, split.images
    reference_captions(args.annotations)  # a wrong captions file: one line now
    inputs = [args.annotations] + ([args.images] if args.images else [])
    if args.results is not None:
        load_results(read_json(args.results, "results file"), reference_captions(args.annotations))
        args.out = args.out or args.results
        inputs.append(args.results)
    else:
        args.checkpoint = best_checkpoint(args.checkpoint)
        read_checkpoint(args.checkpoint)  # a wrong file is one line now, not after the captioning
        inputs.append(args.checkpoint)
        if args.out is None:
            lp = f"_lp{args.length_penalty:g}" if args.length_penalty else ""
            name = f"{args.annotations.stem}_beam{args.beam_size}{lp}_results.json"
            args.out = args.checkpoint.parent / name
        writable_file(args.out, inputs)
    writable_file(metrics_path(args.out), [a for a in inputs if a != args.results])
    metrics_to_skip(args.skip)


def _object_reports(annotations: Path, results: list[dict]) -> dict[str, dict]:
    """The model's captions and the people's (each image's first) object by object."""
    model = {r["image_id"]: r["caption"] for r in results}
    return {
        "model": object_report(model, load_objects(annotations)),
        "people": people_report(annotations),
    }


if __name__ == "__main__":
    run_cli(main)
