"""PEP 562 lazy attributes for this package's ``__init__`` modules, written once.

A package whose import must stay light (``import flyteauth_jupyter``, ``%load_ext``, the token
command's fast path) keeps a table of public name -> defining submodule and calls :func:`attach`;
each name is imported on first use and then kept in the module's globals, so later lookups are
plain attribute reads. Lighter than the ``lazy_loader`` package and without its dependency.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Mapping
from typing import Any


def attach(
    package: str, table: Mapping[str, str], namespace: dict[str, Any], *, listed: Iterable[str] = ()
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``__getattr__, __dir__ = attach(__name__, _LAZY, globals())``.

    ``table`` maps a public name to its submodule, relative to ``package`` (``".held"``); ``listed``
    adds names ``dir()`` shows besides the table's and the module's own.
    """
    shown = frozenset(listed) | frozenset(table)

    def __getattr__(name: str) -> Any:
        module = table.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module, package), name)
        namespace[name] = value  # later lookups skip __getattr__
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | shown)

    return __getattr__, __dir__
