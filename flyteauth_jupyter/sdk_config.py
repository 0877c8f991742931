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
aliases ``FLYTE_AUTH_TYPE`` and ``FLYTE_AUTH_COMMAND``), then the first YAML file that exists of
``./config.yaml``, ``./.flyte/config.yaml``, ``<git root>/.flyte/config.yaml``, ``$UCTL_CONFIG``,
``$FLYTECTL_CONFIG``, ``~/.union/config.yaml``, ``~/.flyte/config.yaml`` (keys under ``admin:``).

Client secrets are never read here: :class:`FlytekitSettings` records *where* the secret is (an
environment variable name or a file) and :func:`read_client_secret` reads it when the authenticator is
built, so no settings object, repr or history entry ever holds one.
"""

from __future__ import annotations

import configparser
import os
import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import ConfigurationError

TRUE = {"1", "true", "yes", "on", "t", "y"}


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
    config_file: str | None = None
    sources: dict[str, str] = field(default_factory=dict, compare=False)

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


# -- YAML: PyYAML when installed, else a small reader for flytectl's simple nested mappings -------
def _parse_scalar(text: str) -> Any:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    if text.startswith("[") and text.endswith("]"):
        inner = text[1:-1].strip()
        return [_parse_scalar(part) for part in inner.split(",")] if inner else []
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


def load_yaml(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    try:
        import yaml  # type: ignore[import-untyped]
    except ImportError:
        data: Any = simple_yaml(text)
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise ConfigurationError(f"The flytekit config file {path} is not valid YAML.") from exc
    return data if isinstance(data, dict) else {}


# -- the settings -------------------------------------------------------------------------------
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
}


def read_flytekit_settings(
    env: Mapping[str, str] | None = None, *, cwd: Path | None = None, home: Path | None = None
) -> FlytekitSettings:
    """flytekit's auth settings from the environment and its config file (environment wins)."""
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    home = Path.home() if home is None else home
    path = find_config_file(env, cwd, home)
    admin: dict[str, Any] = {}
    ini: configparser.ConfigParser | None = None
    if path is not None:
        if path.suffix.lower() in (".yaml", ".yml"):
            document = load_yaml(path)
            section = document.get("admin")
            admin = section if isinstance(section, dict) else {}
        else:
            ini = configparser.ConfigParser()
            try:
                ini.read(path, encoding="utf-8")
            except configparser.Error as exc:
                raise ConfigurationError(f"The flytekit config file {path} could not be parsed.") from exc

    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for name, (env_key, yaml_key, (section, option), kind) in _ENTRIES.items():
        raw: Any = None
        if env.get(env_key, "") != "":
            raw, sources[name] = env[env_key], env_key
        elif ini is not None and ini.has_option(section, option):
            raw, sources[name] = ini.get(section, option), f"{path} [{section}] {option}"
        elif yaml_key in admin and admin[yaml_key] not in (None, ""):
            raw, sources[name] = admin[yaml_key], f"{path} admin.{yaml_key}"
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
}


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
    env: Mapping[str, str] | None = None, *, cwd: Path | None = None, home: Path | None = None
) -> FlytekitSettings:
    """The Flyte 2 SDK's auth settings from the environment and its config file (environment wins)."""
    env = os.environ if env is None else env
    cwd = Path.cwd() if cwd is None else cwd
    home = Path.home() if home is None else home
    path = find_flyte2_config_file(env, cwd, home)
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
            raw, sources[name] = admin[yaml_key], f"{path} admin.{yaml_key}"
        if raw is None:
            continue
        if kind == "bool":
            values[name] = _as_bool(raw)
        elif kind == "list":
            values[name] = tuple(shlex.split(raw)) if isinstance(raw, str) and name == "command" else _as_list(raw)
        else:
            values[name] = str(raw).strip() or None
    if values.get("endpoint"):
        values["endpoint"] = _strip_dns(values["endpoint"])
    return FlytekitSettings(**values, config_file=str(path) if path else None, sources=sources)


def read_sdk_settings(
    env: Mapping[str, str] | None = None, *, cwd: Path | None = None, home: Path | None = None
) -> FlytekitSettings:
    """flytekit's settings when they name an endpoint, else the Flyte 2 SDK's (what ``%flyte_login`` and
    ``flyteauth-token`` use without ``--endpoint``)."""
    settings = read_flytekit_settings(env, cwd=cwd, home=home)
    if settings.endpoint:
        return settings
    flyte2 = read_flyte2_settings(env, cwd=cwd, home=home)
    return flyte2 if flyte2.endpoint else settings
