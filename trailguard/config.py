"""The one typed configuration object: defaults, then the YAML file, then
`TRAILGUARD_*` environment variables, then command-line flags.

Secrets (the ingest and API keys) never come from the YAML file: they come from
the environment, or are generated once and kept in the data directory.
"""

from __future__ import annotations

import os
import re
import secrets
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import orjson
import yaml

from trailguard.datadir import prepare_data_dir
from trailguard.errors import ConfigError
from trailguard.sources.settings import SourcesConfig, parse_sources

DEFAULT_CONFIG_FILE = "trailguard.yaml"
KEYS_FILE = "keys.json"
SECRET_KEYS = ("firehose_access_key", "api_key")
MIN_KEY_LENGTH = 16


@dataclass(slots=True)
class Config:
    """Everything trailguard can be told. See docs/configuration.md."""

    data_dir: Path = Path("data")
    host: str = "127.0.0.1"
    port: int = 8080
    tls_cert: Path | None = None
    tls_key: Path | None = None
    log_level: str = "info"
    max_body_bytes: int = 64 * 1024 * 1024
    max_inflated_bytes: int = 128 * 1024 * 1024
    alerts_file: Path | None = None
    ingest_queue_events: int = 50_000
    ingest_queue_mib: int = 128  # decoded rows waiting for a commit, in MiB (a batch: ~58)
    ingest_decode_workers: int = -1  # processes decoding big requests; -1: one per core
    stop_grace_s: int = 30  # how long a stop waits for requests in flight
    retention_days: dict[str, float] = field(default_factory=dict)  # event type -> days
    # DuckDB memory_limit, e.g. "2GB"; "" for DuckDB's own default, 80% of RAM. 256MB kept
    # a 10-million-event ingest within 1 GiB in all, as fast as 512MB (bench/ingest.py);
    # bigger queries spill to data/tmp.
    store_memory_limit: str = "256MB"
    sources: SourcesConfig = field(default_factory=SourcesConfig)  # docs/aws-sources.md
    firehose_access_key: str = field(default="", repr=False)
    api_key: str = field(default="", repr=False)


def load_config(path: Path | None = None, overrides: dict[str, Any] | None = None,
                environ: dict[str, str] | None = None) -> Config:
    """Build the configuration; raises `ConfigError` naming the bad key."""
    environ = dict(os.environ) if environ is None else environ
    values: dict[str, Any] = {}
    config_path = path or (Path(DEFAULT_CONFIG_FILE) if Path(DEFAULT_CONFIG_FILE).exists()
                           else None)
    if config_path is not None:
        values.update(_read_yaml(config_path))

    known = {item.name for item in fields(Config)}
    for name in known:
        env_value = environ.get(f"TRAILGUARD_{name.upper()}")
        if env_value is not None and env_value != "":
            values[name] = env_value
    values.update({key: value for key, value in (overrides or {}).items() if value is not None})
    return _typed(values, known)


def _read_yaml(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    if not isinstance(loaded, dict):
        raise ConfigError(f"config file {path} must be a mapping of keys to values")
    leaked = [key for key in SECRET_KEYS if key in loaded]
    if leaked:
        raise ConfigError(f"{path}: {', '.join(leaked)} must not be in the config file; set "
                          f"TRAILGUARD_{leaked[0].upper()} in the environment instead")
    return loaded


def _typed(values: dict[str, Any], known: set[str]) -> Config:
    unknown = sorted(set(values) - known)
    if unknown:
        raise ConfigError(f"unknown configuration key(s): {', '.join(unknown)}")
    config = Config()
    for item in fields(Config):
        if item.name not in values:
            continue
        raw = values[item.name]
        try:
            setattr(config, item.name, _convert(item.name, raw))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"configuration key {item.name}: {exc}") from exc
    return config


# Whole-number settings and the least each may be (port also has a most).
_MINIMUMS = {"port": 1, "max_body_bytes": 1024, "max_inflated_bytes": 1024,
             "ingest_queue_events": 1, "ingest_queue_mib": 1, "ingest_decode_workers": -1,
             "stop_grace_s": 1}
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


