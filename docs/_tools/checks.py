"""The documentation build's own checks (run by docs/_tools/hooks.py during `make docs`).

- ``api``: every pinned public name (DESIGN.md, "Public surface") resolves through its public path and
  has a docstring, and so does each of its public methods (its own, or the one of the method it
  overrides: the reference shows that one). The magics are checked in their source, since
  IPython's ``magic_arguments`` writes a usage text into every magic's ``__doc__``. It also renders
  the generated parts of the reference (the magics' usage and ``%config`` traits), so that the page
  is built from the same objects users get. Run in a subprocess of the build with the site's folder
  first on ``sys.path``, so a temporary copy of the tree is checked as itself, not as the installed
  package.
- ``external_references(site_dir)``: every URL in the built HTML and CSS that would make a browser
  (or a reader's click) contact another origin. The site must work offline: no fonts, scripts,
  styles, images or links from elsewhere.

``python docs/_tools/checks.py api`` prints the API findings as JSON (for the hook);
``python docs/_tools/checks.py site DIR`` lists external references and exits 1 when there are any.
"""

from __future__ import annotations

import ast
import inspect
import json
import re
import sys
import textwrap
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

#: The pinned names (DESIGN.md "Public surface"), by their public paths. The reference page
#: (docs/reference.md) must show each of them with a ``::: <path>`` block.
PINNED = [
    *(
        f"flyteauth_jupyter.{name}"
        for name in (
            "Authenticator", "ClientConfig", "ClientConfigStore", "StaticClientConfigStore",
            "RemoteClientConfigStore", "IssuerClientConfigStore", "ClientCredentialsAuthenticator",
            "CommandAuthenticator",
            "DeviceCodeAuthenticator", "PKCEAuthenticator", "Credentials", "KeyringStore",
            "FlyteAuthError", "AuthenticationError", "AccessTokenNotFoundError", "AuthenticationPending",
        )
    ),
    "flyteauth_jupyter.clients.BearerAuth",
    "flyteauth_jupyter.clients.grpc_call_credentials",
]
#: The magics: the class users configure (``%config FlyteAuthMagics``) and its magic methods.
MAGICS = "flyteauth_jupyter.notebook.FlyteAuthMagics"
MAGIC_DECORATORS = {"line_magic", "cell_magic", "line_cell_magic"}
#: Properties are not methods: they are shown in the reference with or without a docstring. Turn this
#: on to require their docstrings too.
CHECK_PROPERTIES = False
PACKAGE = "flyteauth_jupyter"


def resolve(path: str) -> Any:
    """The object at a dotted public path (``pkg.mod.Name``), imported as a user would."""
    import importlib

    module_name, _, attr = path.rpartition(".")
    return getattr(importlib.import_module(module_name), attr)


def _source_tree(obj: Any) -> ast.AST | None:
    try:
        source = inspect.getsource(obj)
    except (OSError, TypeError):
        return None
    return ast.parse(textwrap.dedent(source))


def _decorators(node: ast.FunctionDef | ast.AsyncFunctionDef) -> set[str]:
    names = set()
    for dec in node.decorator_list:
        target = dec.func if isinstance(dec, ast.Call) else dec
        if isinstance(target, ast.Attribute):
            names.add(target.attr)
        elif isinstance(target, ast.Name):
            names.add(target.id)
    return names


def _class_members(cls: type) -> dict[str, tuple[str, bool]]:
    """name -> (kind, has a docstring) for the public methods and properties ``cls`` defines itself."""
    tree = _source_tree(cls)
    members: dict[str, tuple[str, bool]] = {}
    if tree is None:
        return members
    classdef = next((n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)), None)
    for node in classdef.body if classdef else []:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not node.name.startswith("_"):
            decorators = _decorators(node)
            if decorators & {"setter", "deleter"}:
                continue
            kind = "property" if decorators & {"property", "cached_property"} else "method"
            members.setdefault(node.name, (kind, bool(ast.get_docstring(node))))
    return members


def _own_docstring(obj: Any) -> bool:
    tree = _source_tree(obj)
    if tree is None:  # no source (a builtin): whatever __doc__ says
        return bool(getattr(obj, "__doc__", None))
    node = next((n for n in ast.walk(tree) if isinstance(n, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))), None)
    return node is not None and bool(ast.get_docstring(node))


