"""The cell's options: a magic's line read (quotes, ``--help``, parse errors) and ``%flyte_login``'s
options turned into a :class:`~.connect.LoginSpec` (:func:`build_spec`).

Everything here runs in the cell, on the kernel's main thread, and sends nothing: the endpoint is
parsed once, the ``%config FlyteAuthMagics`` traits and the SDKs' settings fill what the line left
out, and what can be refused without the network (a bad URL, an empty ``--client-secret-env``, a CA
bundle that is not there) is one sentence here rather than in the background. The spec holds no
secret. Stop 2 of docs/architecture.md's "The path of %flyte_login".

``--proxy-command`` takes one (quoted) command line, so that it can stand beside ``--command``, which
must come last. Imported when the extension loads, so it imports nothing heavy at the top: the
endpoint parser, the SDKs' settings and ``LoginSpec`` (connect.py) are imported inside
:func:`build_spec`.
"""

from __future__ import annotations

import argparse
import os
import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import parse_argstring

from ..errors import ConfigurationError, scrub
from ..validate import scope_list, user_seconds

if TYPE_CHECKING:
    from .connect import LoginSpec
    from .magics import FlyteAuthMagics


def read_line(magic: Any, line: str) -> argparse.Namespace:
    """The magic's arguments from ``line``: parsed (:func:`parse_args`) and unquoted (:func:`unquoted`)."""
    return unquoted(parse_args(magic, line))


def parse_args(magic: Any, line: str) -> argparse.Namespace:
    """parse_argstring, with its errors as one UsageError that quotes nothing shaped like a secret
    (argparse repeats unrecognised words, which may be a pasted URL with a password in it) and an
    unclosed quote as a sentence instead of shlex's ValueError."""
    try:
        return parse_argstring(magic, line)
    except UsageError as exc:
        raise UsageError(scrub(str(exc), limit=300)) from None
    except ValueError as exc:
        raise UsageError(f"Could not read the arguments ({scrub(str(exc), limit=80)}); check the quotes.") from None


def unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def unquoted(args: argparse.Namespace) -> argparse.Namespace:
    """Strip the quotes IPython's argument splitting leaves around values (``--endpoint 'h:1'``)."""
    for key, value in vars(args).items():
        if key in ("command", "proxy_command"):
            continue
        if isinstance(value, str):
            setattr(args, key, unquote(value))
        elif isinstance(value, list):
            setattr(args, key, [unquote(v) if isinstance(v, str) else v for v in value])
    return args


def asks_for_help(line: str) -> bool:
    """``-h`` or ``--help`` among the magic's own words (not among --command's, which are the program's)."""
    words = line.split()
    if "--command" in words:
        words = words[: words.index("--command")]
    return "-h" in words or "--help" in words


def print_usage(magic: Any) -> None:
    """What ``%magic?`` shows: the usage line, the description and the options (as the reference page
    renders them, docs/_tools/checks.py)."""
    import inspect

    doc = inspect.cleandoc(magic.__doc__ or "")
    if doc.startswith("::"):  # magic_arguments' usage text (a reST literal block)
        print(doc[2:].strip())
    else:  # a magic without arguments: its usage line, then its docstring
        print(f"%{magic.__name__}\n\n{doc}")


