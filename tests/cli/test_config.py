"""Configuration values: every bad one is a ConfigError naming the key, never a traceback."""

from __future__ import annotations

import pytest

from trailguard.config import load_config
from trailguard.errors import ConfigError


@pytest.mark.parametrize(("key", "value", "says"), [
    ("log_level", "verbose", "'verbose' is not a log level; use one of debug, info"),
    ("port", "banana", "port: must be a whole number, not 'banana'"),
    ("port", "70000", "port: must be from 1 to 65535, not 70000"),
    ("max_body_bytes", "-1", "max_body_bytes: must be at least 1024, not -1"),
    ("ingest_queue_events", "0", "ingest_queue_events: must be at least 1, not 0"),
    ("ingest_decode_workers", "-2", "ingest_decode_workers: must be at least -1, not -2"),
    ("ingest_queue_mib", "1.5", "ingest_queue_mib: must be a whole number, not '1.5'"),
    ("stop_grace_s", "0", "stop_grace_s: must be at least 1, not 0"),
    ("store_memory_limit", "lots", "store_memory_limit: must be a size such as 512MB or 2GB"),
])
def test_a_bad_value_names_the_key_and_what_is_allowed(key: str, value: str, says: str) -> None:
    with pytest.raises(ConfigError, match="configuration key") as caught:
        load_config(environ={f"TRAILGUARD_{key.upper()}": value})
    assert says in str(caught.value)


def test_good_values_are_typed() -> None:
    config = load_config(environ={"TRAILGUARD_LOG_LEVEL": "WARNING", "TRAILGUARD_PORT": "8443",
                                  "TRAILGUARD_INGEST_DECODE_WORKERS": "0"})
    assert (config.log_level, config.port, config.ingest_decode_workers) == ("warning", 8443, 0)


def test_a_yaml_boolean_is_not_a_number(tmp_path) -> None:
    path = tmp_path / "trailguard.yaml"
    path.write_text("port: true\n")
    with pytest.raises(ConfigError, match="port: must be a whole number, not True"):
        load_config(path, environ={})
