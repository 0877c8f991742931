"""Jupyter server extension: the OAuth redirect relay at ``<base_url>flyteauth/callback``.

Enabled by ``jupyter-config/jupyter_server_config.d/flyteauth_jupyter.json`` (installed with the
package). The handler requires Jupyter's own login, writes the redirect's query for the waiting
kernel (see ``flyteauth_jupyter.transport.relay`` for the hand-off and why it is a file) and shows a
short page telling the user to return to the notebook. It never shows or logs the code.
"""

from __future__ import annotations

from typing import Any


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "flyteauth_jupyter.server"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    from .handlers import setup_handlers

    setup_handlers(serverapp.web_app)
    serverapp.log.info("flyteauth_jupyter: OAuth redirect relay at %sflyteauth/callback", serverapp.base_url)


# Older name some jupyter_server versions look for.
load_jupyter_server_extension = _load_jupyter_server_extension
