"""Read an alerts file (and New Relic quickstart condition files) into `AlertsConfig`."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from trailguard.alerts.model import (
    DEFAULT_TIME_LIMIT_SECONDS,
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
    """A condition from its New Relic shaped mapping."""
    name = _required(raw, "name", where)
    kind = str(raw.get("type", "STATIC")).upper()
    if kind != "STATIC":
        raise AlertError(f"{where}: condition '{name}' has type {kind}; only STATIC is supported")
    query = _query(raw, name, where)
    terms = tuple(_term(term, name, where) for term in raw.get("terms") or [])
    if not terms:
        raise AlertError(f"{where}: condition '{name}' needs at least one term under `terms`")
    return Condition(
        name=str(name), policy=policy, query=query, terms=terms,
        signal=_signal(raw.get("signal") or {}, name, where),
        expiration=_expiration(raw.get("expiration") or {}),
        time_limit_s=int(raw.get("violationTimeLimitSeconds") or DEFAULT_TIME_LIMIT_SECONDS),
        enabled=bool(raw.get("enabled", True)),
        description=str(raw.get("description") or "").strip(),
        runbook_url=str(raw.get("runbookUrl") or ""))


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
        raise AlertError(f"{where}: `{key}` is required")
    return value


def _query(raw: dict[str, Any], name: str, where: str) -> str:
    from trailguard.nrql import compile_nrql

    query = str(_required(raw.get("nrql") or {}, "query", f"{where}: condition '{name}' nrql"))
    clause = _FORBIDDEN.search(_QUOTED.sub("''", query))
    if clause:
        raise AlertError(f"{where}: condition '{name}': remove {clause.group(1).upper()} from "
                         "`nrql.query`; the evaluator sets the time range of each window")
    try:
        compile_nrql(query, now_ms=0)
    except NrqlError as exc:
        raise AlertError(f"{where}: condition '{name}': invalid NRQL in `nrql.query`: "
                         f"{exc}") from exc
    return query.strip()


def _term(raw: dict[str, Any], name: str, where: str) -> Term:
    context = f"{where}: condition '{name}' term"
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
    try:
        return Term(priority, operator, float(_required(raw, "threshold", context)),
                    int(raw.get("thresholdDuration") or 60), occurrences == "ALL")
    except ValueError as exc:
        raise AlertError(f"{context}: {exc}") from exc


def _signal(raw: dict[str, Any], name: str, where: str) -> Signal:
    context = f"{where}: condition '{name}' signal"
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
    try:
        signal = Signal(
            window_s=int(raw.get("aggregationWindow") or 60), method=method,
            delay_s=int(raw["aggregationDelay"]) if raw.get("aggregationDelay") is not None
            else (0 if method is Method.EVENT_TIMER else 120),
            timer_s=int(raw.get("aggregationTimer") or 60), fill=fill,
            fill_value=float(raw.get("fillValue") or 0))
    except (ValueError, TypeError) as exc:
        raise AlertError(f"{context}: {exc}") from exc
    if signal.window_s < 1 or signal.delay_s < 0 or signal.timer_s < 1:
        raise AlertError(f"{context}: aggregationWindow and aggregationTimer must be at least "
                         "1 second and aggregationDelay not negative")
    return signal


def _expiration(raw: dict[str, Any]) -> Expiration:
    duration = raw.get("expirationDuration")
    open_incident = bool(raw.get("openViolationOnExpiration", False))
    close_incidents = bool(raw.get("closeViolationsOnExpiration", False))
    if duration is None or not (open_incident or close_incidents):
        return Expiration()
    return Expiration(int(duration), open_incident, close_incidents)


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
    leaked = [key for key in ("url", "routing_key", "password", "token") if key in raw]
    if leaked:
        raise AlertError(f"{path}: destination '{name}': secrets must come from the environment; "
                         f"use {leaked[0]}_env: VARIABLE_NAME instead of {leaked[0]}")
    settings = {key: value for key, value in raw.items() if key not in ("name", "type")}
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
