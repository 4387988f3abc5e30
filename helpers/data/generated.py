"""The frame both dataset generators (tiny COCO, tiny video) share: a manifest keyed on the
generator's source and settings, a folder built beside its target and swapped in, and the
command line."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

from helpers.checks import arg, non_negative, parser, positive, writable_folder
from helpers.data.paths import data_dir
from helpers.errors import CourseError
from helpers.files import read_json, replaced_folder, write_json


def generator_main(
    argv: list[str] | None, doc: str, name: str, generate, defaults: dict, units: str, what: str
) -> int:
    """The command line of a dataset generator (tiny COCO, tiny video): parse, check, generate."""
    p = parser(f"python -m helpers.data.{name}", doc.splitlines()[0])
    p.add_argument(
        "--out", type=Path, default=None, help=f"output folder (default: data_dir/{name})"
    )
    p.add_argument("--seed", type=arg(non_negative), default=defaults["seed"])
    for flag, key in (("--train", "n_train"), ("--val", "n_val")):
        help_text = f"number of {flag[2:]} {units}"
        p.add_argument(flag, type=arg(positive), default=defaults[key], help=help_text)
    extras = [k for k in defaults if k not in ("seed", "n_train", "n_val")]
    for key in extras:  # e.g. train_pairs: more of one kind, after the mixed ones
        split = key.split("_")[0]
        p.add_argument(
            f"--{key.replace('_', '-')}",
            type=arg(non_negative),
            default=defaults[key],
            help=f"{split} {units} with two shapes in each, added after the mixed ones",
        )
    p.add_argument(
        "--force", action="store_true", help="regenerate even if an identical one exists"
    )
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    out = args.out or data_dir() / name
    writable_folder(out, create=False)  # built beside it, then renamed into place
    more = {k: getattr(args, k) for k in extras}
    out = generate(out, args.seed, args.train, args.val, args.force, not args.quiet, **more)
    print(f"{what} ready in {out}")
    return 0


def generated_folder(
    out: str | os.PathLike,
    params: dict,
    manifest: str,
    what: str,
    write: Callable[[Path], dict],
    force: bool = False,
) -> Path:
    """A folder a generator writes: kept when its manifest matches `params` (unless `force`), else
    built by `write(tmp)` beside it and swapped in, so an interrupted run never leaves half of
    it. `write` returns more entries for the manifest. A folder the generator did not write (no
    manifest, not empty) is never overwritten."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise CourseError(f"{out}: exists and is not a folder")
    if not force and (out / manifest).is_file():
        stored = read_json(out / manifest, f"{what} manifest")
        if all(stored.get(k) == v for k, v in params.items()):
            return out
    with replaced_folder(out, manifest, f"the {what} generator") as build:
        extra = write(build)
        write_json(build / manifest, {**params, **extra}, indent=1)
    return out


def extra_counts(out: str | os.PathLike, **counts: int) -> dict:
    """More counts for a manifest key (whole numbers, 0 allowed); 0s are left out, so a folder
    written before a count existed keeps its key."""
    for name, value in counts.items():
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise CourseError(f"{out}: {name} must be a whole number of at least 0, got {value!r}")
    return {k: v for k, v in counts.items() if v}


def generator_params(
    generator: str | os.PathLike, out: str | os.PathLike, version: int, seed: int, **counts: int
) -> dict:
    """The manifest key of a generated dataset: version, a digest of the generator's own source
    (a changed generator rebuilds the data), seed and counts (whole numbers of at least 1)."""
    for name, value in counts.items():
        if not isinstance(value, int) or value < 1:
            raise CourseError(f"{out}: {name} must be a positive whole number, got {value!r}")
    source = hashlib.sha256(Path(generator).read_bytes()).hexdigest()[:16]
    return {"version": version, "generator": source, "seed": seed, **counts}
