"""The course's one exception type and the command-line wrapper that prints it."""

from __future__ import annotations

import sys
from collections.abc import Callable


class CourseError(Exception):
    """A problem the user can fix, described in one line naming the file and what is wrong."""


def run_cli(main: Callable[[list[str] | None], int | None], argv: list[str] | None = None) -> None:
    """Run a command-line entry point; print a CourseError as one line and exit non-zero."""
    try:
        code = main(argv)
    except CourseError as err:
        print(f"error: {err}", file=sys.stderr)
        sys.exit(2)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(code or 0)
