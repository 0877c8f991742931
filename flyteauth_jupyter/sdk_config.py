"""The SDKs' own configuration, read the way each SDK reads it, for ``%flyte_login`` and
``flyteauth-token`` without ``--endpoint`` (:func:`read_sdk_settings`: flytekit's first, then the Flyte 2
SDK's when flytekit names no endpoint).

flytekit (:func:`read_flytekit_settings`):

Precedence per setting (flytekit ``ConfigEntry.read``): the environment variable, then the config
file. The config file is the first that exists of ``_FLYTECTL_CONFIG_PYFLYTE_OVERRIDE``,
``FLYTECTL_CONFIG``, ``./flytekit.config``, ``~/.flyte/config``, ``~/.flyte/config.yaml``; a name
ending in ``.yaml``/``.yml`` is flytectl YAML (``admin.endpoint`` ...), anything else the legacy INI
format (``[platform] url`` ...). ``dns:///`` prefixes are stripped.

The Flyte 2 SDK (:func:`read_flyte2_settings`, ``flyte.config``): the environment variable
(``FLYTE_ADMIN_ENDPOINT``, ``FLYTE_ADMIN_INSECURE``, ... i.e. ``FLYTE_`` + the key upper-cased, plus its
aliases ``FLYTE_AUTH_TYPE``, ``FLYTE_AUTH_COMMAND`` and ``FLYTE_AUTH_PROXY_COMMAND``), then the first
YAML file that exists of ``./config.yaml``, ``./.flyte/config.yaml``, ``<git root>/.flyte/config.yaml``,
``$UCTL_CONFIG``, ``$FLYTECTL_CONFIG``, ``~/.union/config.yaml``, ``~/.flyte/config.yaml`` (keys under
``admin:``). Its commands (``command``, ``proxy_command``) are read as its ``_as_argv`` reads them: a
YAML list as it is, a string holding a JSON array as that array, any other string split like a shell.

The identity-aware proxy's command (``proxy_command``, :mod:`flyteauth_jupyter.proxy`): flytekit's
``FLYTE_CREDENTIALS_PROXY_COMMAND`` (comma-separated, as flytekit's list entries), ``[credentials]
proxy_command`` or ``admin.proxyCommand``; the Flyte 2 SDK's ``FLYTE_AUTH_PROXY_COMMAND`` (or the derived
``FLYTE_ADMIN_PROXYCOMMAND``) or ``admin.proxyCommand``.

Client secrets are never read here: :class:`FlytekitSettings` records *where* the secret is (an
environment variable name or a file) and :func:`read_client_secret` reads it when the authenticator is
built, so no settings object, repr or history entry ever holds one.

Configuration files are the user's, but not always what they think (issue 16): every file is read by
:func:`read_config_text` (a regular file only, so a directory or a named pipe never blocks; at most
:data:`MAX_CONFIG_BYTES`; UTF-8), YAML by a loader that refuses nesting deeper than
:data:`MAX_CONFIG_DEPTH` and aliases that expand to more than :data:`MAX_YAML_NODES` nodes (an alias
bomb), and every setting must be a single value (or a list of them). Any problem is one
``ConfigurationError`` sentence naming the file. ``strict=False`` (what an explicit ``--endpoint``
uses, which needs no file) reads the environment only when a file is broken and keeps the sentence in
``FlytekitSettings.problem`` instead of raising.
"""

from __future__ import annotations

import configparser
import dataclasses
import errno
import json
import os
import shlex
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigurationError

TRUE = {"1", "true", "yes", "on", "t", "y"}
#: no Flyte configuration file comes near this (flytectl's are about 1 KB)
MAX_CONFIG_BYTES = 256 * 1024
#: nesting levels a configuration file may have (flytectl's have three or four)
MAX_CONFIG_DEPTH = 64
#: YAML nodes a document may expand to, aliases expanded (a real configuration has a few dozen)
MAX_YAML_NODES = 10_000


