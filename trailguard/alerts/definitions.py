"""Conditions, policies and destinations as the alerts API reads and writes them.

A condition keeps New Relic's quickstart shape (the same keys as a condition file, plus
`policy`); a destination keeps the alerts file's shape. Every check names the field,
e.g. "`terms[0].threshold` must be a number". Semantic checks (NRQL, operators) are the
loader's, so a condition means the same whether it came from a file or the API.

Destinations made through the API may only name environment variables of their own,
`TRAILGUARD_ALERT_<NAME>__...` (see `env_prefix`), and cannot choose where a secret is sent:
a PagerDuty destination posts to PagerDuty's own endpoint (`events_url` is file-only) and an
e-mail destination cannot log in (`username_env`/`password_env` are file-only), while
webhook and Slack URLs come from the destination's own variables. So whoever holds the API
key can neither read another destination's secret nor the server's others (AWS
credentials, the ingest key) by pointing a destination at a host of theirs.
"""

from __future__ import annotations

import re
from typing import Any

from trailguard.alerts.loader import (
    DESTINATION_TYPES,
    SECRET_INSTEAD,
    check_destination_text,
    parse_condition,
    secret_hint,
)
from trailguard.alerts.model import Condition, Destination, Workflow
from trailguard.errors import AlertError

API_ENV_PREFIX = "TRAILGUARD_ALERT_"
ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,127}$")
MAX_NAME = 200
# orjson and SQLite hold signed 64-bit integers; larger ones would fail when stored.
MAX_INT = 2**63 - 1
PRIORITIES = ("CRITICAL", "WARNING")
NOTIFY_ON = ("opened", "acknowledged", "closed")
# Keys a client may send back unchanged from a GET; they are not part of the definition.
READ_ONLY_KEYS = ("id", "source", "created_ms", "updated_ms", "conditions", "missing_env",
                  "workflows")

CONDITION_KEYS = ("policy", "name", "type", "nrql", "terms", "signal", "expiration",
                  "violationTimeLimitSeconds", "enabled", "description", "runbookUrl",
                  "valueFunction")
TERM_KEYS = ("priority", "operator", "threshold", "thresholdDuration", "thresholdOccurrences")
SIGNAL_KEYS = ("aggregationWindow", "aggregationMethod", "aggregationDelay", "aggregationTimer",
               "fillOption", "fillValue")
EXPIRATION_KEYS = ("expirationDuration", "openViolationOnExpiration",
                   "closeViolationsOnExpiration")
POLICY_KEYS = ("name", "destinations", "priorities", "notify_on")
TEMPLATE_KEYS = ("title", "text")
DESTINATION_KEYS = {
    "webhook": ("url_env", "headers_env", "payload", *TEMPLATE_KEYS),
    "slack": ("url_env", *TEMPLATE_KEYS),
    "pagerduty": ("routing_key_env", "source", *TEMPLATE_KEYS),
    "email": ("host", "port", "starttls", "ca_file", "from", "to", *TEMPLATE_KEYS),
}
# Settings of the alerts file that the API refuses, and why: each would let the API send a
# destination's secret to a host of the caller's choosing.
FILE_ONLY = {
    "events_url": "a PagerDuty destination made through the API posts to PagerDuty's own "
                  "endpoint; set `events_url` in the alerts file",
    "username_env": "an e-mail destination that logs in to its SMTP server can be defined "
                    "only in the alerts file (through the API its `host` could be changed "
                    "to receive the password)",
}
FILE_ONLY["password_env"] = FILE_ONLY["username_env"]
REQUIRED_SETTINGS = {"webhook": ("url_env",), "slack": ("url_env",),
                     "pagerduty": ("routing_key_env",), "email": ("host", "from", "to")}


