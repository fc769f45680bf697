"""Delivery to real receivers on 127.0.0.1: webhook, Slack, PagerDuty over HTTP, e-mail
over SMTP with STARTTLS and AUTH; retries with backoff; the outbox across restarts."""

from __future__ import annotations

import logging

import pytest
from helpers import T0
from receivers import SMTP_PASSWORD, SMTP_USER

from trailguard.alerts.delivery import Deliverer, backoff_ms
from trailguard.alerts.incidents import ALERTS_FILE, IncidentStore
from trailguard.alerts.lifecycle import Lifecycle
from trailguard.alerts.model import AlertsConfig, Destination, Retry, Workflow
from trailguard.logs import KeyValueFormatter

SLACK_SECRET = "https://hooks.slack.invalid/services/T000/B000/very-secret-token"


def _log_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    """The records as the server writes them (key=value, fields included)."""
    return [KeyValueFormatter().format(record) for record in caplog.records]


def _config(destinations: list[Destination], **workflow: object) -> AlertsConfig:
    return AlertsConfig(destinations={d.name: d for d in destinations},
                        workflows=[Workflow("w", tuple(d.name for d in destinations),
                                            **workflow)],
                        retry=Retry(max_attempts=4, base_s=2, max_s=60))


def _open(store: IncidentStore, config: AlertsConfig, facet: object = None):
    from helpers import condition

    rule = condition()
    with store.transaction():
        return Lifecycle(store, config).open(
            rule, "" if facet is None else str(facet), facet, kind="threshold",
            priority="CRITICAL", now_ms=T0, value=3.0,
            details={"operator": "ABOVE", "threshold": 1.0, "query": rule.query,
                     "attributes": {}})


def test_webhook_slack_pagerduty_one_request_each_then_resolve(tmp_path, http_receiver,
                                                               monkeypatch):
    monkeypatch.setenv("TG_HOOK", f"{http_receiver.url}/hook")
    monkeypatch.setenv("TG_SLACK", f"{http_receiver.url}/slack")
    monkeypatch.setenv("TG_PD_KEY", "pd-routing-key-1234")
    config = _config([
        Destination("hook", "webhook", {"url_env": "TG_HOOK", "payload": {
            "summary": "{{ condition }} is {{ event }}", "severity": "{{ detail.severity }}",
            "value": "{{ value }}"}}),
        Destination("slack", "slack", {"url_env": "TG_SLACK"}),
        Destination("pd", "pagerduty", {"routing_key_env": "TG_PD_KEY",
                                        "events_url": f"{http_receiver.url}/pagerduty"})])
    store = IncidentStore(tmp_path / ALERTS_FILE)
    incident = _open(store, config)
    deliverer = Deliverer(store, config, clock=lambda: T0)
    assert deliverer.deliver_due() == 3
    assert deliverer.deliver_due() == 0
    with store.transaction():
        Lifecycle(store, config).close(store.get(incident.id), T0 + 60_000, "signal recovered")
    assert Deliverer(store, config, clock=lambda: T0 + 60_000).deliver_due() == 3
    requests = http_receiver.wait_for(6)
    assert [(path, body) for path, body, _ in requests[:2]] == [
        ("/hook", {"summary": "SSH brute force is opened", "severity": "(unknown)",
                   "value": "3"}),
        ("/slack", {"text": "*[CRITICAL] SSH brute force opened*\nSecurity / SSH brute force "
                            "opened incident 1 (CRITICAL): value 3, ABOVE 1 at "
                            "2023-11-14T22:14:00Z."})]
    trigger = requests[2][1]
    assert (trigger["event_action"], trigger["dedup_key"], trigger["routing_key"],
            trigger["payload"]["severity"], trigger["payload"]["source"]) == (
        "trigger", "trailguard-incident-1", "pd-routing-key-1234", "critical", "trailguard")
    assert [body.get("event_action", body.get("summary", body.get("text", "")[:40]))
            for _, body, _ in requests[3:]] == [
        "SSH brute force is closed", "*[CRITICAL] SSH brute force closed*\nSecu", "resolve"]
    assert requests[5][1]["dedup_key"] == "trailguard-incident-1"