def missing_docstrings(paths: list[str] = PINNED, magics: str = MAGICS) -> list[str]:
    """One line per pinned name, public method (or magic) without a docstring; [] when all have one."""
    missing: list[str] = []
    for path in paths:
        try:
            obj = resolve(path)
        except (ImportError, AttributeError) as exc:
            missing.append(f"{path}: cannot be imported through its public path ({type(exc).__name__}: {exc})")
            continue
        if not _own_docstring(obj):
            missing.append(f"{path}: no docstring")
        if not inspect.isclass(obj):
            continue
        ours = [k for k in obj.__mro__ if k.__module__.split(".")[0] == PACKAGE]
        documented: dict[str, bool] = {}
        for klass in reversed(ours):  # bases first: an override may take its base's docstring
            for name, (kind, has_doc) in _class_members(klass).items():
                if kind == "property" and not CHECK_PROPERTIES:
                    continue
                documented[name] = has_doc or documented.get(name, False)
        # a method counts where the class resolves it: the most derived definition decides
        for name in sorted(documented):
            if not documented[name]:
                owner = next(k for k in ours if name in vars(k))
                missing.append(f"{path}.{name}: no docstring (defined in {owner.__module__}.{owner.__qualname__})")
    try:
        cls = resolve(magics)
    except (ImportError, AttributeError) as exc:
        return [*missing, f"{magics}: cannot be imported through its public path ({type(exc).__name__}: {exc})"]
    if not _own_docstring(cls):
        missing.append(f"{magics}: no docstring")
    tree = _source_tree(cls)
    classdef = next((n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)), None) if tree else None
    found = 0
    for node in classdef.body if classdef else []:
        if isinstance(node, ast.FunctionDef) and _decorators(node) & MAGIC_DECORATORS:
            found += 1
            if not ast.get_docstring(node):
                missing.append(f"%{node.name} ({magics}.{node.name}): no docstring")
    if not found:
        missing.append(f"{magics}: no magics found in its source")
    return missing


def magics_reference(magics: str = MAGICS) -> dict[str, str]:
    """Markdown for the reference page, generated from the magics class: one usage block per magic
    (what ``%flyte_login?`` prints) and the table of ``%config`` traits."""
    cls = resolve(magics)
    out: dict[str, str] = {}
    for name in sorted(cls.magics.get("line", {})):
        method = getattr(cls, cls.magics["line"][name])
        doc = inspect.cleandoc(method.__doc__ or "")
        if doc.startswith("::"):  # magic_arguments' usage text: show it as %name? prints it
            out[f"usage:{name}"] = f"```text\n{doc.removeprefix('::').strip(chr(10))}\n```"
        else:  # a magic without arguments: its usage line, then its docstring
            out[f"usage:{name}"] = f"```text\n%{name}\n```\n\n{doc}"
    rows = ["| trait | type | default | what it does |", "|---|---|---|---|"]
    for trait_name, trait in sorted(cls.class_traits(config=True).items()):
        default = trait.default_value
        help_text = " ".join((trait.help or "").split()).replace("|", "\\|")
        rows.append(f"| `{trait_name}` | {type(trait).__name__} | `{default!r}` | {help_text} |")
    out["traits"] = "\n".join(rows)
    return out


# -- the built site: nothing from another origin ------------------------------------------------------

#: attributes whose URL a browser loads or follows (``href`` of ``<a>`` too: a reader offline gets
#: nowhere, and nothing in these docs needs another site)
URL_ATTRIBUTES = {"href", "src", "srcset", "data", "poster", "action", "formaction", "background", "content", "xlink:href"}
EXTERNAL = re.compile(r"^\s*(?:[a-zA-Z][a-zA-Z0-9+.-]*:)?//", re.ASCII)
CSS_URL = re.compile(r"""url\(\s*['"]?([^'")]+)|@import\s+['"]([^'"]+)""")


def _css_externals(text: str) -> list[str]:
    return [u for pair in CSS_URL.findall(text) for u in pair if u and EXTERNAL.match(u)]


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._in_style = tag == "style"
        for name, value in attrs:
            if not value:
                continue
            if name == "style":
                self.found += [f"<{tag} style> {u}" for u in _css_externals(value)]
            elif name in URL_ATTRIBUTES:
                urls = [part.strip().split(" ")[0] for part in value.split(",")] if name == "srcset" else [value]
                if name == "content" and not any(EXTERNAL.match(u) for u in urls):
                    continue
                self.found += [f"<{tag} {name}> {u}" for u in urls if EXTERNAL.match(u)]

    def handle_endtag(self, tag: str) -> None:
        if tag == "style":
            self._in_style = False

    def handle_data(self, data: str) -> None:
        if self._in_style:
            self.found += [f"<style> {u}" for u in _css_externals(data)]


def external_references(site_dir: Path) -> list[str]:
    """``file: where url`` for every reference to another origin in the built HTML and CSS."""
    found: list[str] = []
    for path in sorted(site_dir.rglob("*")):
        if path.suffix == ".html":
            collector = _Collector()
            collector.feed(path.read_text(encoding="utf-8", errors="replace"))
            found += [f"{path.relative_to(site_dir)}: {item}" for item in collector.found]
        elif path.suffix == ".css":
            text = path.read_text(encoding="utf-8", errors="replace")
            found += [f"{path.relative_to(site_dir)}: {u}" for u in _css_externals(text)]
    return found


def main(argv: list[str]) -> int:
    if argv[:1] == ["api"]:
        missing = missing_docstrings()
        try:
            generated = magics_reference()
        except Exception as exc:  # noqa: BLE001 - reported as a finding, the build fails on it
            generated = {}
            missing.append(f"{MAGICS}: the reference cannot be generated ({type(exc).__name__}: {exc})")
        print(json.dumps({"missing": missing, "generated": generated}))
        return 0
    if argv[:1] == ["site"] and len(argv) == 2:
        found = external_references(Path(argv[1]))
        print("\n".join(found))
        return 1 if found else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
