"""The shape of helpers/: layers that import only downward, no import circles (imports inside
functions counted), short modules, __init__ files that only re-export, one registry per choice,
and every command the README shows answering --help under its own name."""

from __future__ import annotations

import ast
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

import helpers
from helpers.models.registry import DECODERS

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "helpers"
LAYERS = ("data", "models", "train", "caption", "evaluate")


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports() -> dict[str, set[str]]:
    """Each module of helpers/ and the modules of helpers/ it imports, anywhere in its code."""
    modules = {_module(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for name, path in modules.items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for target in targets:
                while target and target not in modules:
                    target = target.rpartition(".")[0]
                # A module's own packages (their __init__) are not an import of substance.
                if target and target.startswith("helpers") and not name.startswith(target + "."):
                    if target != name:
                        graph[name].add(target)
    return graph


def test_the_package_has_its_layers_as_subpackages():
    for layer in LAYERS:
        assert (PACKAGE / layer / "__init__.py").is_file(), layer
    flat = sorted(p.stem for p in PACKAGE.glob("*.py") if p.stem != "__init__")
    assert flat == ["checks", "course", "distributed", "environment", "errors", "exports"] + [
        "files",
        "notebook",
    ]


def test_no_import_circles_counting_imports_inside_functions():
    graph = _imports()
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(module: str, path: list[str]) -> None:
        state[module] = 1
        for target in sorted(graph[module]):
            if state.get(target) == 1:
                circle = path[path.index(target) :] + [target]
                pytest.fail("import circle: " + " -> ".join(circle))
            if target not in state:
                visit(target, [*path, target])
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module, [module])


def test_layers_import_only_downward_even_inside_functions():
    rank = {f"helpers.{layer}": k for k, layer in enumerate(LAYERS)}
    rank["helpers.course"] = len(LAYERS)

    def layer(module: str) -> int:  # the shared modules (errors, checks, plots...) are below all
        return next(
            (r for name, r in rank.items() if module == name or module.startswith(name + ".")), -1
        )

    upward = [
        f"{m} -> {t}" for m, targets in _imports().items() for t in targets if layer(t) > layer(m)
    ]
    assert upward == []


def test_no_module_is_over_500_lines():
    long = {
        str(p.relative_to(ROOT)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 500
    }
    assert long == {}


def test_package_inits_only_re_export_names_that_exist():
    for init in PACKAGE.glob("*/__init__.py"):
        body = ast.parse(init.read_text()).body
        kinds = {type(node).__name__ for node in body[1:]}  # after the docstring
        assert kinds <= {"ImportFrom", "Assign"}, init
        package = __import__(_module(init), fromlist=["__all__"])
        for name in package.__all__:
            assert getattr(package, name) is not None, f"{package.__name__}.{name}"
    assert helpers.__all__ == ["CourseError"]


def test_decoder_and_dataset_names_are_compared_only_in_their_registries():
    names = {*DECODERS, "tiny_video", "tiny", "coco2014", "coco2017-val"}
    allowed = {PACKAGE / "models" / "registry.py", PACKAGE / "data" / "registry.py"}
    found = []
    for path in sorted(set(PACKAGE.rglob("*.py")) - allowed):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Compare):
                parts = [node.left, *node.comparators]
                strings = {p.value for p in parts if isinstance(p, ast.Constant)}
                strings |= {
                    e.value
                    for p in parts
                    if isinstance(p, ast.Tuple | ast.List | ast.Set)
                    for e in p.elts
                    if isinstance(e, ast.Constant)
                }
                if strings & names:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == []


def test_lint_imports_keeps_the_contracts():
    lint = shutil.which("lint-imports")
    if lint is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]' installs it)")
    done = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-2000:]
    assert "0 broken" in done.stdout


def test_a_layer_importing_upward_breaks_a_contract(tmp_path):
    """The contracts can fail: a copy of helpers/ whose data layer imports training is refused."""
    lint = shutil.which("lint-imports")
    if lint is None:
        pytest.skip("import-linter is not installed (pip install -e '.[test]' installs it)")
    shutil.copytree(PACKAGE, tmp_path / "helpers", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "pyproject.toml", tmp_path)
    paths = tmp_path / "helpers" / "data" / "paths.py"
    paths.write_text(
        paths.read_text() + "\n\ndef _up():\n    from helpers.train.config import TrainConfig\n"
    )
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run(
        [lint], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode != 0
    assert "BROKEN" in done.stdout and "helpers.data.paths -> helpers.train.config" in done.stdout


def _readme_commands() -> list[str]:
    return sorted(
        set(re.findall(r"python -m (helpers(?:\.\w+)+)\b(?!\.<)", (ROOT / "README.md").read_text()))
    )


def test_every_readme_command_answers_help_under_its_own_name():
    commands = _readme_commands()
    assert {"helpers.train", "helpers.caption", "helpers.evaluate", "helpers.course"} <= set(
        commands
    )

    def run(command: str) -> tuple[str, subprocess.CompletedProcess]:
        done = subprocess.run(
            [sys.executable, "-m", command, "--help"], capture_output=True, text=True, timeout=300
        )
        return command, done

    with ThreadPoolExecutor(4) as pool:
        for command, done in pool.map(run, commands):
            assert done.returncode == 0, f"{command}: {done.stderr[-500:]}"
            assert done.stdout.startswith(f"usage: python -m {command} "), command
            # Nothing on stderr: no warning that the module was imported twice (runpy's).
            assert done.stderr == "", f"{command}: {done.stderr[-500:]}"


def test_every_notebook_names_the_same_kernel_and_language():
    import json

    metadata = {
        p.name: json.loads(p.read_text())["metadata"]
        for p in sorted(ROOT.glob("notebooks/*.ipynb"))
    }
    kernels = {json.dumps(m.get("kernelspec"), sort_keys=True) for m in metadata.values()}
    languages = {json.dumps(m.get("language_info"), sort_keys=True) for m in metadata.values()}
    assert len(kernels) == 1 and "python3" in kernels.pop()
    assert len(languages) == 1
