"""Deployment settings: a TOML file, overridable per key by IOC_<KEY> environment variables.

The file is ``config/ioc.toml`` unless ``IOC_CONFIG`` names another. Relative paths in SQLite URLs
and file settings are resolved against the project folder. Every problem raises ``ConfigError``
naming the key and the file (or the environment variable).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from config.errors import ConfigError, read_toml

PROJECT_DIR = Path(__file__).resolve().parent.parent
DEFAULT_FILE = PROJECT_DIR / "config" / "ioc.toml"
ENV_PREFIX = "IOC_"


@dataclass(frozen=True)
class Settings:
    """Typed settings of one deployment."""

    source: str
    province_code: str
    warehouse_url: str
    app_db_url: str
    snapshot_url: str
    secret_key: str
    datasets_file: Path
    boundaries_path: Path | None
    population_table: str | None
    session_idle_minutes: int
    unmasked_roles: tuple[str, ...]
    refresh_seconds: int
    map_tile_url: str | None
    secure_cookies: bool
    login_max_failures: int = 5
    login_delay_seconds: int = 30
    login_max_delay_seconds: int = 3600
    trusted_proxy_count: int = 0
    split_rule: str = "default"
    split_overrides: tuple[tuple[str, str], ...] = ()
    boundaries_code_field: str = "code"
    boundaries_tolerance_m: int = 60
    boundaries_cache_dir: Path | None = None
    pseudo_language: bool = False
    """Test-only: enables the pseudo-language ``xx`` (``/lang/xx``). Never set in production."""
    smtp_url: str | None = None
    """Where alert e-mail goes: smtp://[user:password@]host[:port]?from=address[&starttls=1]."""

    @property
    def split_override_map(self) -> dict[str, str]:
        """``split_overrides`` as old code -> new code."""
        return dict(self.split_overrides)


