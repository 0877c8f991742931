"""The notebook layer: ``%flyte_login`` and friends, the live login widget, and the waitable session.

Imported only by ``flyteauth_jupyter.load_ipython_extension`` (nothing below imports this layer).
:mod:`.state` is the pure view model, :mod:`.render` draws it (HTML, text, displays), :mod:`.widget`
is the ipywidgets panel, :mod:`.session` the object bound in the namespace and its background runner,
:mod:`.connect` turns options into an authenticator (``flyteauth_jupyter.environment`` picks the
flow), :mod:`.flytekit_config` reads flytekit's settings, and :mod:`.magics` is the IPython glue:
the magics class, with :mod:`.options` (a magic's line -> ``LoginSpec``) and :mod:`.names` (which
session each name points to) beside it.

Loading registers the magics only: the modules that send (connect, the authenticators, transport)
are imported by the first ``%flyte_login``/``%flyte_logout``, ipywidgets by the first widget.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .magics import FlyteAuthMagics, load_ipython_extension, unload_ipython_extension

__all__ = ["FlyteAuthMagics", "load_ipython_extension", "unload_ipython_extension"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import magics

        return getattr(magics, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