def _convert(name: str, raw: Any) -> Any:
    if name == "sources":
        return parse_sources(raw)
    if name == "retention_days":
        return _retention_days(raw)
    if name in ("data_dir", "tls_cert", "tls_key", "alerts_file"):
        return Path(str(raw)).expanduser()
    if name in _MINIMUMS:
        return _whole_number(name, raw)
    if name == "store_memory_limit":
        return _memory_size(raw)
    if name == "log_level":
        level = str(raw).strip().lower()
        if level not in LOG_LEVELS:
            raise ValueError(f"{raw!r} is not a log level; use one of {', '.join(LOG_LEVELS)}")
        return level
    return str(raw)


_MEMORY_SIZE = re.compile(r"\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)", re.IGNORECASE)


def _memory_size(raw: Any) -> str:
    """A DuckDB memory_limit such as "2GB" or "512MiB" ("" keeps DuckDB's default)."""
    text = str(raw).strip()
    if text and not _MEMORY_SIZE.fullmatch(text):
        raise ValueError(f"must be a size such as 512MB or 2GB, not {text!r}")
    return text


def _whole_number(name: str, raw: Any) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int | str):
        raise TypeError(f"must be a whole number, not {raw!r}")
    try:
        number = int(raw)
    except ValueError:
        raise ValueError(f"must be a whole number, not {raw!r}") from None
    most = 65535 if name == "port" else None
    if number < _MINIMUMS[name] or (most is not None and number > most):
        bounds = f"from {_MINIMUMS[name]} to {most}" if most else f"at least {_MINIMUMS[name]}"
        raise ValueError(f"must be {bounds}, not {number}")
    return number


def _retention_days(raw: Any) -> dict[str, float]:
    """`{event type: days}` from YAML or a JSON environment value; absent types are kept."""
    if isinstance(raw, str):
        raw = orjson.loads(raw) if raw.strip() else {}
    if not isinstance(raw, dict):
        raise TypeError('must map event types to days, e.g. {"Log": 90}')
    days: dict[str, float] = {}
    for event_type, value in raw.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ValueError(f"{event_type}: {value!r} is not a positive number of days")
        days[str(event_type)] = float(value)
    return days


def ensure_keys(config: Config) -> list[str]:
    """Fill missing keys from the data dir, generating and saving any that do not exist.

    Returns the names of keys generated now, so the caller can show them once.
    """
    keys_path = config.data_dir / KEYS_FILE
    stored: dict[str, str] = {}
    if keys_path.exists():
        try:
            stored = orjson.loads(keys_path.read_bytes())
        except orjson.JSONDecodeError as exc:
            raise ConfigError(f"{keys_path} is not valid JSON ({exc}); fix it, or delete it to "
                              "have new keys generated (senders will need the new keys)") from exc
        if not isinstance(stored, dict):
            raise ConfigError(f"{keys_path} must be a JSON object of key names to keys")
    generated = []
    for name in SECRET_KEYS:
        if getattr(config, name):
            continue
        if not stored.get(name):
            stored[name] = secrets.token_urlsafe(32)
            generated.append(name)
        setattr(config, name, stored[name])
    for name in SECRET_KEYS:
        if len(getattr(config, name)) < MIN_KEY_LENGTH:
            raise ConfigError(f"the {name} is shorter than {MIN_KEY_LENGTH} characters; use a "
                              f"long random value (e.g. `openssl rand -hex 32`)")
    if generated:
        prepare_data_dir(config.data_dir)
        descriptor = os.open(keys_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(orjson.dumps(stored, option=orjson.OPT_INDENT_2))
    return generated


def stored_key(data_dir: Path, name: str) -> str | None:
    """A key kept in the data dir by `ensure_keys`, if any."""
    keys_path = data_dir / KEYS_FILE
    if not keys_path.exists():
        return None
    return orjson.loads(keys_path.read_bytes()).get(name)
