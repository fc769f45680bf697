"""Send one notification to one destination: webhook, Slack, e-mail (SMTP), PagerDuty.

URLs, routing keys and passwords come from environment variables named in the
alerts file (`url_env`, `routing_key_env`, `password_env`); error messages name the
variable, never its value, and never include a URL.

Every request carries the outbox row's notification id (`X-Trailguard-Notification-Id`,
`notification_id` in the default webhook body, the e-mail's Message-ID): a notification
re-sent after a crash between "receiver accepted" and "marked sent" has the same id, so a
receiver can drop the replay.
"""

from __future__ import annotations

import os
import re
import smtplib
import ssl
from email.message import EmailMessage
from typing import Any

import httpx

from trailguard.alerts.incidents import Incident
from trailguard.alerts.model import Destination
from trailguard.alerts.templates import (
    DEFAULT_TEXT,
    DEFAULT_TITLE,
    incident_fields,
    render,
    render_tree,
)
from trailguard.errors import AlertError
from trailguard.logs import quiet_http_client_logs

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
PAGERDUTY_ACTIONS = {"opened": "trigger", "escalated": "trigger",
                     "acknowledged": "acknowledge", "closed": "resolve"}
NOTIFICATION_ID_HEADER = "X-Trailguard-Notification-Id"
TIMEOUT_S = 10.0
# A rendered Subject can hold facet values from log data: control characters, and the
# Unicode line breaks Python's e-mail headers also refuse (NEL, LS, PS), would break or
# inject mail headers, so each run of them becomes one space.
_CONTROL = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]+")

# httpx logs every request URL at INFO; a Slack or webhook URL is a secret.
quiet_http_client_logs()