def condition_from_json(body: Any) -> tuple[str, Condition]:
    """(policy name, condition) from an API body; `AlertError` names the bad field."""
    raw = _definition(body, CONDITION_KEYS, "condition")
    policy = _name(raw, "policy")
    _name(raw, "name")
    _mapping(raw, "nrql", ("query",), required=True)
    _string(raw["nrql"], "query", "nrql.query", required=True)
    _terms(raw)
    # Durations are the loader's (`seconds`): one rule for the file and the API.
    _numbers(_mapping(raw, "signal", SIGNAL_KEYS), "signal", ("fillValue",))
    expiration = _mapping(raw, "expiration", EXPIRATION_KEYS)
    _booleans(expiration, "expiration", ("openViolationOnExpiration",
                                         "closeViolationsOnExpiration"))
    _booleans(raw, "", ("enabled",))
    for key in ("description", "runbookUrl"):
        _string(raw, key, key)
    condition_raw = {key: value for key, value in raw.items() if key != "policy"}
    return policy, parse_condition(condition_raw, policy, "")


def condition_to_json(condition: Condition) -> dict[str, Any]:
    """A condition in New Relic's quickstart shape, with its policy."""
    signal, expiration = condition.signal, condition.expiration
    return {
        "policy": condition.policy, "name": condition.name, "type": "STATIC",
        "nrql": {"query": condition.query},
        "terms": [{"priority": term.priority.value, "operator": term.operator,
                   "threshold": term.threshold, "thresholdDuration": term.duration_s,
                   "thresholdOccurrences": "ALL" if term.all_points else "AT_LEAST_ONCE"}
                  for term in condition.terms],
        "signal": {"aggregationWindow": signal.window_s,
                   "aggregationMethod": signal.method.value,
                   "aggregationDelay": signal.delay_s, "aggregationTimer": signal.timer_s,
                   "fillOption": signal.fill.value, "fillValue": signal.fill_value},
        "expiration": {"expirationDuration": expiration.duration_s,
                       "openViolationOnExpiration": expiration.open_incident,
                       "closeViolationsOnExpiration": expiration.close_incidents},
        "violationTimeLimitSeconds": condition.time_limit_s, "enabled": condition.enabled,
        "description": condition.description, "runbookUrl": condition.runbook_url,
    }


def policy_from_json(body: Any, destinations: set[str]) -> dict[str, Any]:
    """A policy: its name and how its incidents are routed (`destinations`, `priorities`,
    `notify_on`); each destination must exist."""
    raw = _definition(body, POLICY_KEYS, "policy")
    name = _name(raw, "name")
    if "/" in name:
        raise AlertError("`name` of a policy must not contain '/' (it separates policy and "
                         "condition in incident keys)")
    routed = _string_list(raw, "destinations", None)
    unknown = [item for item in routed if item not in destinations]
    if unknown:
        raise AlertError(f"`destinations` names unknown destination(s) {', '.join(unknown)}; "
                         "create them first (POST /api/v1/alerts/destinations)")
    return {"name": name, "destinations": routed,
            "priorities": [p.upper() for p in _string_list(raw, "priorities", PRIORITIES)]
            or list(PRIORITIES),
            "notify_on": _string_list(raw, "notify_on", NOTIFY_ON) or list(NOTIFY_ON)}


def policy_workflow(policy: dict[str, Any]) -> Workflow | None:
    """The routing an API policy stands for, or None when it names no destination."""
    if not policy["destinations"]:
        return None
    return Workflow(f"policy {policy['name']}", tuple(policy["destinations"]),
                    (policy["name"],), tuple(policy["priorities"]), tuple(policy["notify_on"]))


def destination_from_json(body: Any) -> Destination:
    """A destination; secrets only as names of environment variables of its own
    (`env_prefix`), and no setting that chooses where a secret is sent."""
    if isinstance(body, dict):
        leaked = [key for key in SECRET_INSTEAD if key in body]
        if leaked:
            raise AlertError(f"`{leaked[0]}` would put a secret in the API: set it in an "
                             f"environment variable and give its name as "
                             f"{secret_hint(leaked[0])}")
        refused = [key for key in FILE_ONLY if key in body]
        if refused:
            raise AlertError(f"`{refused[0]}` is refused through the API: {FILE_ONLY[refused[0]]}")
    keys = tuple(dict.fromkeys(key for keys in DESTINATION_KEYS.values() for key in keys))
    raw = _definition(body, ("name", "type", *keys), "destination")
    name = _name(raw, "name")
    kind = str(raw.get("type") or "").lower()
    if kind not in DESTINATION_TYPES:
        raise AlertError(f"`type` must be one of {', '.join(DESTINATION_TYPES)}")
    settings = {key: value for key, value in raw.items() if key not in ("name", "type")}
    extra = sorted(set(settings) - set(DESTINATION_KEYS[kind]))
    if extra:
        raise AlertError(f"`{extra[0]}` is not a setting of {kind} destinations (settings: "
                         f"{', '.join(DESTINATION_KEYS[kind])})")
    for key in REQUIRED_SETTINGS[kind]:
        if settings.get(key) in (None, "", []):
            raise AlertError(f"`{key}` is required for {kind} destinations")
    _env_settings(name, settings)
    _template_settings(settings)
    if kind == "email":
        _email_settings(settings)
    check_destination_text(kind, settings, f"destination '{name}'")
    return Destination(name, kind, settings)


