"""`trailguard alerts test|incidents|ack|close`."""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any


def add_alerts_commands(commands: argparse._SubParsersAction,
                        config_of: Callable[..., Any]) -> None:
    """Register the `alerts` command group; `config_of(args)` builds the Config."""
    alerts = commands.add_parser("alerts", help="alert conditions and incidents")
    actions = alerts.add_subparsers(dest="alerts_command", metavar="ACTION", required=True)

    test = actions.add_parser("test", help="replay a condition file over stored data")
    test.add_argument("condition_file", type=Path, metavar="CONDITION_FILE")
    test.add_argument("--data-dir", type=Path, help="data directory (default: ./data)")
    test.add_argument("--since", help="start: epoch ms or ISO time (default: 7 days ago)")
    test.add_argument("--until", help="end: epoch ms or ISO time (default: now)")
    test.set_defaults(handler=lambda args: _test(args, config_of(args)))

    listing = actions.add_parser("incidents", help="list recent incidents")
    listing.add_argument("--data-dir", type=Path, help="data directory (default: ./data)")
    listing.add_argument("--limit", type=int, default=50)
    listing.set_defaults(handler=lambda args: _list(config_of(args), args.limit))

    for action in ("ack", "close"):
        change = actions.add_parser(action, help=f"{action} an incident by id")
        change.add_argument("incident_id", type=int)
        change.add_argument("--data-dir", type=Path, help="data directory (default: ./data)")
        change.add_argument("--alerts-file", type=Path, help="alerts YAML (for routing)")
        change.set_defaults(handler=lambda args, action=action: _change(
            config_of(args, alerts_file=args.alerts_file), action, args.incident_id))


def _time_ms(text: str | None, default: int) -> int:
    from datetime import datetime

    from trailguard.errors import AlertError

    if not text:
        return default
    if text.isdigit():
        return int(text)
    try:
        return int(datetime.fromisoformat(text).timestamp() * 1000)
    except ValueError:
        raise AlertError(f"cannot read time {text!r}: use epoch ms or ISO 8601") from None


def _test(args: argparse.Namespace, config: Any) -> int:
    from trailguard.alerts.backtest import describe, replay
    from trailguard.alerts.loader import load_condition_file
    from trailguard.store import DuckDBStore

    condition = load_condition_file(args.condition_file, "test")
    until = _time_ms(args.until, int(time.time() * 1000))
    since = _time_ms(args.since, until - 7 * 24 * 3600 * 1000)
    store = DuckDBStore(config.data_dir, read_only=True, memory_limit=config.store_memory_limit)
    try:
        result = replay(store, condition, since, until)
    finally:
        store.close()
    for line in describe(result):
        print(line)
    return 0


def _list(config: Any, limit: int) -> int:
    from trailguard.alerts.incidents import ALERTS_FILE, IncidentStore
    from trailguard.alerts.templates import incident_fields, text_of

    store = IncidentStore(config.data_dir / ALERTS_FILE)
    for incident in store.incidents(limit):
        fields = incident_fields(incident, incident.state)
        print(f"#{incident.id}  {incident.state:<12} {incident.priority:<8} "
              f"{incident.condition_key}  facet={text_of(incident.facet)}  "
              f"opened={fields['opened_at']}  closed={text_of(fields['closed_at'])}")
    store.close()
    return 0


def _change(config: Any, action: str, incident_id: int) -> int:
    from trailguard.alerts.catalog import Catalog
    from trailguard.alerts.incidents import ALERTS_FILE, IncidentStore
    from trailguard.alerts.lifecycle import Lifecycle
    from trailguard.alerts.loader import load_alerts
    from trailguard.alerts.model import AlertsConfig

    alerts = load_alerts(config.alerts_file) if config.alerts_file else AlertsConfig()
    store = IncidentStore(config.data_dir / ALERTS_FILE)
    # Route like the server: the file's workflows plus the policies made through the API.
    lifecycle = Lifecycle(store, Catalog(store).merged(alerts))
    now = int(time.time() * 1000)
    try:
        with store.transaction():
            if action == "ack":
                incident = lifecycle.acknowledge(incident_id, now)
            else:
                incident = lifecycle.close_by_hand(incident_id, now)
    finally:
        store.close()
    print(f"incident #{incident.id} is now {incident.state}")
    return 0