def _mail(smtp_receiver, monkeypatch, password: str = SMTP_PASSWORD, **settings) -> Destination:
    """An e-mail destination that logs in to the test SMTP server over TLS it trusts."""
    monkeypatch.setenv("TG_SMTP_USER", SMTP_USER)
    monkeypatch.setenv("TG_SMTP_PASSWORD", password)
    return Destination("mail", "email", {
        "host": "127.0.0.1", "port": smtp_receiver.port, "ca_file": str(smtp_receiver.ca_file),
        "username_env": "TG_SMTP_USER", "password_env": "TG_SMTP_PASSWORD",
        "from": "trailguard@example.com", "to": ["oncall@example.com"], **settings})
def test_email_over_starttls_with_auth(tmp_path, smtp_receiver, monkeypatch):
    config = _config([_mail(smtp_receiver, monkeypatch, starttls=True,
                            to=["oncall@example.com", "sec@example.com"])])
    store = IncidentStore(tmp_path / ALERTS_FILE)
    _open(store, config, facet="i-0abc")
    assert Deliverer(store, config, clock=lambda: T0).deliver_due() == 1
    [(sender, recipients, message)] = smtp_receiver.wait_for(1)
    assert (sender, recipients) == ("trailguard@example.com",
                                    ["oncall@example.com", "sec@example.com"])
    assert message["Subject"] == "[CRITICAL] SSH brute force opened: i-0abc"
    assert message.get_payload(decode=True).decode().strip() == (
        "Security / SSH brute force opened incident 1 (CRITICAL): i-0abc = 3, ABOVE 1 at "
        "2023-11-14T22:14:00Z.")


def test_wrong_smtp_password_fails_without_retry_and_without_logging_it(
        tmp_path, smtp_receiver, monkeypatch, caplog):
    config = _config([_mail(smtp_receiver, monkeypatch, password="not-the-password-xyz",
                            to="oncall@example.com")])
    store = IncidentStore(tmp_path / ALERTS_FILE)
    _open(store, config)
    with caplog.at_level(logging.INFO, logger="trailguard.alerts"):
        assert Deliverer(store, config, clock=lambda: T0).deliver_due() == 0
    [item] = store.outbox()
    assert (item.status, item.attempts) == ("failed", 1)
    assert smtp_receiver.messages == []
    lines = _log_lines(caplog)
    assert "not-the-password-xyz" not in "\n".join(lines)
    assert [line.split(" msg=")[1] for line in lines if "giving up" in line] == [
        ('"notification failed, giving up" error="SMTP authentication failed (535)" '
         f"notification={item.notification_id} incident=1 event=opened destination=mail "
         "attempt=1 type=email")]


def test_retries_with_backoff_then_sends_once(tmp_path, http_receiver, monkeypatch, caplog):
    monkeypatch.setenv("TG_SLACK", SLACK_SECRET.replace("https://hooks.slack.invalid",
                                                        http_receiver.url))
    config = _config([Destination("slack", "slack", {"url_env": "TG_SLACK"})])
    store = IncidentStore(tmp_path / ALERTS_FILE)
    _open(store, config)
    http_receiver.statuses = [500, 503]
    now = [T0]
    deliverer = Deliverer(store, config, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="trailguard.alerts"):
        assert deliverer.deliver_due() == 0  # attempt 1: HTTP 500, retry in 2 s
        now[0] = T0 + 1_999
        assert deliverer.deliver_due() == 0  # not due yet
        now[0] = T0 + 2_000
        assert deliverer.deliver_due() == 0  # attempt 2: HTTP 503, retry in 4 s
        assert store.outbox()[0].next_attempt_ms == T0 + 6_000
        # a restart: a new store and deliverer on the same file pick the row up
        store.close()
        store = IncidentStore(tmp_path / ALERTS_FILE)
        now[0] = T0 + 6_000
        assert Deliverer(store, config, clock=lambda: now[0]).deliver_due() == 1
        assert Deliverer(store, config, clock=lambda: now[0] + 600_000).deliver_due() == 0
    [item] = store.outbox()
    assert (item.status, item.attempts) == ("sent", 3)
    assert len(http_receiver.wait_for(1)) == 1
    attempts = [r for r in caplog.records if r.getMessage().startswith("notification")]
    assert [(r.getMessage(), r.fields["attempt"]) for r in attempts] == [
        ("notification failed, will retry", 1), ("notification failed, will retry", 2),
        ("notification sent", 3)]
    assert "very-secret-token" not in "\n".join(_log_lines(caplog))


@pytest.mark.parametrize(("attempts", "expected_ms"), [(1, 2_000), (2, 4_000), (5, 32_000),
                                                       (7, 60_000)])
