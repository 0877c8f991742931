"""DEBUG logging across the whole test session, scanned at its end for the secrets issued during it.

tests/conftest.py starts one :class:`SessionLogScan` when pytest configures and checks it when the
session finishes (issue 10: "DEBUG logging captured across the whole suite contains no secret"):

* a handler on the ``flyteauth_jupyter`` logger (set to DEBUG for the session, so every debug
  statement of the package runs) and on ``urllib3`` (what requests logs about our connections) keeps
  each record's full text: the message with its arguments, and the formatted exception if any;
* the secrets are what was really issued: every identity provider the run starts appends the tokens,
  device codes and authorization codes it hands out to a file in ``$FLYTEAUTH_RIG_SECRETS_DIR``
  (tests/idp/provider.js, IDP_SECRETS_FILE; tests/idp2, IDP2_SECRETS_FILE), plus the token strings of every ``Credentials`` built in
  this process (the fakes of the unit tests too) and the rig's client secret;
* any secret found in any record fails the run with a report naming the logger, the place and a
  fingerprint, never the secret. Authorization codes are not looked for in ``urllib3`` records: the
  rig's own browser user requests the redirect URL, which carries the code by design.

Short values (< 12 characters) are ignored: they could appear in a record by chance. So are token
strings that occur in the package's own string literals: hypothesis draws example strings from the
literals of the code under test, so a property test may build ``Credentials("FlyteAuthMagics")``, and a
log message quoting the literal is no leak (a token issued at run time is never one of our literals).
"""

from __future__ import annotations

import ast
import functools
import logging
import os
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

from rig.idp import CONFIDENTIAL_SECRET, SECRETS_DIR_ENV

LOGGERS = ("flyteauth_jupyter", "urllib3")
#: Loggers whose records below WARNING stay with the collector (as before the scan, only WARNING and
#: above reach pytest's handlers), so failure reports are not flooded with urllib3's request lines.
QUIET = ("urllib3",)
MIN_SECRET = 12
MAX_RECORDS = 500_000  # a bound on memory; records beyond it are counted, not kept


@dataclass(frozen=True)
class Leak:
    logger: str
    where: str
    kind: str
    fingerprint: str

    def __str__(self) -> str:
        return f"{self.logger} at {self.where}: {self.kind} [{self.fingerprint}]"


class _Collector(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[tuple[str, str, str]] = []  # (logger, where, text)
        self.dropped = 0
        self._formatter = logging.Formatter()
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.split(".")[0] in QUIET and record.levelno >= logging.WARNING:
            logging.getLogger().handle(record)  # what propagation did before the session turned it off
        try:
            text = record.getMessage()
            if record.exc_info:
                text += "\n" + self._formatter.formatException(record.exc_info)
            if record.stack_info:
                text += "\n" + record.stack_info
        except Exception:  # noqa: BLE001 - a bad record must not break the test that logged it
            text = str(record.msg)
        with self._guard:
            if len(self.records) < MAX_RECORDS:
                self.records.append((record.name, f"{record.pathname}:{record.lineno}", text))
            else:
                self.dropped += 1


class SessionLogScan:
    """Attach with :meth:`start`, detach and look for secrets with :meth:`finish`."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="flyteauth-secrets-"))
        self.collector = _Collector()
        self._levels: dict[str, int] = {}
        self._propagate: dict[str, bool] = {}
        self._credential_tokens: set[str] = set()
        self._original_post_init = None

    def start(self) -> None:
        os.environ[SECRETS_DIR_ENV] = str(self.directory)
        for name in LOGGERS:
            logger = logging.getLogger(name)
            self._levels[name] = logger.level
            logger.setLevel(logging.DEBUG)
            logger.addHandler(self.collector)
            if name in QUIET:
                self._propagate[name] = logger.propagate
                logger.propagate = False
        self._watch_credentials()

    def _watch_credentials(self) -> None:
        from flyteauth_jupyter.credentials import Credentials

        original = Credentials.__post_init__
        tokens = self._credential_tokens

        def post_init(creds: Credentials) -> None:
            original(creds)
            for value in (creds.access_token, creds.refresh_token, creds.id_token):
                if isinstance(value, str) and len(value) >= MIN_SECRET:
                    tokens.add(value)

        self._original_post_init = original
        Credentials.__post_init__ = post_init  # type: ignore[method-assign]

    def stop(self) -> None:
        for name in LOGGERS:
            logging.getLogger(name).removeHandler(self.collector)
        for name, level in self._levels.items():
            logging.getLogger(name).setLevel(level)
        for name, propagate in self._propagate.items():
            logging.getLogger(name).propagate = propagate
        self._levels.clear()
        self._propagate.clear()
        if self._original_post_init is not None:
            from flyteauth_jupyter.credentials import Credentials

            Credentials.__post_init__ = self._original_post_init  # type: ignore[method-assign]
            self._original_post_init = None

    @staticmethod
    @functools.lru_cache(maxsize=1)
    def _package_literals() -> str:
        """Every string literal of the package's source, joined (see the module docstring)."""
        import flyteauth_jupyter

        found: list[str] = []
        for path in Path(flyteauth_jupyter.__file__).parent.rglob("*.py"):
            try:
                tree = ast.parse(path.read_text(encoding="utf-8"))
            except (OSError, SyntaxError, ValueError):
                continue
            found.extend(node.value for node in ast.walk(tree)
                         if isinstance(node, ast.Constant) and isinstance(node.value, str))
        return "\n\x00".join(found)

    def secrets(self) -> dict[str, str]:
        """value -> kind, for every secret issued during the session (long enough to look for)."""
        found: dict[str, str] = {}
        for path in sorted(self.directory.glob("*.secrets")):
            for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
                kind, _, value = line.partition("\t")
                if len(value) >= MIN_SECRET:
                    found.setdefault(value, kind)
        literals = self._package_literals()
        for value in sorted(self._credential_tokens):
            if value not in literals:
                found.setdefault(value, "token")
        found.setdefault(CONFIDENTIAL_SECRET, "client_secret")
        return found

    def finish(self) -> tuple[list[Leak], dict[str, int]]:
        """Stop collecting and return the leaks found, and the figures of the scan."""
        self.stop()
        secrets = self.secrets()
        records = self.collector.records
        by_logger: dict[bool, str] = {}
        for is_urllib3 in (False, True):
            by_logger[is_urllib3] = "\n\x00".join(text for name, _, text in records
                                                  if name.startswith("urllib3") == is_urllib3)
        leaks: list[Leak] = []
        for value, kind in secrets.items():
            for is_urllib3, blob in by_logger.items():
                if is_urllib3 and kind == "code":
                    continue
                if value in blob:
                    leaks.extend(self._where(value, kind, is_urllib3))
        figures = {
            "records": len(records) + self.collector.dropped,
            "records_scanned": len(records),
            "secrets_known": len(secrets),
            "secrets_found": len({leak.fingerprint for leak in leaks}),
        }
        return leaks, figures

    def _where(self, value: str, kind: str, is_urllib3: bool) -> list[Leak]:
        shown = f"{value[:4]}...({len(value)} chars)"
        return [Leak(name, where, kind, shown) for name, where, text in self.collector.records
                if name.startswith("urllib3") == is_urllib3 and value in text][:5]