@dataclass(frozen=True)
class FlytekitSettings:
    """The auth-related part of flytekit's PlatformConfig, plus where each value came from."""

    endpoint: str | None = None
    insecure: bool = False
    insecure_skip_verify: bool = False
    ca_cert_file_path: str | None = None
    http_proxy_url: str | None = None
    client_id: str | None = None
    client_secret_env: str | None = None
    client_secret_location: str | None = None
    scopes: tuple[str, ...] = ()
    auth_type: str | None = None
    audience: str | None = None
    command: tuple[str, ...] = ()
    #: the identity-aware proxy's command (flytekit ``PlatformConfig.proxy_command``, the Flyte 2 SDK's
    #: ``proxy_command``): its output goes to the deployment as ``proxy-authorization``
    proxy_command: tuple[str, ...] = ()
    config_file: str | None = None
    sources: dict[str, str] = field(default_factory=dict, compare=False)
    #: with ``strict=False``: why a configuration file was not read (one sentence naming it), else None
    problem: str | None = field(default=None, compare=False)

    @property
    def has_client_secret(self) -> bool:
        return bool(self.client_secret_env or self.client_secret_location)

    def describe(self) -> str:
        where = self.sources.get("endpoint")
        return f"{self.endpoint} (from {where})" if where else str(self.endpoint)


def find_config_file(env: Mapping[str, str], cwd: Path, home: Path) -> Path | None:
    """The file flytekit would read, or None."""
    for key in ("_FLYTECTL_CONFIG_PYFLYTE_OVERRIDE", "FLYTECTL_CONFIG"):
        value = env.get(key)
        if value:
            path = Path(value).expanduser()
            if path.exists():
                return path
    for path in (cwd / "flytekit.config", home / ".flyte" / "config", home / ".flyte" / "config.yaml"):
        if path.exists():
            return path
    return None


# -- reading a file, bounded ---------------------------------------------------------------------
def read_config_text(path: Path) -> str:
    """The text of the configuration file ``path``: a regular file of at most MAX_CONFIG_BYTES, UTF-8;
    else a ConfigurationError naming it. Opened non-blocking, so a named pipe cannot stall the reader."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise ConfigurationError(
            f"The configuration file {path} cannot be read ({exc.strerror or errno.errorcode.get(exc.errno or 0, 'error')})."
        ) from None
    try:
        mode = os.fstat(fd).st_mode
    except OSError:
        os.close(fd)
        raise ConfigurationError(f"The configuration file {path} cannot be read.") from None
    if not stat.S_ISREG(mode):
        os.close(fd)
        what = "a directory" if stat.S_ISDIR(mode) else "not a regular file (a pipe or a device)"
        raise ConfigurationError(f"The configuration file {path} is {what}; remove it or point the setting that "
                                 "names it at a file.")
    with os.fdopen(fd, "rb") as handle:
        try:
            raw = handle.read(MAX_CONFIG_BYTES + 1)
        except OSError as exc:
            raise ConfigurationError(f"The configuration file {path} cannot be read ({exc.strerror or 'error'}).") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigurationError(f"The configuration file {path} is larger than {MAX_CONFIG_BYTES // 1024} KiB, which no "
                                 "Flyte configuration is; check that it is the right file.")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise ConfigurationError(f"The configuration file {path} is not UTF-8 text; save it as UTF-8.") from None


def _too_deep(path: Path) -> ConfigurationError:
    return ConfigurationError(f"The configuration file {path} nests more than {MAX_CONFIG_DEPTH} levels deep, which no "
                              "Flyte configuration does; check that it is the right file.")


# -- YAML: PyYAML when installed, else a small reader for flytectl's simple nested mappings -------
def _parse_scalar(text: str, depth: int = 0) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text.startswith("[") and text.endswith("]"):
        if depth >= MAX_CONFIG_DEPTH:
            raise RecursionError("nested too deeply")
        inner = text[1:-1].strip()
        return [_parse_scalar(part, depth + 1) for part in inner.split(",")] if inner else []
    lowered = text.lower()
    if lowered in ("true", "yes", "on"):
        return True
    if lowered in ("false", "no", "off"):
        return False
    if lowered in ("null", "~", ""):
        return None
    return text


def _strip_comment(line: str) -> str:
    quote = None
    for i, ch in enumerate(line):
        if ch in "'\"":
            quote = None if quote == ch else (ch if quote is None else quote)
        elif ch == "#" and quote is None and (i == 0 or line[i - 1] in " \t"):
            return line[:i]
    return line


def simple_yaml(text: str) -> dict[str, Any]:
    """Parse the YAML subset flytectl configs use: nested mappings, scalars, ``- item`` and ``[a, b]`` lists."""
    root: dict[str, Any] = {}
    stack: list[tuple[int, Any]] = [(-1, root)]
    pending: tuple[int, dict[str, Any], str] | None = None
    for raw in text.splitlines():
        line = _strip_comment(raw).rstrip()
        if not line.strip() or line.strip() in ("---", "..."):
            continue
        indent = len(line) - len(line.lstrip(" "))
        content = line.strip()
        if pending is not None:
            p_indent, p_parent, p_key = pending
            pending = None
            if indent > p_indent:
                container: Any = [] if content.startswith("- ") or content == "-" else {}
                p_parent[p_key] = container
                stack.append((p_indent, container))
                if len(stack) > MAX_CONFIG_DEPTH:
                    raise RecursionError("nested too deeply")
        while len(stack) > 1 and indent <= stack[-1][0]:
            stack.pop()
        parent = stack[-1][1]
        if content.startswith("-"):
            if isinstance(parent, list):
                parent.append(_parse_scalar(content[1:]))
            continue
        if ":" not in content or not isinstance(parent, dict):
            continue
        key, _, value = content.partition(":")
        key = key.strip().strip("'\"")
        if value.strip():
            parent[key] = _parse_scalar(value)
        else:
            parent[key] = None
            pending = (indent, parent, key)
    return root


class _Unbounded(Exception):
    """The document nests too deeply or its aliases expand too far (``kind``: "depth" or "aliases")."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