def test_backoff_schedule(attempts, expected_ms):
    assert backoff_ms(Retry(max_attempts=8, base_s=2, max_s=60), attempts) == expected_ms


def test_workflows_route_by_policy_and_priority():
    config = AlertsConfig(
        destinations={name: Destination(name, "slack", {}) for name in ("a", "b", "c")},
        workflows=[Workflow("critical", ("a", "b"), priorities=("CRITICAL",)),
                   Workflow("guardduty", ("b", "c"), policies=("GuardDuty",)),
                   Workflow("opens", ("c",), notify_on=("opened",))])
    assert config.route("GuardDuty", "CRITICAL", "opened") == ["a", "b", "c"]
    assert config.route("GuardDuty", "WARNING", "closed") == ["b", "c"]
    assert config.route("CloudTrail", "WARNING", "closed") == []
    assert config.route("CloudTrail", "WARNING", "opened") == ["c"]


def test_the_same_notification_is_queued_once(tmp_path):
    store = IncidentStore(tmp_path / ALERTS_FILE)
    config = _config([Destination("hook", "webhook", {"url_env": "TG_NOPE"})])
    incident = _open(store, config)
    assert store.enqueue(incident.id, "opened", ["hook"], T0) == 0
    assert store.enqueue(incident.id, "closed", ["hook", "hook"], T0) == 1
    assert [(i.event, i.destination) for i in store.outbox()] == [("opened", "hook"),
                                                                  ("closed", "hook")]


class _Crash(BaseException):
    """The process dying right after the receiver accepted, before the row is marked sent."""


def test_a_replay_after_a_crash_carries_the_same_notification_id(tmp_path, http_receiver,
                                                                 monkeypatch):
    monkeypatch.setenv("TG_HOOK", f"{http_receiver.url}/hook")
    monkeypatch.setenv("TG_PD_KEY", "pd-routing-key-1234")
    config = _config([Destination("hook", "webhook", {"url_env": "TG_HOOK"}),
                      Destination("pd", "pagerduty", {"routing_key_env": "TG_PD_KEY",
                                                      "events_url": f"{http_receiver.url}/pd"})])
    store = IncidentStore(tmp_path / ALERTS_FILE)
    _open(store, config)
    ids = {item.destination: item.notification_id for item in store.outbox()}

    def crash(*args: object, **kwargs: object) -> None:
        raise _Crash

    with monkeypatch.context() as patched, pytest.raises(_Crash):
        patched.setattr(store, "mark_attempt", crash)
        Deliverer(store, config, clock=lambda: T0).deliver_due()
    store.close()

    restarted = IncidentStore(tmp_path / ALERTS_FILE)
    assert Deliverer(restarted, config, clock=lambda: T0 + 1_000).deliver_due() == 2
    requests = http_receiver.wait_for(3)
    assert [(path, headers["X-Trailguard-Notification-Id"], body.get("notification_id"))
            for path, body, headers in requests] == [
        ("/hook", ids["hook"], ids["hook"]),         # accepted, then the crash
        ("/hook", ids["hook"], ids["hook"]),         # the replay: same id, receiver drops it
        ("/pd", ids["pd"], None)]                    # PagerDuty: header and dedup_key
    assert requests[0][1] == requests[1][1]
    assert len({ids["hook"], ids["pd"]}) == 2 and all(len(i) == 36 for i in ids.values())
    assert [(i.status, i.attempts) for i in restarted.outbox()] == [("sent", 1), ("sent", 1)]


def test_email_carries_the_notification_id_as_message_id(tmp_path, smtp_receiver, monkeypatch):
    config = _config([_mail(smtp_receiver, monkeypatch, to="oncall@example.com")])
    store = IncidentStore(tmp_path / ALERTS_FILE)
    _open(store, config)
    assert Deliverer(store, config, clock=lambda: T0).deliver_due() == 1
    [item] = store.outbox()
    [(_, _, message)] = smtp_receiver.wait_for(1)
    assert (message["Message-ID"], message["X-Trailguard-Notification-Id"]) == (
        f"<{item.notification_id}@trailguard>", item.notification_id)