def build_spec(magics: FlyteAuthMagics, args: argparse.Namespace, *, name: str) -> LoginSpec:
    """``%flyte_login``'s parsed ``args``, with ``magics``' traits and the SDKs' settings for what they
    leave out, as a :class:`~.connect.LoginSpec` bound for the variable ``name``."""
    from ..endpoint import check_user_url, parse_endpoint, same_service
    from ..sdk_config import FlytekitSettings
    from .connect import LoginSpec

    issuer = getattr(args, "issuer", None) or None
    if issuer:
        # any OIDC API: the SDKs' settings and default_endpoint describe a Flyte deployment, so they
        # apply only to an --endpoint they name; without one there is no API endpoint at all
        from_settings = False
        settings = magics.flytekit_settings(strict=False) if args.endpoint else FlytekitSettings()
        raw_endpoint = args.endpoint or None
    else:
        from_settings = not args.endpoint and not magics.default_endpoint
        settings = magics.flytekit_settings(strict=from_settings)  # an explicit endpoint never needs a config file
        raw_endpoint = args.endpoint or magics.default_endpoint or settings.endpoint
        if not raw_endpoint:
            raise ConfigurationError(
                "No Flyte endpoint: pass --endpoint URL, or set FLYTE_PLATFORM_URL or admin.endpoint in "
                "~/.flyte/config.yaml (or sign in at an identity provider with --issuer URL --client-id ID)."
            )
    insecure = bool(args.insecure) or (from_settings and settings.insecure)
    # the one parse: the spec carries it on
    endpoint = parse_endpoint(raw_endpoint, insecure=insecure) if raw_endpoint else None
    # flytekit's other settings apply when they describe this endpoint
    same = from_settings or (
        endpoint is not None and bool(settings.endpoint) and same_service(settings.endpoint, endpoint.service)
    )
    cfg = settings if same else FlytekitSettings()

    if args.insecure_skip_verify or cfg.insecure_skip_verify:
        verify: bool | str | None = False
    else:
        verify = args.ca_cert or cfg.ca_cert_file_path or None
        if verify and not Path(str(verify)).expanduser().exists():
            raise ConfigurationError(f"The CA bundle {verify} does not exist; pass --ca-cert with a readable file.")
        if verify:
            verify = str(Path(str(verify)).expanduser())

    secret_env = args.client_secret_env or None
    if secret_env and not os.environ.get(secret_env):
        raise ConfigurationError(f"The environment variable {secret_env} that should hold the client secret is empty or unset.")
    # a secret given here is a confidential client's, for every flow; one from the SDKs' settings
    # is for client credentials only (as flytekit uses it)
    confidential = bool(secret_env)
    secret_location = None
    if not secret_env:
        secret_env = cfg.client_secret_env
        secret_location = cfg.client_secret_location

    command = cfg.command
    if args.command:
        command = _command_line(args.command)
    if args.command is not None and not command:
        raise ConfigurationError("--command needs the program to run and its arguments.")

    proxy_command = cfg.proxy_command
    if args.proxy_command is not None:
        proxy_command = _command_line([args.proxy_command])
        if not proxy_command:
            raise ConfigurationError("--proxy-command needs the program to run, e.g. --proxy-command 'my-iap-helper --audience X'.")
    if proxy_command and endpoint is None:
        raise ConfigurationError("A proxy command guards a deployment; pass --endpoint URL for the API behind the proxy.")

    client_id = args.client_id or magics.client_id or cfg.client_id
    device_endpoint = getattr(args, "device_authorization_endpoint", None) or None
    if issuer and not client_id:
        raise ConfigurationError("--issuer needs --client-id ID: the client registered with the provider for this notebook.")
    if device_endpoint and not issuer:
        raise ConfigurationError(
            "--device-authorization-endpoint goes with --issuer; a Flyte deployment's configuration names its own."
        )
    for option, url in (("--issuer", issuer), ("--device-authorization-endpoint", device_endpoint)):
        if url:  # checked in the cell, before anything is sent
            check_user_url(url, option, insecure=insecure, issuer=option == "--issuer", insecure_option="--insecure")
    prompt = magics.prompt
    if prompt is not None:
        from ..flows.authcode import prompt_value

        prompt_value(prompt, ())  # a bad value is one sentence here, not in the background

    flow = args.flow or magics.default_flow
    timeout = user_seconds(args.timeout if args.timeout is not None else magics.timeout)  # inf, nan, <= 0: one sentence
    scopes = scope_list(args.scopes) or scope_list(magics.scopes) or scope_list(cfg.scopes)
    return LoginSpec(
        endpoint=endpoint,
        flow=flow,
        client_id=client_id,
        client_secret_env=secret_env,
        client_secret_location=secret_location,
        confidential=confidential,
        scopes=scopes,
        audience=args.audience or magics.audience or cfg.audience,
        command=command,
        timeout=timeout,
        no_cache=bool(args.no_cache),
        token_cache=magics.token_cache,
        insecure=insecure,
        verify=verify,
        http_proxy_url=args.proxy or cfg.http_proxy_url,
        open_browser=magics.open_browser,
        redirect_uri=magics.redirect_uri,
        configured_auth_type=cfg.auth_type,
        name=name,
        issuer=issuer,
        device_authorization_endpoint=device_endpoint,
        prompt=prompt,
        proxy_command=proxy_command,
    )


def default_args(magic: Any, **values: Any) -> argparse.Namespace:
    """The magic's arguments as an empty line gives them, with ``values`` set (``%flyte_logout
    --endpoint`` builds the spec of the endpoint it clears from ``%flyte_login``'s defaults)."""
    return argparse.Namespace(**{**vars(parse_argstring(magic, "")), **values})


def _command_line(words: list[str]) -> tuple[str, ...]:
    """An argv from the words IPython's magic argument splitting left (it keeps quotes): re-split as a
    shell would (never run by one); one quoted word holding the whole command line is split too."""
    command = tuple(shlex.split(" ".join(words)))
    if len(command) == 1 and " " in command[0].strip():
        command = tuple(shlex.split(command[0]))
    return command if command and command[0].strip() else ()  # '' names no program
