"""How a package's __init__ re-exports its modules' names: lazily, so that a name's module is
imported when the name is first used. `python -m helpers.data.tiny_coco` then imports neither the
whole layer nor that module twice, and `from helpers.data import build_vocabulary` still works."""

from __future__ import annotations

import importlib
import pkgutil
import sys
from collections.abc import Callable


def lazy_exports(
    package: str, modules: dict[str, tuple[str, ...]]
) -> tuple[list[str], Callable[[str], object], Callable[[], list[str]]]:
    """`__all__`, `__getattr__` and `__dir__` for a package that re-exports `modules`' names."""
    where = {name: module for module, names in modules.items() for name in names}
    # A name that is also a submodule's would hide the module once either is imported.
    submodules = {m.name for m in pkgutil.iter_modules(sys.modules[package].__path__)}
    if where.keys() & submodules:
        raise ValueError(f"{package} re-exports {sorted(where.keys() & submodules)}, also modules")

    def __getattr__(name: str) -> object:
        if name not in where:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(f"{package}.{where[name]}"), name)
        setattr(sys.modules[package], name, value)  # found once, then a plain attribute
        return value

    def __dir__() -> list[str]:
        return sorted(set(where) | set(vars(sys.modules[package])))

    return sorted(where), __getattr__, __dir__
