"""Read an alerts file (and New Relic quickstart condition files) into `AlertsConfig`."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import yaml

from trailguard.alerts.model import (
    DEFAULT_TIME_LIMIT_SECONDS,
    MAX_TERM_WINDOWS,
    OPERATORS,
    AlertsConfig,
    Condition,
    Destination,
    Expiration,
    Fill,
    Method,
    Priority,
    Retry,
    Signal,
    Term,
    Workflow,
)
from trailguard.errors import AlertError, NrqlError

PACKS_DIR = Path(__file__).resolve().parent.parent / "content" / "alerts"
DESTINATION_TYPES = ("webhook", "slack", "email", "pagerduty")
# Whole seconds, (lowest, highest). The highest are New Relic's limits for NRQL conditions
# (aggregation window up to 2 h, a static term's duration up to 24 h, loss of signal up to
# 48 h, incident time limit up to 30 days; delay and timer share the window's 2 h); the
# lowest stay at 1 s (0 s for the delay) so tests and replays can use short windows.
SECONDS_LIMITS = {"thresholdDuration": (1, 86_400), "aggregationWindow": (1, 7_200),
                  "aggregationDelay": (0, 7_200), "aggregationTimer": (1, 7_200),
                  "expirationDuration": (1, 172_800),
                  "violationTimeLimitSeconds": (1, 2_592_000)}
# Characters that would end a mail header line or smuggle another header in.
_HEADER_BREAKS = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")  # also NEL, LS, PS
_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]{1,128}$")
# The setting that names the variable holding a secret written into a destination (a
# Slack token is part of its incoming-webhook URL: there is no `token_env`).
SECRET_INSTEAD = {"url": "url_env", "routing_key": "routing_key_env",
                  "password": "password_env", "username": "username_env", "token": "url_env"}


def secret_hint(key: str) -> str:
    """Why a secret setting is refused and what to write instead."""
    hint = f"`{SECRET_INSTEAD[key]}`"
    if key == "token":
        hint += " (a Slack incoming-webhook URL, which holds the token)"
    return hint
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|`[^`]*`|\"(?:[^\"\\]|\\.)*\"")
_FORBIDDEN = re.compile(r"\b(SINCE|UNTIL|TIMESERIES|COMPARE\s+WITH)\b", re.IGNORECASE)


def load_alerts(path: Path) -> AlertsConfig:
    """Parse the alerts file at `path`; raises `AlertError` naming what is wrong and where."""
    document = _read_mapping(path)
    config = AlertsConfig(
        interval_s=float(document.get("evaluation_interval_seconds", 5)),
        retry=_retry(document.get("retry") or {}, path))
    for policy in document.get("policies") or []:
        config.conditions += _policy_conditions(policy, path)
    for raw in document.get("destinations") or []:
        destination = _destination(raw, path)
        config.destinations[destination.name] = destination
    config.workflows = [_workflow(raw, config, path) for raw in document.get("workflows") or []]
    _check_unique([c.key for c in config.conditions], "condition", path)
    return config


def load_condition_file(path: Path, policy: str = "default") -> Condition:
    """One New Relic quickstart condition file (`name`, `nrql.query`, `terms`, ...)."""
    return parse_condition(_read_mapping(path), policy, str(path))


def pack_conditions(pack: str, policy: str) -> list[Condition]:
    """The conditions shipped in `content/alerts/<pack>/`."""
    folder = PACKS_DIR / pack
    if not folder.is_dir():
        known = ", ".join(sorted(p.name for p in PACKS_DIR.iterdir() if p.is_dir()))
        raise AlertError(f"unknown alert pack '{pack}' (shipped packs: {known})")
    files = sorted([*folder.glob("*.yml"), *folder.glob("*.yaml")])
    return [load_condition_file(file, policy) for file in files]


def parse_condition(raw: dict[str, Any], policy: str, where: str) -> Condition:
    """A condition from its New Relic shaped mapping; `where` ("" for the API) prefixes
    every message."""
    name = _required(raw, "name", where)
    context = f"{where}: condition '{name}'" if where else f"condition '{name}'"
    kind = str(raw.get("type", "STATIC")).upper()
    if kind != "STATIC":
        raise AlertError(f"{context} has type {kind}; only STATIC is supported")
    query = _query(raw, context)
    terms = tuple(_term(term, index, context)
                  for index, term in enumerate(raw.get("terms") or []))
    if not terms:
        raise AlertError(f"{context} needs at least one term under `terms`")
    signal = _signal(raw.get("signal") or {}, context)
    _check_term_windows(terms, signal, context)
    return Condition(
        name=str(name), policy=policy, query=query, terms=terms, signal=signal,
        expiration=_expiration(raw.get("expiration") or {}, context),
        time_limit_s=seconds(raw, "violationTimeLimitSeconds", "violationTimeLimitSeconds",
                             DEFAULT_TIME_LIMIT_SECONDS, context),
        enabled=bool(raw.get("enabled", True)),
        description=str(raw.get("description") or "").strip(),
        runbook_url=str(raw.get("runbookUrl") or ""))


def seconds(raw: dict[str, Any], key: str, field: str, default: int, context: str) -> int:
    """`raw[key]` as whole seconds within `SECONDS_LIMITS[key]`; absent or null: `default`.

    One rule for every duration, so 0, 1.7 or "60" are refused alike instead of quietly
    becoming a default or being truncated.
    """
    value = raw.get(key)
    if value is None:
        return default
    low, high = SECONDS_LIMITS[key]
    whole = not isinstance(value, bool) and (
        isinstance(value, int) or (isinstance(value, float) and value.is_integer()))
    if not whole or not low <= value <= high:
        raise AlertError(f"{context}: `{field}` must be a whole number of seconds from {low} "
                         f"to {high:,}, not {value!r}")
    return int(value)


def _check_term_windows(terms: tuple[Term, ...], signal: Signal, context: str) -> None:
    for index, term in enumerate(terms):
        windows = -(-term.duration_s // signal.window_s)
        if windows > MAX_TERM_WINDOWS:
            raise AlertError(
                f"{context}: `terms[{index}].thresholdDuration` {term.duration_s} s spans "
                f"{windows:,} windows of {signal.window_s} s; at most {MAX_TERM_WINDOWS:,} "
                "are allowed: lengthen `signal.aggregationWindow` or shorten the duration")


def check_destination_text(kind: str, settings: dict[str, Any], context: str) -> None:
    """Refuse what would break or inject a header: CR, LF or other control characters in
    e-mail `from`/`to`, the `title` (an e-mail's Subject) and the `host`; header names of
    `headers_env` that are not HTTP header names."""
    keys = ("title", "from", "host", "source") if kind == "email" else ("title", "source")
    for key in keys:
        _one_line(settings.get(key), f"`{key}`", context)
    recipients = settings.get("to")
    for index, recipient in enumerate(recipients if isinstance(recipients, list) else []):
        _one_line(recipient, f"`to[{index}]`", context)
    if isinstance(recipients, str):
        _one_line(recipients, "`to`", context)
    headers = settings.get("headers_env")
    for header in headers if isinstance(headers, dict) else {}:
        if not isinstance(header, str) or not _HEADER_NAME.match(header):
            raise AlertError(f"{context}: `headers_env` key {header!r} is not an HTTP header "
                             "name (letters, digits and !#$%&'*+.^_`|~-)")


def _one_line(value: Any, field: str, context: str) -> None:
    if isinstance(value, str) and _HEADER_BREAKS.search(value):
        raise AlertError(f"{context}: {field} must be one line without control characters "
                         "(CR/LF would inject mail headers)")


def _read_mapping(path: Path) -> dict[str, Any]:
    try:
        loaded = yaml.safe_load(Path(path).read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise AlertError(f"cannot read alerts file {path}: {exc}") from exc
    if not isinstance(loaded, dict):
        raise AlertError(f"{path} must be a YAML mapping")
    return loaded


def _required(raw: dict[str, Any], key: str, where: str) -> Any:
    value = raw.get(key)
    if value in (None, ""):
        raise AlertError(f"{where}: `{key}` is required" if where else f"`{key}` is required")
    return value


def _query(raw: dict[str, Any], context: str) -> str:
    from trailguard.nrql import compile_nrql

    query = str(_required(raw.get("nrql") or {}, "query", f"{context} nrql"))
    clause = _FORBIDDEN.search(_QUOTED.sub("''", query))
    if clause:
        raise AlertError(f"{context}: remove {clause.group(1).upper()} from "
                         "`nrql.query`; the evaluator sets the time range of each window")
    try:
        compiled = compile_nrql(query, now_ms=0)
    except NrqlError as exc:
        raise AlertError(f"{context}: invalid NRQL in `nrql.query`: {exc}") from exc
    if compiled.plan.shape != "aggregate":
        # A condition compares one number per window (and FACET value) with its thresholds.
        raise AlertError(f"{context}: `nrql.query` must aggregate, e.g. SELECT count(*) or "
                         "SELECT max(x), not list events")
    values = [out for out in compiled.plan.outputs if out.key not in compiled.plan.facet_keys]
    if len(values) != 1:
        # New Relic too: a condition's query yields one value per window and signal.
        raise AlertError(f"{context}: `nrql.query` must yield one value (one aggregate, "
                         f"one percentile), not {len(values)}")
    return query.strip()


def _term(raw: Any, index: int, condition: str) -> Term:
    context = f"{condition} term"
    if not isinstance(raw, dict):
        raise AlertError(f"{context}: `terms[{index}]` must be a mapping")
    operator = str(raw.get("operator", "ABOVE")).upper()
    if operator not in OPERATORS:
        raise AlertError(f"{context}: unknown operator {operator} in `operator` "
                         f"(use one of {', '.join(OPERATORS)})")
    occurrences = str(raw.get("thresholdOccurrences", "ALL")).upper()
    if occurrences not in ("ALL", "AT_LEAST_ONCE"):
        raise AlertError(f"{context}: `thresholdOccurrences` must be ALL or AT_LEAST_ONCE")
    try:
        priority = Priority(str(raw.get("priority", "CRITICAL")).upper())
    except ValueError:
        raise AlertError(f"{context}: `priority` must be CRITICAL or WARNING") from None
    duration = seconds(raw, "thresholdDuration", f"terms[{index}].thresholdDuration", 60,
                       condition)
    threshold = _finite(_required(raw, "threshold", context), f"terms[{index}].threshold",
                        condition)
    return Term(priority, operator, threshold, duration, occurrences == "ALL")


def _finite(value: Any, field: str, context: str) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        number = math.nan
    if isinstance(value, bool) or not math.isfinite(number):
        raise AlertError(f"{context}: `{field}` must be a finite number, not {value!r}")
    return number


def _signal(raw: dict[str, Any], condition: str) -> Signal:
    context = f"{condition} signal"
    try:
        method = Method(str(raw.get("aggregationMethod") or "EVENT_FLOW").upper())
    except ValueError:
        raise AlertError(f"{context}: `aggregationMethod` must be one of "
                         f"{', '.join(m.value for m in Method)}") from None
    try:
        fill = Fill(str(raw.get("fillOption") or "NONE").upper())
    except ValueError:
        raise AlertError(f"{context}: `fillOption` must be one of "
                         f"{', '.join(f.value for f in Fill)}") from None
    default_delay = 0 if method is Method.EVENT_TIMER else 120
    return Signal(
        window_s=seconds(raw, "aggregationWindow", "signal.aggregationWindow", 60, condition),
        method=method,
        delay_s=seconds(raw, "aggregationDelay", "signal.aggregationDelay", default_delay,
                        condition),
        timer_s=seconds(raw, "aggregationTimer", "signal.aggregationTimer", 60, condition),
        fill=fill,
        fill_value=_finite(raw.get("fillValue") or 0, "signal.fillValue", condition))


def _expiration(raw: dict[str, Any], condition: str) -> Expiration:
    duration = raw.get("expirationDuration")
    if duration is not None:
        duration = seconds(raw, "expirationDuration", "expiration.expirationDuration", 0,
                           condition)
    open_incident = bool(raw.get("openViolationOnExpiration", False))
    close_incidents = bool(raw.get("closeViolationsOnExpiration", False))
    if duration is None or not (open_incident or close_incidents):
        return Expiration()
    return Expiration(duration, open_incident, close_incidents)


def _policy_conditions(raw: dict[str, Any], path: Path) -> list[Condition]:
    name = str(_required(raw, "name", f"{path}: policy"))
    conditions = pack_conditions(str(raw["pack"]), name) if raw.get("pack") else []
    for item in raw.get("conditions") or []:
        if isinstance(item, dict) and set(item) == {"file"}:
            conditions.append(load_condition_file(path.parent / item["file"], name))
        else:
            conditions.append(parse_condition(item, name, f"{path}: policy '{name}'"))
    return conditions


def _destination(raw: dict[str, Any], path: Path) -> Destination:
    name = str(_required(raw, "name", f"{path}: destination"))
    kind = str(raw.get("type", "")).lower()
    if kind not in DESTINATION_TYPES:
        raise AlertError(f"{path}: destination '{name}' type must be one of "
                         f"{', '.join(DESTINATION_TYPES)}")
    leaked = [key for key in SECRET_INSTEAD if key in raw]
    if leaked:
        raise AlertError(f"{path}: destination '{name}': secrets must come from the environment; "
                         f"use {secret_hint(leaked[0])}: VARIABLE_NAME instead of "
                         f"{leaked[0]}")
    settings = {key: value for key, value in raw.items() if key not in ("name", "type")}
    check_destination_text(kind, settings, f"{path}: destination '{name}'")
    return Destination(name, kind, settings)


def _workflow(raw: dict[str, Any], config: AlertsConfig, path: Path) -> Workflow:
    name = str(_required(raw, "name", f"{path}: workflow"))
    destinations = tuple(str(d) for d in raw.get("destinations") or [])
    missing = [d for d in destinations if d not in config.destinations]
    if missing or not destinations:
        raise AlertError(f"{path}: workflow '{name}' names unknown destination(s) "
                         f"{', '.join(missing) or '(none given)'}")
    priorities = tuple(str(p).upper() for p in raw.get("priorities") or ("CRITICAL", "WARNING"))
    notify_on = tuple(str(e) for e in raw.get("notify_on") or ("opened", "acknowledged", "closed"))
    return Workflow(name, destinations, tuple(str(p) for p in raw.get("policies") or ()),
                    priorities, notify_on)


def _retry(raw: dict[str, Any], path: Path) -> Retry:
    try:
        return Retry(int(raw.get("max_attempts", 8)), float(raw.get("base_seconds", 2)),
                     float(raw.get("max_seconds", 300)))
    except (TypeError, ValueError) as exc:
        raise AlertError(f"{path}: retry: {exc}") from exc


def _check_unique(names: list[str], what: str, path: Path) -> None:
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise AlertError(f"{path}: {what} name(s) used twice: {', '.join(repeated)}")
