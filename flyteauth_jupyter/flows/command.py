"""Tokens from an external command (flytekit's ExternalCommand, and the identity-aware proxy's
``proxy_command``: :mod:`flyteauth_jupyter.proxy` runs it through :func:`run_token_command` too).

The command is an argv list, never run through a shell, with stdin closed (an interactive helper
cannot hang the kernel waiting for input), a timeout (60 s by default; the whole process group is
killed when it passes), and its stripped stdout is the token. Failure messages name the program
(not its arguments, which may hold secrets), the exit status and the tail of stderr; stdout is never
shown, since it may hold a token. ``what`` names the command in those messages ("token command",
"proxy command"), so a user can tell which of two configured commands failed.
"""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
from collections.abc import Mapping, Sequence

from ..errors import CommandError, ConfigurationError, scrub

DEFAULT_TIMEOUT = 60.0
STDERR_TAIL = 300


def normalise_command(command: Sequence[str] | str | None, *, what: str = "token command") -> list[str]:
    """The argv list; a string is split like a shell would (but never run by one)."""
    if isinstance(command, str):
        argv = shlex.split(command)
    else:
        argv = [str(part) for part in (command or [])]
    if not argv or not argv[0].strip():
        raise ConfigurationError(f"The {what} is empty; pass it as a list such as ['gcloud', 'auth', 'print-identity-token'].")
    return argv


def _program(argv: Sequence[str]) -> str:
    return os.path.basename(argv[0]) or argv[0]


def _tail(text: str) -> str:
    """The end of the command's stderr, scrubbed of anything shaped like a token (errors.scrub)."""
    text = " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
    text = text if len(text) <= STDERR_TAIL else "…" + text[-STDERR_TAIL:]
    return scrub(text, limit=STDERR_TAIL + 1)


def _kill(process: subprocess.Popen[str]) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError, OSError):
        try:
            process.kill()
        except OSError:
            pass


def run_token_command(
    command: Sequence[str] | str,
    *,
    timeout: float = DEFAULT_TIMEOUT,
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    what: str = "token command",
) -> str:
    """Run ``command`` and return the token it prints; raise CommandError with a clear sentence
    (``what`` names the command in it: "token command", "proxy command")."""
    argv = normalise_command(command, what=what)
    program = _program(argv)
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",  # a command that prints bytes that are not UTF-8 gets a sentence, not a UnicodeDecodeError
            env=dict(env) if env is not None else None,
            cwd=cwd,
            start_new_session=True,  # its own process group, so a timeout kills helpers it started too
        )
    except FileNotFoundError as exc:
        raise CommandError(f"The {what} {program!r} was not found; check the path or install it.") from exc
    except PermissionError as exc:
        raise CommandError(f"The {what} {program!r} is not executable; check its permissions.") from exc
    except OSError as exc:
        raise CommandError(f"The {what} {program!r} could not be started ({exc.strerror or type(exc).__name__}).") from exc
    try:
        stdout, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        _kill(process)
        try:
            process.communicate(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        raise CommandError(
            f"The {what} {program!r} did not finish within {timeout:g} s and was stopped; run it in a "
            "terminal to check that it does not wait for input."
        ) from None
    except BaseException:
        _kill(process)
        raise
    if process.returncode != 0:
        tail = _tail(stderr or "")
        detail = f": {tail}" if tail else " and printed nothing on stderr"
        raise CommandError(
            f"The {what} {program!r} exited with status {process.returncode}{detail}. Run it in a terminal to debug."
        )
    token = (stdout or "").strip()
    if not token:
        raise CommandError(f"The {what} {program!r} printed no token on stdout.")
    if any(ch.isspace() for ch in token):
        raise CommandError(
            f"The {what} {program!r} printed more than one word on stdout; it should print only the token."
        )
    return token


__all__ = ["DEFAULT_TIMEOUT", "normalise_command", "run_token_command"]
