"""Values and output places checked before long work starts: one line naming what is wrong.

Each check raises CourseError, so notebooks and library calls get the same one-line message; the
command-line tools parse with `parser()`, whose own errors are one line too (exit code 2).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from helpers.errors import CourseError

if TYPE_CHECKING:
    import torch


class _OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad command line is one line on stderr (the usage is one --help away)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        print(f"error: {self.prog}: {message} (see --help)", file=sys.stderr)
        sys.exit(2)

    def parse_known_args(self, args=None, namespace=None):  # type: ignore[override]
        parsed, rest = super().parse_known_args(args, namespace)
        if getattr(parsed, "quiet", False):
            # Every bar of the command, also those of what it builds on the way (the tiny COCO,
            # resized copies, caches) and of the processes it starts: tqdm reads this variable.
            os.environ["TQDM_DISABLE"] = "1"
        return parsed, rest


def parser(prog: str, description: str | None = None) -> argparse.ArgumentParser:
    """The argument parser of every course command: one-line errors, exit code 2."""
    return _OneLineParser(prog=prog, description=description)


def positive(name: str, value: int) -> int:
    """A count or size that must be a whole number of at least 1."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise CourseError(f"{name} must be a whole number of at least 1, got {value!r}")
    return value


def non_negative(name: str, value: int) -> int:
    """A count that may be 0 (workers, epochs of pretraining)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise CourseError(f"{name} must be a whole number of at least 0, got {value!r}")
    return value


def finite(name: str, value: float, minimum: float | None = None, above: bool = False) -> float:
    """A float that must be finite, and at least (or above, with `above`) `minimum` if given."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise CourseError(f"{name} must be a finite number, got {value!r}")
    if minimum is not None and (value <= minimum if above else value < minimum):
        bound = f"above {minimum:g}" if above else f"at least {minimum:g}"
        raise CourseError(f"{name} must be {bound}, got {value!r}")
    return float(value)


def arg(check: Callable, kind: type = int, **options) -> Callable[[str], object]:
    """An argparse `type` that parses a value and runs a check on it: `arg(positive)`."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected {'a whole number' if kind is int else 'a number'}, got {text!r}"
            ) from None
        try:
            return check("the value", value, **options)
        except CourseError as err:
            raise argparse.ArgumentTypeError(str(err).removeprefix("the value ")) from None

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


def device(name: str | torch.device | None) -> torch.device:
    """A torch device that exists on this machine (None: CUDA if there is one, else the CPU)."""
    import torch  # here, so that the tools that need no torch start fast

    from helpers.environment import best_device

    if name is None:
        return best_device()
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError):
        raise CourseError(f"--device {name}: not a device name (cpu, cuda, cuda:1, mps)") from None
    if dev.type == "cuda":
        count = torch.cuda.device_count()
        if count == 0:
            raise CourseError(f"--device {name}: no CUDA GPU on this machine; use --device cpu")
        if dev.index is not None and dev.index >= count:
            raise CourseError(f"--device {name}: this machine has {count} CUDA GPU(s)")
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if not (mps and mps.is_available()):
            raise CourseError(f"--device {name}: no Apple GPU (MPS) here; use --device cpu")
    elif dev.type != "cpu":
        raise CourseError(f"--device {name}: the course runs on cpu, cuda or mps")
    return dev


def _probe(folder: Path, what: Path) -> None:
    """Write and remove a file in `folder`, so a read-only place fails now, not after the work."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".write-test.", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise CourseError(f"{what}: cannot write there ({err.strerror or err})") from None


def writable_folder(
    path: str | os.PathLike, inputs: Iterable[str | os.PathLike] = (), create: bool = True
) -> Path:
    """An output folder: created if missing, writable, and not one of the inputs.

    create=False, for tools that build beside the target and rename it into place: then only the
    folder above is created and probed.
    """
    path = Path(path)
    _not_an_input(path, inputs)
    if path.exists() and not path.is_dir():
        raise CourseError(f"{path}: is a file, but an output folder is needed here")
    if not create and not path.exists():
        writable_file(path)  # the folder above exists (or is made) and takes new entries
        return path
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CourseError(
            f"{path}: cannot create the output folder ({err.strerror or err})"
        ) from None
    _probe(path, path)
    return path


def writable_file(path: str | os.PathLike, inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """An output file: its folder created and writable, itself no folder and none of the inputs."""
    path = Path(path)
    _not_an_input(path, inputs)
    if path.is_dir():
        raise CourseError(f"{path}: is a folder, but an output file is needed here")
    parent = path.parent
    for above in (parent, *parent.parents):
        if above.exists():
            if not above.is_dir():
                raise CourseError(f"{path}: cannot be written, {above} is a file")
            break
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise CourseError(f"{path}: cannot create its folder ({err.strerror or err})") from None
    _probe(parent, path)
    return path


def _not_an_input(path: Path, inputs: Iterable[str | os.PathLike]) -> None:
    """Refuse an output that would overwrite (or sit inside) one of the inputs."""
    target = path.resolve()
    for given in inputs:
        source = Path(given).resolve()
        if target == source:
            raise CourseError(f"{path}: is also an input; writing it would overwrite that input")
        if source.is_dir() and source in target.parents:
            raise CourseError(f"{path}: is inside the input folder {given}; choose another place")
        if target in source.parents:
            raise CourseError(f"{path}: holds the input {given}; choose a folder outside it")


def warn(message: str) -> None:
    """A legal value that is probably a mistake: one line on stderr, and the work goes on."""
    print(f"warning: {message}", file=sys.stderr)