def _resolve_sqlite(url: str) -> str:
    """Make a relative SQLite path absolute against the project folder."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database and not os.path.isabs(parsed.database):
        return str(parsed.set(database=str(PROJECT_DIR / parsed.database)))
    return url


def _resolve_path(value: str) -> Path:
    path = Path(value).expanduser()
    return path if path.is_absolute() else PROJECT_DIR / path


class _Values:
    """Looks a key up in the environment first, then in the file, remembering where it came from."""

    def __init__(self, path: Path, data: dict[str, Any]) -> None:
        self.path = path
        self.data = data

    def raw(self, key: str) -> tuple[Any, str]:
        env_name = ENV_PREFIX + key.upper()
        if env_name in os.environ:
            return os.environ[env_name], f"environment variable {env_name}"
        return self.data.get(key), str(self.path)

    def text(self, key: str, *, default: str | None = None, required: bool = True) -> str | None:
        value, where = self.raw(key)
        if value is None or value == "":
            if default is not None or not required:
                return default
            raise ConfigError(where, key, "is required")
        if not isinstance(value, str):
            raise ConfigError(where, key, f"expected text, got {value!r}")
        return value

    def integer(self, key: str, default: int, *, minimum: int = 1) -> int:
        value, where = self.raw(key)
        if value is None:
            return default
        try:
            number = int(value)
        except (TypeError, ValueError):
            raise ConfigError(where, key, f"expected a whole number, got {value!r}") from None
        if number < minimum:
            raise ConfigError(where, key, f"must be at least {minimum}, got {number}")
        return number

    def boolean(self, key: str, default: bool) -> bool:
        value, where = self.raw(key)
        if value is None:
            return default
        if isinstance(value, bool):
            return value
        lowered = str(value).strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        raise ConfigError(where, key, f"expected true or false, got {value!r}")

    def url(self, key: str, default: str | None = None) -> str:
        value = self.text(key, default=default)
        _, where = self.raw(key)
        if key == "snapshot_url":
            scheme = value.split(":", 1)[0]
            if scheme not in ("sqlite", "redis", "memory"):
                raise ConfigError(where, key, f"expected a sqlite:///, redis:// or memory:// URL, got {value!r}")
            return _resolve_sqlite(value) if scheme == "sqlite" else value
        try:
            make_url(value)
        except ArgumentError:
            raise ConfigError(where, key, f"not a database URL: {value!r}") from None
        return _resolve_sqlite(value)

    def names(self, key: str) -> tuple[str, ...]:
        value, where = self.raw(key)
        if value is None:
            return ()
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",") if part.strip()]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise ConfigError(where, key, f"expected a list of names, got {value!r}")
        return tuple(value)


SPLIT_RULES = ("default", "nearest")
MAX_BOUNDARY_TOLERANCE_M = 150
"""Simplified wards must stay within 150 m of their official outline."""


def _unit_code(value: object) -> bool:
    return isinstance(value, str) and value.isdigit() and len(value) == 5


def _split_settings(values: _Values) -> tuple[str, tuple[tuple[str, str], ...]]:
    """``split_rule`` (one of SPLIT_RULES) and ``split_overrides`` (old ward code -> new ward code).

    In the file the overrides are a table (``[ioc.split_overrides]`` with ``"00007" = "00008"``); in
    the environment ``IOC_SPLIT_OVERRIDES=00007=00008,00016=00004``. Whether each pair is a real split
    of the province is checked at start-up against the unit registry.
    """
    rule = values.text("split_rule", default="default")
    if rule not in SPLIT_RULES:
        _, where = values.raw("split_rule")
        raise ConfigError(where, "split_rule", f"expected one of {', '.join(SPLIT_RULES)}, got {rule!r}")
    raw, where = values.raw("split_overrides")
    if raw is None or raw == "":
        return rule, ()
    if isinstance(raw, str):
        pairs = []
        for part in (p.strip() for p in raw.split(",") if p.strip()):
            old, sep, new = part.partition("=")
            if not sep:
                raise ConfigError(where, "split_overrides", f"expected old=new pairs like 00007=00008, got {part!r}")
            pairs.append((old.strip(), new.strip()))
    elif isinstance(raw, dict):
        pairs = list(raw.items())
    else:
        raise ConfigError(where, "split_overrides", f"expected a table of old ward code = new ward code, got {raw!r}")
    for old, new in pairs:
        if not (_unit_code(old) and _unit_code(new)):
            raise ConfigError(where, "split_overrides", f"ward codes have five digits, got {old!r} = {new!r}")
    return rule, tuple(sorted(pairs))


def _secret_key(values: _Values) -> str:
    """The session-signing secret: from IOC_SECRET_KEY, or read from the file ``secret_key_file`` names."""
    direct, _ = values.raw("secret_key")
    if direct:
        if len(str(direct)) < 32:
            raise ConfigError(f"environment variable {ENV_PREFIX}SECRET_KEY", "secret_key", "use 32 characters or more")
        return str(direct)
    file_value = values.text("secret_key_file")
    _, where = values.raw("secret_key_file")
    path = _resolve_path(file_value)
    try:
        secret = path.read_text(encoding="utf-8").strip()
    except OSError as error:
        raise ConfigError(where, "secret_key_file", f"cannot read {path}: {error.strerror}") from None
    if len(secret) < 32:
        raise ConfigError(where, "secret_key_file", f"{path} must hold a secret of 32 characters or more")
    return secret


def load_settings(path: Path | str | None = None) -> Settings:
    """Read, validate and resolve the settings."""
    path = Path(path or os.environ.get(ENV_PREFIX + "CONFIG") or DEFAULT_FILE)
    data = read_toml(path)
    section = data.get("ioc")
    if not isinstance(section, dict):
        raise ConfigError(path, "ioc", "the file needs an [ioc] table")
    values = _Values(path, section)
    province_code = values.text("province_code")
    if not (province_code.isdigit() and len(province_code) == 2):
        _, where = values.raw("province_code")
        raise ConfigError(
            where, "province_code", f"expected a two-digit province code like '46', got {province_code!r}"
        )
    delay, max_delay = values.integer("login_delay_seconds", 30), values.integer("login_max_delay_seconds", 3600)
    if max_delay < delay:
        _, where = values.raw("login_max_delay_seconds")
        raise ConfigError(
            where, "login_max_delay_seconds", f"must be at least login_delay_seconds ({delay}), got {max_delay}"
        )
    boundaries = values.text("boundaries_path", required=False)
    cache_dir = values.text("boundaries_cache_dir", default="var/cache/boundaries")
    tolerance = values.integer("boundaries_tolerance_m", 60)
    if tolerance > MAX_BOUNDARY_TOLERANCE_M:
        _, where = values.raw("boundaries_tolerance_m")
        raise ConfigError(
            where, "boundaries_tolerance_m", f"must be at most {MAX_BOUNDARY_TOLERANCE_M} (m), got {tolerance}"
        )
    split_rule, split_overrides = _split_settings(values)
    datasets_file = _resolve_path(values.text("datasets_file", default="config/datasets.toml"))
    return Settings(
        source=str(path),
        province_code=province_code,
        warehouse_url=values.url("warehouse_url"),
        app_db_url=values.url("app_db_url"),
        snapshot_url=values.url("snapshot_url"),
        secret_key=_secret_key(values),
        datasets_file=datasets_file,
        boundaries_path=_resolve_path(boundaries) if boundaries else None,
        population_table=values.text("population_table", required=False),
        session_idle_minutes=values.integer("session_idle_minutes", 30),
        unmasked_roles=values.names("unmasked_roles"),
        refresh_seconds=values.integer("refresh_seconds", 5),
        map_tile_url=values.text("map_tile_url", required=False),
        secure_cookies=values.boolean("secure_cookies", False),
        login_max_failures=values.integer("login_max_failures", 5),
        login_delay_seconds=delay,
        login_max_delay_seconds=max_delay,
        trusted_proxy_count=values.integer("trusted_proxy_count", 0, minimum=0),
        split_rule=split_rule,
        split_overrides=split_overrides,
        boundaries_code_field=values.text("boundaries_code_field", default="code"),
        boundaries_tolerance_m=tolerance,
        boundaries_cache_dir=_resolve_path(cache_dir) if cache_dir != "none" else None,
        pseudo_language=values.boolean("pseudo_language", False),
        smtp_url=_smtp_url(values),
    )


def _smtp_url(values: _Values) -> str | None:
    """The optional SMTP server of alert e-mail."""
    url = values.text("smtp_url", required=False)
    if url and not url.startswith(("smtp://", "smtps://")):
        _, where = values.raw("smtp_url")
        raise ConfigError(where, "smtp_url", f"expected smtp://host:port?from=address, got {url!r}")
    return url