def _bounded_loader(yaml: Any) -> Any:
    """A SafeLoader that counts, while composing: the nesting depth and each node's size with aliases
    expanded (children's sizes memoised, so an alias bomb is refused after a few hundred steps)."""

    class BoundedLoader(yaml.SafeLoader):  # type: ignore[misc,name-defined]
        def __init__(self, stream: str) -> None:
            super().__init__(stream)
            self._depth = 0
            self._sizes: dict[int, int] = {}

        def compose_node(self, parent: Any, index: Any) -> Any:
            self._depth += 1
            try:
                if self._depth > MAX_CONFIG_DEPTH:
                    raise _Unbounded("depth")
                node = super().compose_node(parent, index)
            finally:
                self._depth -= 1
            if id(node) not in self._sizes:  # an alias returns a node whose size is known
                if isinstance(node, yaml.MappingNode):
                    children = [n for pair in node.value for n in pair]
                elif isinstance(node, yaml.SequenceNode):
                    children = list(node.value)
                else:
                    children = []
                size = 1 + sum(self._sizes.get(id(child), 1) for child in children)
                if size > MAX_YAML_NODES:
                    raise _Unbounded("aliases")
                self._sizes[id(node)] = size
            return node

    return BoundedLoader


def load_yaml(path: Path) -> dict[str, Any]:
    """The YAML document in ``path`` (read with :func:`read_config_text`), bounded in depth and alias
    expansion; {} when it is not a mapping. Any problem: one ConfigurationError sentence naming the file."""
    text = read_config_text(path)
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        try:
            data: Any = simple_yaml(text)
        except RecursionError:
            raise _too_deep(path) from None
    else:
        try:
            data = yaml.load(text, Loader=_bounded_loader(yaml))  # noqa: S506 - a SafeLoader subclass
        except _Unbounded as exc:
            if exc.kind == "depth":
                raise _too_deep(path) from None
            raise ConfigurationError(
                f"The configuration file {path} expands its YAML aliases to more than {MAX_YAML_NODES} values (an "
                "alias bomb), which no Flyte configuration does; write the values out instead."
            ) from None
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            at = f" at line {mark.line + 1}" if mark is not None else ""
            raise ConfigurationError(f"The configuration file {path} is not valid YAML{at}.") from None
        except RecursionError:
            raise _too_deep(path) from None
    return data if isinstance(data, dict) else {}


def load_ini(path: Path) -> configparser.ConfigParser:
    """flytekit's legacy INI file in ``path``, read with :func:`read_config_text`; one sentence when broken."""
    ini = configparser.ConfigParser()
    try:
        ini.read_string(read_config_text(path), source=str(path))
    except configparser.Error as exc:
        raise ConfigurationError(f"The configuration file {path} is not a valid INI file ({type(exc).__name__}).") from None
    return ini


