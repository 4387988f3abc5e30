"""Run every notebook of the course headless, in order, into data_dir/executed/."""

from __future__ import annotations

import ast
import difflib
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError

from helpers.checks import arg, parser, positive, writable_folder
from helpers.data.paths import data_dir
from helpers.errors import CourseError, run_cli

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"


def notebook_paths(folder: Path = NOTEBOOKS, only: list[str] | None = None) -> list[Path]:
    """The course's numbered notebooks in order, optionally only those whose name starts with `only`."""
    paths = sorted(p for p in folder.glob("[0-9][0-9]_*.ipynb"))
    if only:
        paths = [p for p in paths if any(p.name.startswith(o) for o in only)]
    if not paths:
        raise CourseError(f"{folder}: no notebooks found" + (f" matching {only}" if only else ""))
    return paths


def parameter_names(nb: nbformat.NotebookNode) -> set[str]:
    """The names the cell tagged `parameters` sets (none if it has no such cell)."""
    for cell in nb.cells:
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            tree = ast.parse(cell.source)
            return {
                target.id
                for node in tree.body
                if isinstance(node, ast.Assign | ast.AnnAssign)
                for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
                if isinstance(target, ast.Name)
            }
    return set()


def check_parameters(paths: list[Path], params: dict[str, str]) -> None:
    """Each override a Python literal that some notebook's parameters cell sets: one line if not."""
    known = set().union(*(parameter_names(nbformat.read(p, as_version=4)) for p in paths))
    for name, value in params.items():
        if name not in known:
            near = difflib.get_close_matches(name, known, n=3)
            hint = (
                f"did you mean {', '.join(near)}?"
                if near
                else f"they set {', '.join(sorted(known))}"
            )
            raise CourseError(
                f"--param {name}: no parameters cell of these notebooks sets it ({hint})"
            )
        try:
            ast.literal_eval(value)
        except (ValueError, SyntaxError):
            raise CourseError(
                f"--param {name}={value}: not a Python literal (a string needs quotes: "
                f"{name}='\"{value}\"')"
            ) from None


def inject_parameters(nb: nbformat.NotebookNode, params: dict[str, str]) -> None:
    """Add a cell after the one tagged `parameters` that overrides its values (papermill style);
    only the names that cell sets, so one course-wide override leaves other notebooks alone."""
    params = {k: v for k, v in params.items() if k in parameter_names(nb)}
    if not params:
        return
    for i, cell in enumerate(nb.cells):
        if "parameters" in cell.get("metadata", {}).get("tags", []):
            source = "\n".join(f"{k} = {v}" for k, v in params.items())
            new = nbformat.v4.new_code_cell(source, metadata={"tags": ["injected-parameters"]})
            nb.cells.insert(i + 1, new)
            return
    raise CourseError("notebook has no cell tagged 'parameters' to override")


def run_notebook(
    path: Path, out_dir: Path, params: dict[str, str], timeout: int = 600, store: bool = False
) -> float:
    """Execute one notebook (working folder: notebooks/) and save it; return the wall time.

    With `store` the executed notebook also replaces the source, outputs included (for authors).
    """
    nb = nbformat.read(path, as_version=4)
    try:
        inject_parameters(nb, params)
    except CourseError as err:
        raise CourseError(f"{path}: {err}") from None
    client = NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    )
    running = [None]  # the index of the cell being executed, for a timeout's message

    def started(cell, cell_index: int) -> None:
        running[0] = cell_index

    client.on_cell_start = started
    start = time.perf_counter()
    # The kernel process's own stderr (start-up warnings, a crash) goes to a log beside the
    # executed copy, not into the middle of our progress lines; cell output is in the notebook.
    log = out_dir / f"{path.stem}.kernel.log"
    try:
        with open(log, "w") as stderr:
            client.execute(stderr=stderr)
    except CellExecutionError as err:
        failed = next((i for i, c in enumerate(nb.cells) if _has_error(c)), None)
        nbformat.write(nb, out_dir / path.name)
        name = getattr(err, "ename", "error")
        raise CourseError(
            f"{path.name}: cell {failed} failed with {name}: "
            f"{getattr(err, 'evalue', '')} (executed copy: {out_dir / path.name})"
        ) from None
    except CellTimeoutError:
        cell = running[0]
        nbformat.write(nb, out_dir / path.name)
        raise CourseError(
            f"{path.name}: cell {cell} ran longer than {timeout} s (a busy machine? raise "
            f"--timeout; executed copy up to it: {out_dir / path.name}, kernel log: {log})"
        ) from None
    except RuntimeError as err:  # the kernel died or never started: its log says why
        first = (str(err).strip().splitlines() or ["kernel failed"])[0]
        raise CourseError(f"{path.name}: {first} (kernel log: {log})") from None
    clean_outputs(nb)
    nbformat.write(nb, out_dir / path.name)
    if store:
        nbformat.write(nb, path)
    return time.perf_counter() - start


