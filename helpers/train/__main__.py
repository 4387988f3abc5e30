"""Train the chapter's CNN + LSTM, or the attention or video models: validation, atomic
checkpoints each epoch, resume; the same command under torchrun on many GPUs or processes."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import os
import re
from pathlib import Path

from helpers.checks import arg, finite, non_negative, parser, positive
from helpers.errors import run_cli
from helpers.train.config import OPTIONAL_WEIGHTS, POSITIVE, PRESETS, TrainConfig
from helpers.train.loop import train


def main(argv: list[str] | None = None) -> int:
    defaults = TrainConfig()
    helps = _field_help()
    p = parser("python -m helpers.train", __doc__)
    for f in dataclasses.fields(TrainConfig):
        value = getattr(defaults, f.name)
        flag = "--" + f.name.replace("_", "-")
        text = helps.get(f.name, "").replace("%", "%%")
        if isinstance(value, bool):
            p.add_argument(
                flag, action=argparse.BooleanOptionalAction, default=value, help=text or None
            )
        else:
            p.add_argument(
                flag,
                type=_arg_type(f.name, value),
                default=value,
                help=f"{text} (default: {value})",
            )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="checkpoint folder (default: data_dir/checkpoints/<dataset>-<backbone>)",
    )
    p.add_argument(
        "--fresh", action="store_true", help="start over instead of resuming from out/last.pt"
    )
    p.add_argument("--device", default=None, help="cuda, cpu, ... (default: CUDA when available)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument(
        "--preset",
        choices=list(PRESETS),
        default=None,
        help="a named group of settings, overridden by any setting given: laptop = "
        + ", ".join(f"{k}={v}" for k, v in PRESETS["laptop"].items()),
    )
    known, _ = p.parse_known_args(argv)
    if known.preset:  # the preset's values become the defaults; flags given still win
        p.set_defaults(**PRESETS[known.preset])
    args = vars(p.parse_args(argv))
    out, fresh, device, quiet = (args.pop(k) for k in ("out", "fresh", "device", "quiet"))
    args.pop("preset")
    cfg = TrainConfig(**args)
    history = train(cfg, out, resume=not fresh, progress=not quiet, device=device)
    if history.val_loss and os.environ.get("RANK", "0") == "0":  # under torchrun: rank 0 says it
        print(
            f"done: val loss {history.val_loss[-1]:.3f} after {history.epoch[-1]} epochs; checkpoint in {out or cfg.run_dir()}"
        )
    return 0


def _field_help() -> dict[str, str]:
    """Each TrainConfig field's comment in the source, so --help and the code say the same."""
    found = {}
    for line in inspect.getsource(TrainConfig).splitlines():
        field_line = re.match(r"\s+(\w+): [^=]+=[^#]+#\s*(.+)", line)
        if field_line:
            found[field_line[1]] = field_line[2].strip()
    return found


def _arg_type(name: str, default: object):
    """How a setting's command-line value is parsed and checked (one line when it is wrong)."""
    if name in POSITIVE:
        return arg(positive)
    if isinstance(default, int):
        return arg(non_negative)
    if isinstance(default, float):
        return arg(finite, float, minimum=0.0, above=name not in OPTIONAL_WEIGHTS)
    return str


if __name__ == "__main__":
    run_cli(main)