class DeliveryError(AlertError):
    """A notification could not be delivered; `retryable` says whether to try again."""

    def __init__(self, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


def send(destination: Destination, incident: Incident, event: str,
         notification_id: str = "") -> str:
    """Deliver `event` of `incident`; returns a short outcome such as "HTTP 200"."""
    fields = incident_fields(incident, event)
    fields["notification_id"] = notification_id
    senders = {"webhook": _webhook, "slack": _slack, "email": _email, "pagerduty": _pagerduty}
    return senders[destination.type](destination.settings, incident, event, fields)


def title_of(settings: dict[str, Any], incident: Incident, fields: dict[str, Any]) -> str:
    default = DEFAULT_TITLE if incident.facet is not None else DEFAULT_TITLE.split(":")[0]
    return render(str(settings.get("title") or default), fields)


def text_of_event(settings: dict[str, Any], event: str, fields: dict[str, Any]) -> str:
    templates = settings.get("text") or {}
    template = templates.get(event) if isinstance(templates, dict) else templates
    return render(str(template or DEFAULT_TEXT[event]), fields)


def secret(settings: dict[str, Any], key: str, required: bool = True) -> str | None:
    """The value of the environment variable named by `settings[key]`."""
    name = settings.get(key)
    if not name:
        if required:
            raise DeliveryError(f"destination setting `{key}` is missing", retryable=False)
        return None
    value = os.environ.get(str(name))
    if not value and required:
        raise DeliveryError(f"environment variable {name} (from `{key}`) is not set",
                            retryable=False)
    return value or None


def _webhook(settings: dict[str, Any], incident: Incident, event: str,
             fields: dict[str, Any]) -> str:
    payload = settings.get("payload")
    body = render_tree(payload, fields) if payload else {
        "title": title_of(settings, incident, fields),
        "text": text_of_event(settings, event, fields),
        **{key: fields[key] for key in ("notification_id", "incident_id", "event", "state",
                                        "priority", "policy", "condition", "facet", "value",
                                        "threshold", "operator", "opened_at", "closed_at",
                                        "close_reason")}}
    headers = {name: secret({"h": env}, "h") or "" for name, env in
               (settings.get("headers_env") or {}).items()}
    return _post(str(secret(settings, "url_env")), body, {**headers, **_id_header(fields)})


def _slack(settings: dict[str, Any], incident: Incident, event: str,
           fields: dict[str, Any]) -> str:
    text = f"*{title_of(settings, incident, fields)}*\n{text_of_event(settings, event, fields)}"
    return _post(str(secret(settings, "url_env")), {"text": text}, _id_header(fields))


def _pagerduty(settings: dict[str, Any], incident: Incident, event: str,
               fields: dict[str, Any]) -> str:
    body: dict[str, Any] = {
        "routing_key": secret(settings, "routing_key_env"),
        "event_action": PAGERDUTY_ACTIONS[event],
        "dedup_key": f"trailguard-incident-{incident.id}",
    }
    if event in ("opened", "escalated"):
        body["payload"] = {
            "summary": title_of(settings, incident, fields)[:1024],
            "source": str(settings.get("source") or "trailguard"),
            "severity": "critical" if incident.priority == "CRITICAL" else "warning",
            "component": incident.condition_name, "group": incident.policy,
            "custom_details": {key: value for key, value in fields.items() if value is not None},
        }
    return _post(str(settings.get("events_url") or PAGERDUTY_EVENTS_URL), body,
                 _id_header(fields))


def _id_header(fields: dict[str, Any]) -> dict[str, str]:
    notification_id = fields.get("notification_id")
    return {NOTIFICATION_ID_HEADER: str(notification_id)} if notification_id else {}


def _post(url: str, body: dict[str, Any], headers: dict[str, str]) -> str:
    try:
        response = httpx.post(url, json=body, headers=headers, timeout=TIMEOUT_S)
    except httpx.HTTPError as exc:
        # The exception text can hold the URL (a secret for Slack): name only its kind.
        raise DeliveryError(f"request failed: {type(exc).__name__}") from None
    if response.status_code >= 400:
        retryable = response.status_code >= 500 or response.status_code in (408, 429)
        raise DeliveryError(f"HTTP {response.status_code}", retryable=retryable)
    return f"HTTP {response.status_code}"


def _email(settings: dict[str, Any], incident: Incident, event: str,
           fields: dict[str, Any]) -> str:
    recipients = settings.get("to") or []
    recipients = [recipients] if isinstance(recipients, str) else list(recipients)
    if not settings.get("host") or not settings.get("from") or not recipients:
        raise DeliveryError("e-mail destination needs `host`, `from` and `to`", retryable=False)
    message = EmailMessage()
    message["Subject"] = _CONTROL.sub(" ", title_of(settings, incident, fields))
    message["From"] = str(settings["from"])
    message["To"] = ", ".join(recipients)
    if fields.get("notification_id"):
        # Mail systems and scripts de-duplicate on Message-ID: a replay keeps it.
        message["Message-ID"] = f"<{fields['notification_id']}@trailguard>"
        message[NOTIFICATION_ID_HEADER] = str(fields["notification_id"])
    message.set_content(text_of_event(settings, event, fields))
    try:
        with smtplib.SMTP(str(settings["host"]), int(settings.get("port", 587)),
                          timeout=TIMEOUT_S) as smtp:
            if settings.get("starttls", True):
                smtp.starttls(context=_tls_context(settings))
            username = secret(settings, "username_env", required=False)
            if username:
                smtp.login(username, secret(settings, "password_env") or "")
            smtp.send_message(message)
    except smtplib.SMTPAuthenticationError as exc:
        raise DeliveryError(f"SMTP authentication failed ({exc.smtp_code})",
                            retryable=False) from None
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(f"SMTP delivery failed: {type(exc).__name__}") from None
    return f"SMTP accepted for {len(recipients)} recipient(s)"


def _tls_context(settings: dict[str, Any]) -> ssl.SSLContext:
    """Verifying TLS context; `ca_file` adds a private CA (e.g. an internal relay)."""
    return ssl.create_default_context(cafile=settings.get("ca_file") or None)