def env_prefix(name: str) -> str:
    """The prefix of every variable an API destination named `name` may use:
    `TRAILGUARD_ALERT_`, the name in upper case with each run of other characters as one
    `_`, then `__` ("soc-slack" -> `TRAILGUARD_ALERT_SOC_SLACK__`). The double underscore
    cannot occur inside the name part, so each variable belongs to one name only."""
    return f"{API_ENV_PREFIX}{re.sub(r'[^A-Z0-9]+', '_', name.upper()).strip('_')}__"


def _env_settings(name: str, settings: dict[str, Any]) -> None:
    prefix = env_prefix(name)
    for key, value in settings.items():
        if key.endswith("_env") and key != "headers_env":
            _env_name(value, key, prefix)
    headers = settings.get("headers_env") or {}
    if not isinstance(headers, dict):
        raise AlertError("`headers_env` must map header names to environment variable names")
    for header, env in headers.items():
        _env_name(env, f"headers_env.{header}", prefix)


def _template_settings(settings: dict[str, Any]) -> None:
    if not isinstance(settings.get("title", ""), str):
        raise AlertError("`title` must be a string")
    text = settings.get("text", "")
    events = ("opened", "escalated", "acknowledged", "closed")
    if isinstance(text, dict):
        wrong = [key for key, value in text.items()
                 if key not in events or not isinstance(value, str)]
        if wrong:
            raise AlertError(f"`text.{wrong[0]}`: `text` maps events ({', '.join(events)}) "
                             "to strings")
    elif not isinstance(text, str):
        raise AlertError("`text` must be a string or map events to strings")


def destination_to_json(destination: Destination, environ: dict[str, str]) -> dict[str, Any]:
    """Name, type and settings (variable names, never values), and which variables are unset."""
    return {"name": destination.name, "type": destination.type,
            **destination.settings, "missing_env": missing_env(destination, environ)}


def missing_env(destination: Destination, environ: dict[str, str]) -> list[str]:
    """Names of the variables a destination needs that are not set (values never shown)."""
    headers = destination.settings.get("headers_env") or {}
    names = [str(value) for key, value in destination.settings.items()
             if key.endswith("_env") and key != "headers_env" and value]
    names += [str(value) for value in headers.values()] if isinstance(headers, dict) else []
    return [name for name in names if not environ.get(name)]


def _definition(body: Any, keys: tuple[str, ...], what: str) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise AlertError(f"the request body must be a JSON object describing a {what}")
    _check_integers(body, "")
    raw = {key: value for key, value in body.items() if key not in READ_ONLY_KEYS}
    unknown = sorted(set(raw) - set(keys))
    if unknown:
        raise AlertError(f"unknown field `{unknown[0]}` in a {what} (fields: {', '.join(keys)})")
    return raw


def _name(raw: dict[str, Any], key: str) -> str:
    value = raw.get(key)
    if not isinstance(value, str) or not value.strip():
        raise AlertError(f"`{key}` is required and must be a non-empty string")
    if len(value) > MAX_NAME or any(ord(char) < 32 for char in value):
        raise AlertError(f"`{key}` must be at most {MAX_NAME} printable characters")
    return value.strip()


def _string(raw: dict[str, Any], key: str, field: str, required: bool = False) -> None:
    value = raw.get(key)
    if value is None and not required:
        return
    if isinstance(value, str) and (value.strip() or not required):
        return
    raise AlertError(f"`{field}` must be a {'non-empty ' if required else ''}string")