def clean_outputs(nb: nbformat.NotebookNode) -> None:
    """Make stored outputs read like a finished run: a progress bar leaves its last state only.

    A bar redraws itself with carriage returns; in a notebook file every redraw is kept, and
    GitHub shows them all. Consecutive stream outputs are merged and each line keeps the text
    after its last carriage return.
    """
    for cell in nb.cells:
        # Execution timestamps change on every run and say nothing to a reader.
        cell.get("metadata", {}).pop("execution", None)
        merged = []
        for out in cell.get("outputs", []):
            last = merged[-1] if merged else None
            if (
                out.get("output_type") == "stream"
                and last
                and last.get("output_type") == "stream"
                and last["name"] == out["name"]
            ):
                last["text"] += out["text"]
            else:
                merged.append(out)
        for out in merged:
            if out.get("output_type") == "stream":
                lines = out["text"].split("\n")
                out["text"] = "\n".join(
                    line.rstrip("\r").split("\r")[-1].rstrip() for line in lines
                )
        if "outputs" in cell:
            cell["outputs"] = [
                o for o in merged if o.get("output_type") != "stream" or o["text"].strip()
            ]


def _has_error(cell) -> bool:
    return any(o.get("output_type") == "error" for o in cell.get("outputs", []))


def main(argv: list[str] | None = None) -> int:
    p = parser("python -m helpers.course", __doc__)
    p.add_argument(
        "--only", nargs="*", help="run only notebooks whose name starts with these, e.g. 00 03"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where executed copies go (default: data_dir/executed)",
    )
    p.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="override a parameters-cell value (a Python literal), e.g. --param 'DATASET=\"coco2014\"'",
    )
    p.add_argument("--timeout", type=arg(positive), default=600, help="seconds allowed per cell")
    p.add_argument("--folder", type=Path, default=NOTEBOOKS, help="folder of numbered notebooks")
    p.add_argument(
        "--store",
        action="store_true",
        help="write the outputs back into the notebooks themselves (for course authors)",
    )
    args = p.parse_args(argv)
    params = {}
    for item in args.param:
        if "=" not in item:
            raise CourseError(f"--param {item!r}: expected NAME=VALUE")
        k, v = item.split("=", 1)
        params[k.strip()] = v.strip()
    paths = notebook_paths(args.folder, args.only)
    check_parameters(paths, params)
    out_dir = writable_folder(args.out or data_dir() / "executed", inputs=[args.folder])
    total = time.perf_counter()
    for n, path in enumerate(paths, 1):
        print(f"[{n}/{len(paths)}] {path.name} ...", end=" ", flush=True)
        try:
            seconds = run_notebook(path, out_dir, params, args.timeout, args.store)
        except CourseError:
            print("FAILED", flush=True)
            raise
        print(f"ok in {seconds:.1f} s", flush=True)
    print(
        f"all {len(paths)} notebooks ran in {time.perf_counter() - total:.1f} s; executed copies in {out_dir}"
    )
    return 0


if __name__ == "__main__":
    run_cli(main)
