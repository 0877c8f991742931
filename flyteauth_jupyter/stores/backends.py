"""Which keyring backend counts as a usable keyring (DESIGN.md pinned 19), decided cheaply: by the
backend's type, never by a probe that could prompt, unlock or write.

Not a keyring (tokens go to the private file cache, quietly: this is the normal case in containers,
JupyterHub images and Colab):

* keyring's ``fail`` backend (no backend at all) and ``null`` backend (stores nothing, chosen to
  turn the keyring off), and a ``ChainerBackend`` with nothing to chain.

Refused (tokens go to the private file cache, and the panel says once why):

* the Flyte 2 SDK's ``flyte_keyring_file`` (``flyte._keyring.file``): base64 in
  ``~/.flyte/keyring.cfg``, the keyring inside IPython when nothing else is there. Never written.
* ``keyrings.alt``'s file backends: ``PlaintextKeyring`` (base64 in a file) is no better than our
  0600 file and ``EncryptedKeyring`` asks for a password with ``getpass`` (a kernel would hang).

A ``ChainerBackend`` (several backends at once) that holds a refused member is not used as a chain
(its ``set_password`` falls through to the next member when one fails, so a locked Secret Service
would send tokens to the plaintext file); its best remaining member is used on its own, and flytekit
and the Flyte 2 SDK, reading through the chain, find the entries there. Everything else (Secret
Service, macOS, Windows, KWallet, libsecret, a backend set with ``PYTHON_KEYRING_BACKEND`` or
``keyring.set_keyring``) is a keyring; problems found later (locked, raises, too large) fall back to
the file cache at that moment.
"""

from __future__ import annotations

from typing import Any

#: what the panel says when the only keyring is the Flyte 2 SDK's plaintext file
FLYTE2_PLAINTEXT = (
    "the only keyring here is the Flyte 2 SDK's plaintext file (~/.flyte/keyring.cfg, tokens merely base64-encoded)"
)
NO_BACKEND = "no keyring backend is available on this machine"
NULL_BACKEND = "the configured keyring backend is the null backend, which stores nothing"

_REFUSED = {
    "flyte._keyring.file": FLYTE2_PLAINTEXT,
    "keyrings.alt.file": "the keyring here is a keyrings.alt file backend (a plaintext file, or one that asks "
    "for a password on the terminal)",
}


class Unusable(Exception):
    """The backend is not a usable keyring; ``str()`` is a phrase for a sentence, ``refused`` tells a
    keyring we declined (worth a notice) from no keyring at all (the normal case, said by describe())."""

    def __init__(self, phrase: str, *, refused: bool) -> None:
        super().__init__(phrase)
        self.refused = refused


def _problem(backend: Any) -> Unusable | None:
    module = type(backend).__module__
    if module.startswith("keyring.backends.fail"):
        return Unusable(NO_BACKEND, refused=False)
    if module.startswith("keyring.backends.null"):
        return Unusable(NULL_BACKEND, refused=False)
    for prefix, phrase in _REFUSED.items():
        if module == prefix or module.startswith(prefix + "."):
            return Unusable(phrase, refused=True)
    return None


def _members(backend: Any) -> list[Any] | None:
    """The backends a keyring ``ChainerBackend`` chains (None: not a chainer)."""
    if type(backend).__module__ != "keyring.backends.chainer":
        return None
    members = getattr(backend, "backends", None)
    return list(members) if isinstance(members, (list, tuple)) else []


def usable_backend(backend: Any) -> Any:
    """The backend to use for ``backend`` (itself, or a chain's best acceptable member); raises
    :class:`Unusable` when there is none."""
    members = _members(backend)
    if members is None:
        problem = _problem(backend)
        if problem is not None:
            raise problem
        return backend
    problems = [_problem(member) for member in members]
    good = [member for member, problem in zip(members, problems) if problem is None]
    if not good:
        refused = [problem for problem in problems if problem is not None and problem.refused]
        raise refused[0] if refused else Unusable(NO_BACKEND, refused=False)
    if len(good) == len(members):
        return backend
    return good[0]  # the chain lists its members by priority, highest first


def backend_label(backend: Any) -> str:
    """A short name for a backend: ``SecretService``, ``macOS``, ``Windows``, ``kwallet``, or its class name."""
    cls = type(backend)
    if cls.__module__ == "keyring.backends.chainer":
        names = [backend_label(member) for member in _members(backend) or []]
        return " + ".join(names) if names else "ChainerBackend"
    if cls.__module__.startswith("keyring.backends."):  # keyring's own: the module says it best
        return cls.__module__.rsplit(".", 1)[-1]
    return cls.__name__