def _mapping(raw: dict[str, Any], key: str, keys: tuple[str, ...],
             required: bool = False) -> dict[str, Any]:
    value = raw.get(key)
    if value is None and not required:
        return {}
    if not isinstance(value, dict):
        raise AlertError(f"`{key}` must be an object" + (" and is required" if required else ""))
    unknown = sorted(set(value) - set(keys))
    if unknown:
        raise AlertError(f"unknown field `{key}.{unknown[0]}` (fields: {', '.join(keys)})")
    return value


def _terms(raw: dict[str, Any]) -> None:
    terms = raw.get("terms")
    if not isinstance(terms, list) or not terms:
        raise AlertError("`terms` must be a non-empty list of thresholds")
    for index, term in enumerate(terms):
        field = f"terms[{index}]"
        if not isinstance(term, dict):
            raise AlertError(f"`{field}` must be an object")
        unknown = sorted(set(term) - set(TERM_KEYS))
        if unknown:
            raise AlertError(f"unknown field `{field}.{unknown[0]}` "
                             f"(fields: {', '.join(TERM_KEYS)})")
        if "threshold" not in term:
            raise AlertError(f"`{field}.threshold` is required")
        _numbers(term, field, ("threshold",))
        for key in ("priority", "operator", "thresholdOccurrences"):
            _string(term, key, f"{field}.{key}")
    priorities = [str(term.get("priority", "CRITICAL")).upper() for term in terms]
    repeated = sorted({p for p in priorities if priorities.count(p) > 1})
    if repeated:
        raise AlertError(f"`terms` has more than one {repeated[0]} term; give one per priority")


def _numbers(raw: dict[str, Any], where: str, keys: tuple[str, ...]) -> None:
    for key in keys:
        value = raw.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            field = f"{where}.{key}" if where else key
            raise AlertError(f"`{field}` must be a number, not {value!r}")


def _check_integers(value: Any, field: str) -> None:
    """Refuse integers beyond 64 bits anywhere in a body, naming where they are."""
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT:
        raise AlertError(f"`{field or 'body'}` is too large a number")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_integers(item, f"{field}.{key}" if field else str(key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            _check_integers(item, f"{field}[{index}]")


def _booleans(raw: dict[str, Any], where: str, keys: tuple[str, ...]) -> None:
    for key in keys:
        if key in raw and not isinstance(raw[key], bool):
            raise AlertError(f"`{f'{where}.{key}' if where else key}` must be true or false")


def _string_list(raw: dict[str, Any], key: str, allowed: tuple[str, ...] | None) -> list[str]:
    value = raw.get(key) or []
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise AlertError(f"`{key}` must be a list of strings")
    if allowed is not None:
        wrong = [item for item in value if item.upper() not in allowed
                 and item not in allowed]
        if wrong:
            raise AlertError(f"`{key}` may hold only {', '.join(allowed)}, not {wrong[0]!r}")
    return list(dict.fromkeys(value))


def _env_name(value: Any, field: str, prefix: str) -> None:
    if not isinstance(value, str) or not ENV_NAME.match(value):
        raise AlertError(f"`{field}` must be the name of an environment variable "
                         "(upper case letters, digits, _), never the secret itself")
    if not value.startswith(prefix) or value == prefix:
        raise AlertError(f"`{field}` must name a variable starting with {prefix} "
                         f"(e.g. {prefix}URL): a destination made through the API may use "
                         "only variables named after it")


def _email_settings(settings: dict[str, Any]) -> None:
    port = settings.get("port", 587)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise AlertError("`port` must be a number between 1 and 65535")
    recipients = settings["to"]
    if isinstance(recipients, str):
        recipients = [recipients]
    if not isinstance(recipients, list) or not all(isinstance(r, str) and "@" in r
                                                   for r in recipients):
        raise AlertError("`to` must be an e-mail address or a list of them")
    for key in ("host", "from"):
        if not isinstance(settings[key], str):
            raise AlertError(f"`{key}` must be a string")
    if "starttls" in settings and not isinstance(settings["starttls"], bool):
        raise AlertError("`starttls` must be true or false")
    if "ca_file" in settings and not isinstance(settings["ca_file"], str):
        raise AlertError("`ca_file` must be the path of a PEM file")
