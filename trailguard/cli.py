"""The `trailguard` command: serve, import, query."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from trailguard import __version__
from trailguard.errors import StoreBusyError, TrailguardError

CONFIG_HELP = "YAML config file (default: ./trailguard.yaml)"


def main(argv: list[str] | None = None) -> int:
    parser = _build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "command", None):
        parser.print_help()
        return 2
    from trailguard.logs import setup_logging

    setup_logging("warning")
    try:
        return int(args.handler(args) or 0)
    except TrailguardError as exc:
        print(f"trailguard: error: {exc}", file=sys.stderr)
        return _exit_code(exc)
    except KeyboardInterrupt:
        return 130


def _exit_code(exc: TrailguardError) -> int:
    from trailguard.errors import NrqlError

    return 2 if isinstance(exc, NrqlError) else 1


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="trailguard", description="Self-hosted security monitoring for AWS.")
    parser.add_argument("--version", action="version", version=f"trailguard {__version__}")
    parser.add_argument("--config", type=Path, help=CONFIG_HELP)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the server (Firehose endpoint, query API)")
    serve.add_argument("--data-dir", type=Path, help="data directory (default: ./data)")
    serve.add_argument("--host", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, help="port to listen on (default: 8080)")
    serve.add_argument("--tls-cert", type=Path, help="PEM certificate: serve HTTPS")
    serve.add_argument("--tls-key", type=Path, help="PEM private key for --tls-cert")
    serve.add_argument("--demo", action="store_true",
                       help="fill an empty store with a week of generated findings and events")
    serve.add_argument("--alerts-file", type=Path, help="alerts YAML file (see docs/alerts.md)")
    serve.set_defaults(handler=_serve)

    importer = commands.add_parser("import", help="import CloudTrail / GuardDuty files")
    importer.add_argument("--data-dir", type=Path, help="data directory (default: ./data)")
    importer.add_argument("paths", nargs="+", type=Path, metavar="PATH")
    importer.set_defaults(handler=_import)

    query = commands.add_parser("query", help="run an NRQL query")
    query.add_argument("--data-dir", type=Path,
                       help="read this data directory directly; with --url: take the API key "
                       "from its keys.json")
    query.add_argument("--url", help="ask a running server, e.g. http://127.0.0.1:8080")
    query.add_argument("--format", choices=("table", "json", "csv"), default="table")
    query.add_argument("--explain", action="store_true", help="print the SQL, do not run it")
    query.add_argument("--dialect", choices=("duckdb", "clickhouse"), default="duckdb",
                       help="only with --explain: the SQL dialect to print (default: duckdb; "
                       "queries always run on DuckDB)")
    query.add_argument("--insecure", action="store_true",
                       help="with --url https://: accept a self-signed certificate")
    query.add_argument("nrql", metavar="NRQL")
    query.set_defaults(handler=_query)
    _alerts_parser(commands)
    _poll_parser(commands)
    _accept_config_after_commands(parser)
    return parser


def _accept_config_after_commands(parser: argparse.ArgumentParser) -> None:
    """`trailguard serve --config X` as well as `trailguard --config X serve`: users put
    options after the command. SUPPRESS keeps an absent one from hiding the earlier one."""
    for action in parser._actions:
        if not isinstance(action, argparse._SubParsersAction):
            continue
        for command in set(action.choices.values()):
            if "--config" not in command._option_string_actions:
                command.add_argument("--config", type=Path, default=argparse.SUPPRESS,
                                     help=CONFIG_HELP)
            _accept_config_after_commands(command)


def _alerts_parser(commands: argparse._SubParsersAction) -> None:
    """`trailguard alerts ...`: lives in trailguard/alerts/commands.py."""
    from trailguard.alerts.commands import add_alerts_commands

    add_alerts_commands(commands, _config)


def _poll_parser(commands: argparse._SubParsersAction) -> None:
    """`trailguard poll [--once]`: lives in trailguard/sources/command.py."""
    from trailguard.sources.command import add_poll_command

    add_poll_command(commands, _config)


def _config(args: argparse.Namespace, **overrides: object):
    from trailguard.config import load_config

    flags = {"data_dir": getattr(args, "data_dir", None), **overrides}
    return load_config(args.config, flags)


def _serve(args: argparse.Namespace) -> int:
    from trailguard.server import serve

    config = _config(args, host=args.host, port=args.port, tls_cert=args.tls_cert,
                     tls_key=args.tls_key, alerts_file=args.alerts_file)
    serve(config, demo=args.demo)
    return 0


def _import(args: argparse.Namespace) -> int:
    from trailguard.importer import import_paths
    from trailguard.store import DuckDBStore

    config = _config(args)
    try:
        store = DuckDBStore(config.data_dir, memory_limit=config.store_memory_limit)
    except StoreBusyError as exc:
        raise StoreBusyError(f"{exc}; stop the server before importing: import writes to "
                             "the data directory") from exc
    try:
        summary = import_paths(store, args.paths)
    finally:
        store.close()
    print(summary.describe())
    return 0 if not summary.failed else 1


def _query(args: argparse.Namespace) -> int:
    from trailguard.query_client import run_query_command

    return run_query_command(args, _config(args))