# -- the settings -------------------------------------------------------------------------------
_SCALARS = (str, int, float, bool)


def _single(value: Any, where: str) -> Any:
    """A setting's value: a scalar, or a flat list of scalars; anything else is one sentence."""
    if isinstance(value, _SCALARS):
        return value
    if isinstance(value, (list, tuple)) and len(value) <= 64 and all(isinstance(v, _SCALARS) for v in value):
        return value
    raise ConfigurationError(f"{where} is not a single value or a list of values; write it out plainly.")


def _as_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in TRUE


def _as_list(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, (list, tuple)):
        return tuple(str(v).strip() for v in value if str(v).strip())
    return tuple(part.strip() for part in str(value).split(",") if part.strip())


def _strip_dns(endpoint: str) -> str:
    endpoint = endpoint.strip()
    return endpoint[len("dns:///") :] if endpoint.startswith("dns:///") else endpoint


#: setting -> (environment variable, YAML key under admin:, INI (section, option), kind)
_ENTRIES: dict[str, tuple[str, str, tuple[str, str], str]] = {
    "endpoint": ("FLYTE_PLATFORM_URL", "endpoint", ("platform", "url"), "str"),
    "insecure": ("FLYTE_PLATFORM_INSECURE", "insecure", ("platform", "insecure"), "bool"),
    "insecure_skip_verify": (
        "FLYTE_PLATFORM_INSECURE_SKIP_VERIFY", "insecureSkipVerify", ("platform", "insecure_skip_verify"), "bool"
    ),
    "ca_cert_file_path": (
        "FLYTE_PLATFORM_CA_CERT_FILE_PATH", "caCertFilePath", ("platform", "ca_cert_file_path"), "str"
    ),
    "http_proxy_url": ("FLYTE_PLATFORM_HTTP_PROXY_URL", "httpProxyURL", ("platform", "http_proxy_url"), "str"),
    "client_id": ("FLYTE_CREDENTIALS_CLIENT_ID", "clientId", ("credentials", "client_id"), "str"),
    "client_secret_location": (
        "FLYTE_CREDENTIALS_CLIENT_SECRET_LOCATION", "clientSecretLocation", ("credentials", "client_secret_location"),
        "str",
    ),
    "client_secret_env": (
        "FLYTE_CREDENTIALS_CLIENT_SECRET_ENV_VAR", "clientSecretEnvVar", ("credentials", "client_secret_env_var"), "str"
    ),
    "scopes": ("FLYTE_CREDENTIALS_SCOPES", "scopes", ("credentials", "scopes"), "list"),
    "auth_type": ("FLYTE_CREDENTIALS_AUTH_MODE", "authType", ("credentials", "auth_mode"), "str"),
    "audience": ("FLYTE_CREDENTIALS_AUDIENCE", "audience", ("credentials", "audience"), "str"),
    "command": ("FLYTE_CREDENTIALS_COMMAND", "command", ("credentials", "command"), "list"),
    # flytekit.configuration.internal.Credentials.PROXY_COMMAND: LegacyConfigEntry("credentials",
    # "proxy_command", list) (so FLYTE_CREDENTIALS_PROXY_COMMAND, comma-separated) and YAML admin.proxyCommand
    "proxy_command": ("FLYTE_CREDENTIALS_PROXY_COMMAND", "proxyCommand", ("credentials", "proxy_command"), "list"),
}


