"""`trailguard serve`: open the store, print how to reach it, run uvicorn."""

from __future__ import annotations

import logging
import signal
import socket
import ssl
from typing import TYPE_CHECKING

import uvicorn

from trailguard.alerts.service import start_alerts
from trailguard.config import Config, ensure_keys
from trailguard.errors import ConfigError
from trailguard.logs import log_fields, setup_logging
from trailguard.runtime import settle_collector
from trailguard.store import DuckDBStore
from trailguard.web.app import create_app

if TYPE_CHECKING:
    from trailguard.sources.service import SourceService

log = logging.getLogger("trailguard.server")


def serve(config: Config, demo: bool = False) -> None:
    """Run the server until interrupted; the store is closed (checkpointed) on exit.

    With `demo`, an empty store is first filled with a week of generated findings and
    CloudTrail events, so the dashboards and queries have something to show.
    """
    setup_logging(config.log_level)
    if bool(config.tls_cert) != bool(config.tls_key):
        raise ConfigError("--tls-cert and --tls-key go together: give both or neither")
    _check_tls(config)
    _check_listen(config)
    generated = ensure_keys(config)
    store = DuckDBStore(config.data_dir, memory_limit=config.store_memory_limit)
    alerts = None
    sources = _source_service(config)
    try:
        alerts = start_alerts(store, config.alerts_file, config.data_dir)
        if demo:
            _fill_demo(store)
        _announce(config, generated)
        # The app starts the pollers once it runs and stops them before its writer.
        app = create_app(config, store, alerts=alerts, sources=sources)
        # uvicorn shuts down gracefully on SIGTERM, then raises the signal again; with the
        # default action that kills the process before `finally` closes (checkpoints) the
        # store. Turning it into SystemExit lets the cleanup below run.
        signal.signal(signal.SIGTERM, _exit_on_sigterm)
        settle_collector()  # what is built by now lives as long as the server
        # A stop waits `stop_grace_s` for requests in flight, then cancels them. A
        # cancelled request was not acknowledged, so its sender retries it (a Firehose
        # retry of one already spooled is a replay, stored once). Without a bound, a
        # request waiting on a stuck decode worker held the stop for the whole decode
        # timeout (120 s), past systemd's default of 90 s.
        uvicorn.run(app, host=config.host, port=config.port, log_level="warning",
                    ssl_certfile=str(config.tls_cert) if config.tls_cert else None,
                    ssl_keyfile=str(config.tls_key) if config.tls_key else None,
                    timeout_keep_alive=30, timeout_graceful_shutdown=config.stop_grace_s)
    finally:
        if sources is not None:
            sources.stop(timeout_s=1.0)  # the app has stopped it, unless it never ran
        if alerts is not None:
            alerts.stop()
        store.close()
        log_fields(log, logging.INFO, "server stopped", data_dir=config.data_dir)


def _source_service(config: Config) -> SourceService | None:
    """The AWS pollers when the config has sources, else None (boto3 is not even loaded)."""
    if not config.sources.accounts:
        return None
    from trailguard.sources.service import SourceService

    return SourceService(config.sources, config.data_dir)


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def _check_tls(config: Config) -> None:
    """Load the certificate now, so a wrong file is a clear error rather than a traceback."""
    if not config.tls_cert:
        return
    try:
        ssl.create_default_context(ssl.Purpose.CLIENT_AUTH).load_cert_chain(
            str(config.tls_cert), str(config.tls_key))
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(f"cannot use --tls-cert {config.tls_cert} with --tls-key "
                          f"{config.tls_key}: {exc}") from exc


def _check_listen(config: Config) -> None:
    """Fail before announcing anything when the address cannot be listened on."""
    if not 0 < config.port < 65536:
        raise ConfigError(f"port {config.port} is not between 1 and 65535")
    try:
        with socket.create_server((config.host, config.port)):
            pass
    except OSError as exc:
        raise ConfigError(f"cannot listen on {config.host}:{config.port}: {exc.strerror or exc}"
                          " (another process on that port? pass --port)") from exc


def _fill_demo(store: DuckDBStore) -> None:
    from trailguard.generate import generate_demo
    from trailguard.nrql import run_nrql

    existing = run_nrql(store, "SELECT count(*) FROM Log, InfrastructureEvent SINCE 30 years ago")
    if existing["results"][0]["count"]:
        print("  --demo: the store already holds events; no demo data added", flush=True)
        return
    summary = generate_demo(store)
    print(f"  --demo: added {summary.findings} GuardDuty findings and "
          f"{summary.cloudtrail_events} CloudTrail events from the last 7 days", flush=True)


def _announce(config: Config, generated: list[str]) -> None:
    scheme = "https" if config.tls_cert else "http"
    base = f"{scheme}://{config.host}:{config.port}"
    keys_file = config.data_dir / "keys.json"
    print(f"trailguard is serving {config.data_dir}/ on {base}", flush=True)
    print(f"  Firehose HTTP endpoint: {base}/firehose/v1", flush=True)
    print(f"  Log API endpoint:       {base}/log/v1", flush=True)
    print(f"  NRQL query API:         {base}/api/v1/nrql", flush=True)
    if config.sources.accounts:
        print(f"  AWS sources:            {len(config.sources.accounts)} account(s), "
              f"{len(config.sources.cloudtrail_buckets)} trail bucket(s), polled every "
              f"{config.sources.interval_ms / 1000:g} s; status at {base}/api/v1/sources",
              flush=True)
    for name, env in (("firehose_access_key", "TRAILGUARD_FIREHOSE_ACCESS_KEY"),
                      ("api_key", "TRAILGUARD_API_KEY")):
        if name in generated:
            # The key itself is not printed: under a service manager stdout goes to a
            # journal that other users or log shippers may read.
            print(f"  {env} was not set: generated one into {keys_file} (only you can read "
                  f"it: `cat {keys_file}`)", flush=True)
        else:
            print(f"  {env}: from the environment or {keys_file}", flush=True)
    if scheme == "http":
        print("  Firehose delivers only to HTTPS: use --tls-cert/--tls-key or a reverse proxy.",
              flush=True)