def test_files_without_notification_ids_get_them(tmp_path):
    import sqlite3

    path = tmp_path / ALERTS_FILE
    old = sqlite3.connect(path)
    old.executescript(
        "CREATE TABLE outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, incident_id INTEGER NOT "
        "NULL, event TEXT NOT NULL, destination TEXT NOT NULL, status TEXT NOT NULL, attempts "
        "INTEGER NOT NULL DEFAULT 0, next_attempt_ms INTEGER NOT NULL, created_ms INTEGER NOT "
        "NULL, sent_ms INTEGER, last_error TEXT, UNIQUE (incident_id, event, destination));"
        "INSERT INTO outbox (incident_id, event, destination, status, next_attempt_ms, "
        "created_ms) VALUES (1, 'opened', 'hook', 'pending', 0, 0);")
    old.commit()
    old.close()
    [item] = IncidentStore(path).outbox()
    assert (item.event, len(item.notification_id)) == ("opened", 36)
    assert IncidentStore(path).outbox()[0].notification_id == item.notification_id


def test_a_poisoned_destination_fails_alone_and_the_webhook_is_delivered(
        tmp_path, http_receiver, smtp_receiver, monkeypatch, caplog):
    """A destination that makes sending raise something other than DeliveryError (here the
    e-mail library refusing a header with CR/LF, as a pre-fix alerts catalog could hold)
    fails its own outbox row, retried by the policy; the other destination is served."""
    monkeypatch.setenv("TG_HOOK", f"{http_receiver.url}/hook")
    poisoned = Destination("mail", "email", {
        "host": "127.0.0.1", "port": smtp_receiver.port, "ca_file": str(smtp_receiver.ca_file),
        "from": "a@b.c\r\nBcc: evil@x.y", "to": ["oncall@example.com"]})
    config = _config([poisoned, Destination("hook", "webhook", {"url_env": "TG_HOOK"})])
    store = IncidentStore(tmp_path / ALERTS_FILE)
    _open(store, config)
    with caplog.at_level(logging.INFO):
        assert Deliverer(store, config, clock=lambda: T0).deliver_due() == 1
    [(path, body, _)] = http_receiver.wait_for(1)
    assert (path, body["event"]) == ("/hook", "opened")
    rows = {row["destination"]: row for row in store.notifications(1)}
    assert (rows["hook"]["status"], rows["mail"]["status"], rows["mail"]["attempts"]) == (
        "sent", "pending", 1)
    assert rows["mail"]["last_error"].startswith("unexpected ValueError in ")
    [mail] = [item for item in store.outbox() if item.destination == "mail"]
    assert mail.next_attempt_ms == T0 + backoff_ms(config.retry, 1)
    assert Deliverer(store, config, clock=lambda: T0 + 60_000).deliver_due() == 0
    assert [item.attempts for item in store.outbox() if item.destination == "mail"] == [2]
    assert smtp_receiver.messages == []
    assert any("notification failed, will retry" in line and "destination=mail" in line
               for line in _log_lines(caplog))


@pytest.mark.parametrize("line_break", ["\r\n", "\u2028", "\u2029", "\x85"])
def test_a_facet_with_line_breaks_cannot_add_mail_headers(tmp_path, smtp_receiver,
                                                          monkeypatch, line_break):
    config = _config([_mail(smtp_receiver, monkeypatch)])
    store = IncidentStore(tmp_path / ALERTS_FILE)
    # Unicode line breaks too: Python's e-mail headers refuse them, which would leave the
    # notification failing forever (an attacker-chosen userAgent could stop e-mail alerts).
    _open(store, config, facet=f"host-a{line_break}Bcc: evil@example.net")
    assert Deliverer(store, config, clock=lambda: T0).deliver_due() == 1
    [(_, recipients, message)] = smtp_receiver.wait_for(1)
    assert recipients == ["oncall@example.com"] and message["Bcc"] is None
    assert message["Subject"] == ("[CRITICAL] SSH brute force opened: host-a Bcc: "
                                  "evil@example.net")


def test_no_destination_url_reaches_the_logs_even_at_debug(tmp_path, http_receiver,
                                                          monkeypatch, caplog):
    """httpx logs each request URL at INFO; importing delivery keeps it at WARNING."""
    monkeypatch.setenv("TG_SLACK", f"{http_receiver.url}/services/T000/B000/secret-token")
    config = _config([Destination("slack", "slack", {"url_env": "TG_SLACK"})])
    store = IncidentStore(tmp_path / ALERTS_FILE)
    _open(store, config)
    with caplog.at_level(logging.DEBUG):
        assert Deliverer(store, config, clock=lambda: T0).deliver_due() == 1
    logged = "\n".join(_log_lines(caplog))
    assert "notification sent" in logged and "secret-token" not in logged
    assert http_receiver.url not in logged
    assert logging.getLogger("httpx").getEffectiveLevel() == logging.WARNING