def read_flytekit_settings(
    env: Mapping[str, str] | None = None, *, cwd: Path | None = None, home: Path | None = None, files: bool = True
) -> FlytekitSettings:
    """flytekit's auth settings from the environment and its config file (environment wins);
    ``files=False``: the environment only."""
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    home = Path.home() if home is None else home
    path = find_config_file(env, cwd, home) if files else None
    admin: dict[str, Any] = {}
    ini: configparser.ConfigParser | None = None
    if path is not None:
        if path.suffix.lower() in (".yaml", ".yml"):
            document = load_yaml(path)
            section = document.get("admin")
            admin = section if isinstance(section, dict) else {}
        else:
            ini = load_ini(path)

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, (env_key, yaml_key, (section, option), kind) in _ENTRIES.items():
        raw: Any = None
        if env.get(env_key, "") != "":
            raw, sources[name] = env[env_key], env_key
        elif ini is not None and ini.has_option(section, option):
            try:
                raw = ini.get(section, option)
            except configparser.Error as exc:
                raise ConfigurationError(
                    f"The configuration file {path} has a value of [{section}] {option} that cannot be read "
                    f"({type(exc).__name__})."
                ) from None
            sources[name] = f"{path} [{section}] {option}"
        elif yaml_key in admin and admin[yaml_key] not in (None, ""):
            raw = _single(admin[yaml_key], f"admin.{yaml_key} in the configuration file {path}")
            sources[name] = f"{path} admin.{yaml_key}"
        if raw is None:
            continue
        if kind == "bool":
            values[name] = _as_bool(raw)
        elif kind == "list":
            values[name] = _as_list(raw)
        else:
            values[name] = str(raw).strip() or None
    # a secret given directly in the environment is referred to by its variable's name
    if "client_secret_env" not in values and env.get("FLYTE_CREDENTIALS_CLIENT_SECRET"):
        values["client_secret_env"] = "FLYTE_CREDENTIALS_CLIENT_SECRET"
        sources["client_secret_env"] = "FLYTE_CREDENTIALS_CLIENT_SECRET"
    if values.get("endpoint"):
        values["endpoint"] = _strip_dns(values["endpoint"])
    return FlytekitSettings(**values, config_file=str(path) if path else None, sources=sources)


def read_client_secret(*, env_var: str | None, location: str | None, env: Mapping[str, str] | None = None) -> str:
    """Read the client secret from the named environment variable or file (trailing newline stripped)."""
    env = os.environ if env is None else env
    if env_var:
        value = env.get(env_var)
        if not value:
            raise ConfigurationError(f"The environment variable {env_var} that should hold the client secret is empty or unset.")
        return value.strip()
    if location:
        try:
            value = Path(location).expanduser().read_text(encoding="utf-8").rstrip("\r\n")
        except OSError as exc:
            raise ConfigurationError(f"The client secret file {location} could not be read ({exc.strerror}).") from None
        if not value:
            raise ConfigurationError(f"The client secret file {location} is empty.")
        return value
    raise ConfigurationError("No client secret was given; pass --client-secret-env VAR naming the variable that holds it.")


# -- the Flyte 2 SDK ----------------------------------------------------------------------------
#: setting -> (YAML key under admin:, environment aliases before FLYTE_ADMIN_<KEY>, kind)
_FLYTE2_ENTRIES: dict[str, tuple[str, tuple[str, ...], str]] = {
    "endpoint": ("endpoint", (), "str"),
    "insecure": ("insecure", (), "bool"),
    "insecure_skip_verify": ("insecureSkipVerify", (), "bool"),
    "ca_cert_file_path": ("caCertFilePath", (), "str"),
    "http_proxy_url": ("httpProxyURL", (), "str"),
    "client_id": ("clientId", (), "str"),
    "client_secret_location": ("clientSecretLocation", (), "str"),
    "client_secret_env": ("clientSecretEnvVar", (), "str"),
    "scopes": ("scopes", (), "list"),
    "auth_type": ("authType", ("FLYTE_AUTH_TYPE",), "str"),
    "command": ("command", ("FLYTE_AUTH_COMMAND",), "list"),
    # flyte.config._internal.Credentials.PROXY_COMMAND: admin.proxyCommand, env FLYTE_AUTH_PROXY_COMMAND
    # (the derived FLYTE_ADMIN_PROXYCOMMAND still accepted)
    "proxy_command": ("proxyCommand", ("FLYTE_AUTH_PROXY_COMMAND",), "list"),
}

#: settings the Flyte 2 SDK reads as an argv (``flyte.config._internal._as_argv``)
_FLYTE2_ARGV = ("command", "proxy_command")


