"""The token command (DESIGN.md pinned 15): ``flyteauth-token`` and ``python -m flyteauth_jupyter.token``.

``flyteauth-token [--endpoint URL] [--insecure] [--login] [--format token|header|json]`` prints the
access token for the endpoint, and nothing else, to stdout. It reads the same token cache as the
notebook (:func:`flyteauth_jupyter.stores.make_store`: the keyring in both SDK layouts, or the
``FLYTEAUTH_TOKEN_CACHE=file`` cache) and refreshes silently first when the token is near expiry,
under the cache's cross-process lock. Without ``--endpoint`` it reads flytekit's and the Flyte 2 SDK's
configuration as ``%flyte_login`` does (:func:`flyteauth_jupyter.sdk_config.read_sdk_settings`),
including their identity-aware proxy command (sent to the endpoint only, as ``proxy-authorization``).

With no usable session it writes one sentence to stderr, nothing to stdout, and exits 1. It never
prompts unless ``--login`` is given: then it runs a device-code sign-in in the terminal, its text on
stderr. Made to be flytekit's ``command`` auth mode, the Flyte 2 SDK's ``ExternalCommand`` and
``curl -H "Authorization: Bearer $(flyteauth-token)"``. Nothing here logs or prints a token except
the one line on stdout that is the command's purpose.

The fast path (:func:`cached_token`, issue 19.2): with ``--format token`` (the default) and a fresh
token in the cache, the command reads the store directly and prints the token, importing neither
requests, urllib3, the flows nor the authenticators (flytekit's ``command`` mode and the Flyte 2
SDK's ``ExternalCommand`` run it on every refresh, shell scripts on every call). It follows the
stores' read rules: a read never writes, so a keyring whose two layouts disagree or are mid-write
(a read that would reconcile them), tokens parked in the file cache while the keyring failed, a
file cache that is refused, a token within its refresh margin (``lifecycle.margin.needs_refresh``,
the same rule as ``get_credentials()``), an argument it does not know, or any error at all send
the command down the full path above, which does all of that as before.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import IO, TYPE_CHECKING

if TYPE_CHECKING:
    import argparse

    from .credentials import Credentials

# argparse, json, logging, pathlib and the package's modules are imported where they are used: the
# fast path (cached_token) imports only what reading one store needs.

EXIT_OK = 0
EXIT_NO_SESSION = 1
FORMATS = ("token", "header", "json")


def _parser() -> argparse.ArgumentParser:
    import argparse

    parser = argparse.ArgumentParser(
        prog="flyteauth-token",
        description="Print the access token of the notebook's Flyte sign-in (refreshed when near expiry).",
    )
    parser.add_argument("--endpoint", metavar="URL", help="The Flyte endpoint (default: flytekit's or flyte's config).")
    parser.add_argument("--insecure", action="store_true", help="Plain HTTP to the endpoint (as flytekit's insecure).")
    parser.add_argument("--login", action="store_true",
                        help="Sign in with a device code in this terminal when there is no usable session.")
    parser.add_argument("--format", choices=FORMATS, default="token",
                        help="token (default): the token; header: 'key: Bearer <token>'; json: an object.")
    return parser


def _fail(stderr: IO[str], sentence: str) -> int:
    stderr.write(sentence.rstrip() + "\n")
    stderr.flush()
    return EXIT_NO_SESSION


def _build(args: argparse.Namespace):  # -> DeviceCodeAuthenticator (lazy imports keep --help fast)
    from pathlib import Path

    from .authenticators import DeviceCodeAuthenticator
    from .config import RemoteClientConfigStore
    from .endpoint import parse_endpoint, same_service
    from .errors import ConfigurationError
    from .sdk_config import read_sdk_settings
    from .stores import make_store

    # An explicit --endpoint needs no configuration file: a broken one is skipped, not fatal (issue 16).
    settings = read_sdk_settings(strict=not args.endpoint)
    raw = args.endpoint or settings.endpoint
    if not raw:
        raise ConfigurationError(
            "No Flyte endpoint: pass --endpoint URL, or set FLYTE_PLATFORM_URL (flytekit) or "
            "FLYTE_ADMIN_ENDPOINT / admin.endpoint in ~/.flyte/config.yaml."
        )
    insecure = bool(args.insecure) or (not args.endpoint and settings.insecure)
    endpoint = parse_endpoint(raw, insecure=insecure)
    same = same_service(settings.endpoint, endpoint.service)
    verify: bool | str | None = None
    if same and settings.insecure_skip_verify:
        verify = False
    elif same and settings.ca_cert_file_path:
        verify = str(Path(settings.ca_cert_file_path).expanduser())
    proxy = settings.http_proxy_url if same else None
    proxy_auth = None
    if same and settings.proxy_command:  # behind an identity-aware proxy: for this endpoint's requests only
        from .proxy import ProxyAuth

        proxy_auth = ProxyAuth.from_settings(settings, endpoint=endpoint.url, insecure=insecure)
    cfg_store = RemoteClientConfigStore(endpoint.url, insecure=insecure, verify=verify, http_proxy_url=proxy,
                                        proxy_auth=proxy_auth)
    # The bare token needs no header key: naming one spares the server's metadata documents a fetch
    # (they are read only when a refresh or --login needs them).
    header_key = "authorization" if args.format == "token" else None
    return DeviceCodeAuthenticator(
        endpoint.url, cfg_store, header_key=header_key, http_proxy_url=proxy, verify=verify, insecure=insecure,
        client_id=(settings.client_id if same else None), scopes=(list(settings.scopes) if same and settings.scopes else None),
        store=make_store(),  # no observer: a silent refresh prints nothing (see --login)
        proxy_auth=proxy_auth,
    )


def _usable(creds) -> bool:  # noqa: ANN001
    if creds is None or not creds.access_token:
        return False
    left = creds.lifetime_left()
    return left is None or left > 0


def _render(fmt: str, auth, creds) -> str:  # noqa: ANN001
    if fmt == "token":
        return creds.access_token
    import json

    if fmt == "header":
        return f"{auth.header_key}: Bearer {creds.access_token}"
    return json.dumps({
        "access_token": creds.access_token,
        "token_type": "Bearer",
        "expires_at": creds.expires_at,
        "header_key": auth.header_key,
        "endpoint": auth.service,
    })


def main(argv: Sequence[str] | None = None, *, stdout: IO[str] | None = None, stderr: IO[str] | None = None) -> int:
    """Run the command; returns the exit status (0: token printed, 1: no usable session or an error)."""
    out = stdout or sys.stdout
    err = stderr or sys.stderr
    token = cached_token(sys.argv[1:] if argv is None else argv)
    if token is not None:
        out.write(token + "\n")
        out.flush()
        return EXIT_OK
    import logging

    from .errors import FlyteAuthError

    args = _parser().parse_args(argv)
    # The library's warnings (e.g. a refresh that failed) must not add lines to the one-sentence contract.
    library_log = logging.getLogger("flyteauth_jupyter")
    library_log.addHandler(logging.NullHandler())
    library_log.propagate = False
    try:
        auth = _build(args)
        creds = auth.get_credentials()  # silent refresh near expiry, under the cross-process lock
        if not _usable(creds) and creds is not None and creds.refresh_token:
            try:
                creds = auth.refresh_credentials(interactive=False)
            except FlyteAuthError:
                creds = auth.get_credentials()
        if not _usable(creds):
            if not args.login:
                return _fail(err, (
                    f"No usable sign-in for {auth.service} (none saved, or it expired and could not be renewed); "
                    "run %flyte_login in a notebook or flyteauth-token --login."
                ))
            from .flows.events import TextObserver

            auth.observer = TextObserver(err)  # the device code and the outcome, on stderr
            creds = auth.refresh_credentials(interactive=True)
            if not _usable(creds):
                return _fail(err, f"The sign-in to {auth.service} ended without a token.")
        line = _render(args.format, auth, creds)
    except FlyteAuthError as exc:
        return _fail(err, str(exc) or type(exc).__name__)
    except KeyboardInterrupt:
        return _fail(err, "Interrupted.")
    out.write(line + "\n")
    out.flush()
    return EXIT_OK


# ---------------------------------------------------------------------------------------- fast path
def _fast_args(argv: Sequence[str]) -> tuple[str | None, bool] | None:
    """``(--endpoint or None, --insecure)`` when ``argv`` asks for the bare token in a form the fast
    path knows (each option at most once, written out in full); None for anything else (``--help``,
    another format, an abbreviation, an unknown or repeated option: argparse decides those)."""
    endpoint: str | None = None
    seen: set[str] = set()
    items = list(argv)
    i = 0
    while i < len(items):
        item = items[i]
        name, eq, value = item.partition("=")
        if name not in ("--endpoint", "--insecure", "--login", "--format") or name in seen:
            return None
        seen.add(name)
        if name in ("--insecure", "--login"):
            if eq:
                return None
            i += 1
            continue
        if not eq:
            if i + 1 >= len(items):
                return None
            value = items[i + 1]
            i += 1
        i += 1
        if not value or value.startswith("-"):
            return None
        if name == "--format" and value != "token":
            return None
        if name == "--endpoint":
            endpoint = value
    return endpoint, "--insecure" in seen


def cached_token(argv: Sequence[str]) -> str | None:
    """The access token to print when the cache holds a fresh one and nothing about this run is
    unusual (see the module docstring); None: take the full path. Reads only, never raises, never
    logs, never refreshes, never writes."""
    try:
        parsed = _fast_args(argv)
        if parsed is None:
            return None
        creds = _cached(*parsed)
        if creds is None or not creds.access_token:
            return None
        import time

        from .lifecycle.margin import needs_refresh

        return None if needs_refresh(creds, time.time()) else creds.access_token
    except Exception:  # noqa: BLE001 - whatever went wrong, the full path does it properly
        return None


def _cached(endpoint: str | None, insecure: bool) -> Credentials | None:
    """The credentials the full path's store would load for the endpoint, when reading them needs no
    write (None otherwise). The endpoint and the store are chosen as ``_build`` and ``make_store`` do."""
    from .endpoint import parse_endpoint
    from .stores.base import TOKEN_CACHE_ENV, TOKEN_CACHE_KINDS

    if endpoint is None:
        from .sdk_config import read_sdk_settings

        settings = read_sdk_settings(strict=True)
        endpoint, insecure = settings.endpoint, bool(insecure) or settings.insecure
        if not endpoint:
            return None
    name = parse_endpoint(endpoint, insecure=insecure).service
    kind = (os.environ.get(TOKEN_CACHE_ENV, "") or "").strip().lower() or "auto"
    if kind not in TOKEN_CACHE_KINDS or kind == "memory":  # memory: nothing survives a process
        return None
    from .stores.files import FileStore

    if kind == "file":
        return FileStore().peek(name)  # None when absent, unreadable or refused: the full path says why
    import keyring

    from .stores.backends import Unusable, usable_backend

    try:
        backend = usable_backend(keyring.get_keyring())
    except Unusable:
        return FileStore().peek(name) if kind == "auto" else None  # auto: make_store's file cache
    if FileStore().peek(name) is not None:
        return None  # tokens parked in the file cache while the keyring failed: the full path moves them
    from .stores.keyring_store import KeyringStore
    from .stores.layouts import decide

    # KeyringStore.load without its write: the layouts' decision, refused when it would rewrite them
    decision = decide(KeyringStore(keyring=backend, fallback=FileStore())._snapshot(backend, name))
    return None if decision.rewrite else decision.creds


if __name__ == "__main__":  # python -m flyteauth_jupyter.token
    sys.exit(main())
