"""What the ablation benchmarks share: their command line (rows, seeds, a quick look at other
settings, where the results go), a folder name for a row, and what a run cost."""

from __future__ import annotations

import argparse
import ast
import os
import re
from collections.abc import Mapping
from pathlib import Path

import torch


def ablation_args(
    doc: str,
    rows: Mapping[str, object],
    dataset: str,
    more: Mapping[str, tuple[str, str]] | None = None,
    argv: list[str] | None = None,
) -> tuple[argparse.Namespace, dict]:
    """Parse an ablation's command line: the arguments, and the --base settings (name -> value)
    every row changes. `more` adds options (name -> (default, help)). --list prints the rows and
    their settings, then exits."""
    p = argparse.ArgumentParser(description=doc.splitlines()[0])
    p.add_argument("--rows", nargs="+", choices=rows, default=list(rows), metavar="ROW")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--dataset", default=dataset, help=f"the dataset (default: {dataset})")
    for name, (default, text) in (more or {}).items():
        p.add_argument(f"--{name}", default=default, help=text)
    p.add_argument(
        "--list", action="store_true", help="print the rows and their settings, then stop"
    )
    p.add_argument("--no-record", action="store_true", help="print only; leave the results alone")
    p.add_argument(
        "--base",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a setting changed for every row, e.g. epochs=1 (a quick look, in folders of its own)",
    )
    p.add_argument(
        "--results", type=Path, default=None, help="results folder (default: benchmarks/results)"
    )
    args = p.parse_args(argv)
    if args.list:
        for name, row in rows.items():
            print(f"{name}: {row}")
        raise SystemExit(0)
    base = {}
    for item in args.base:
        name, _, value = item.partition("=")
        try:
            base[name] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            p.error(f"--base {item!r}: expected NAME=VALUE with a Python literal value")
    return args, base


def slug(name: str) -> str:
    """A folder name for a row or a setting: "chapter, lr / 2" -> "chapter-lr-2"."""
    return re.sub(r"[^a-z0-9.]+", "-", name.lower()).strip("-")


def run_seconds(checkpoint: str | os.PathLike) -> dict[str, float]:
    """How long a checkpoint's run took: its pretraining, its feature cache and its epochs."""
    history = torch.load(checkpoint, map_location="cpu", weights_only=True)["history"]
    return {
        "pretrain": round(history.get("pretrain_seconds") or 0.0, 1),
        "features": round(history.get("features_seconds") or 0.0, 1),
        "epochs": round(sum(history["seconds"]), 1),
    }
