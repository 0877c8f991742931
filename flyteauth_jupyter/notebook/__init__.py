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

from typing import TYPE_CHECKING

from .._lazy import attach

if TYPE_CHECKING:
    from .magics import FlyteAuthMagics, load_ipython_extension, unload_ipython_extension

__all__ = ["FlyteAuthMagics", "load_ipython_extension", "unload_ipython_extension"]


__getattr__, __dir__ = attach(__name__, dict.fromkeys(__all__, ".magics"), globals())