def _as_argv(raw: Any) -> tuple[str, ...]:
    """The Flyte 2 SDK's reading of a command (``_as_argv``): a list as it is; a string holding a JSON
    array (``["uctl", "get-token"]``) as that array; any other string split like a shell would."""
    if isinstance(raw, str):
        text = raw.strip()
        if text.startswith("["):
            try:
                parsed = json.loads(text)
            except ValueError:
                parsed = None
            if isinstance(parsed, list) and len(parsed) <= 64 and all(isinstance(v, _SCALARS) for v in parsed):
                return tuple(str(v) for v in parsed)
        try:
            return tuple(shlex.split(text))
        except ValueError:
            raise ConfigurationError("A command in the Flyte 2 SDK's settings has an unclosed quote; quote it again.") from None
    return _as_list(raw)


def _git_root(cwd: Path) -> Path | None:
    for folder in (cwd, *cwd.parents):
        if (folder / ".git").exists():
            return folder
    return None


def find_flyte2_config_file(env: Mapping[str, str], cwd: Path, home: Path) -> Path | None:
    """The file the Flyte 2 SDK would read (``flyte.config._reader.resolve_config_path``), or None."""
    candidates: list[Path] = [cwd / "config.yaml", cwd / ".flyte" / "config.yaml"]
    root = _git_root(cwd)
    if root is not None:
        candidates.append(root / ".flyte" / "config.yaml")
    for key in ("UCTL_CONFIG", "FLYTECTL_CONFIG"):
        if env.get(key):
            candidates.append(Path(env[key]).expanduser())
    candidates += [home / ".union" / "config.yaml", home / ".flyte" / "config.yaml"]
    return next((path for path in candidates if path.is_file()), None)


def read_flyte2_settings(
    env: Mapping[str, str] | None = None, *, cwd: Path | None = None, home: Path | None = None, files: bool = True
) -> FlytekitSettings:
    """The Flyte 2 SDK's auth settings from the environment and its config file (environment wins);
    ``files=False``: the environment only."""
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    home = Path.home() if home is None else home
    path = find_flyte2_config_file(env, cwd, home) if files else None
    admin: dict[str, Any] = {}
    if path is not None:
        section = load_yaml(path).get("admin")
        admin = section if isinstance(section, dict) else {}
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, (yaml_key, aliases, kind) in _FLYTE2_ENTRIES.items():
        raw: Any = None
        for env_key in (*aliases, f"FLYTE_ADMIN_{yaml_key.upper()}"):
            if env.get(env_key, "") != "":
                raw, sources[name] = env[env_key], env_key
                break
        if raw is None and admin.get(yaml_key) not in (None, ""):
            raw = _single(admin[yaml_key], f"admin.{yaml_key} in the configuration file {path}")
            sources[name] = f"{path} admin.{yaml_key}"
        if raw is None:
            continue
        if kind == "bool":
            values[name] = _as_bool(raw)
        elif kind == "list":
            values[name] = _as_argv(raw) if name in _FLYTE2_ARGV else _as_list(raw)
        else:
            values[name] = str(raw).strip() or None
    if values.get("endpoint"):
        values["endpoint"] = _strip_dns(values["endpoint"])
    return FlytekitSettings(**values, config_file=str(path) if path else None, sources=sources)


def read_sdk_settings(
    env: Mapping[str, str] | None = None, *, cwd: Path | None = None, home: Path | None = None, strict: bool = True
) -> FlytekitSettings:
    """flytekit's settings when they name an endpoint, else the Flyte 2 SDK's (what ``%flyte_login`` and
    ``flyteauth-token`` use without ``--endpoint``).

    ``strict=False`` (for a caller that has its endpoint already: ``--endpoint``): a configuration file
    that cannot be read does not raise; the settings come from the environment alone and ``problem``
    says, in one sentence, which file was skipped and why."""
    try:
        return _read_sdk_settings(env, cwd=cwd, home=home, files=True)
    except ConfigurationError as exc:
        if strict:
            raise
        settings = _read_sdk_settings(env, cwd=cwd, home=home, files=False)
        return dataclasses.replace(settings, problem=str(exc))


def _read_sdk_settings(
    env: Mapping[str, str] | None, *, cwd: Path | None, home: Path | None, files: bool
) -> FlytekitSettings:
    settings = read_flytekit_settings(env, cwd=cwd, home=home, files=files)
    if settings.endpoint:
        return settings
    flyte2 = read_flyte2_settings(env, cwd=cwd, home=home, files=files)
    return flyte2 if flyte2.endpoint else settings
