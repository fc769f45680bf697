"""Which attributes live in real typed columns, and how the rest is kept.

Group-bys and filters on real columns are orders of magnitude faster than on
JSON extraction (see ARCHITECTURE.md), so the attributes security queries facet
and filter on most get columns of their own. Every other attribute is kept,
typed, in one JSON object per event (`attrs`) and stays queryable.

A value whose type does not fit its column (a string in `detail.severity`) goes
to `attrs` under the same name instead, so nothing is ever dropped.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

TABLE = "events"
# A DOUBLE column holds integers exactly only up to this magnitude.
EXACT_INTEGER_IN_DOUBLE = 2**53
ATTRS_COLUMN = "attrs"


@dataclass(frozen=True, slots=True)
class HotColumn:
    """An attribute stored in a typed column of its own."""

    attribute: str
    column: str
    sql_type: str  # "VARCHAR" or "DOUBLE"

    def accepts(self, value: object) -> bool:
        if self.sql_type == "DOUBLE":
            if isinstance(value, bool) or not isinstance(value, int | float):
                return False
            return isinstance(value, float) or abs(value) <= EXACT_INTEGER_IN_DOUBLE
        return isinstance(value, str)


def _column_name(attribute: str) -> str:
    # Dots and dashes map differently so `detail.type` and `detail-type` stay apart.
    spelled = attribute.replace(".", "__").replace("-", "_")
    return "a_" + re.sub(r"[^0-9A-Za-z_]", "_", spelled).lower()


_STRINGS = (
    # every event
    "message", "logtype",
    # EventBridge envelope and GuardDuty findings
    "source", "detail-type", "account", "region", "id",
    "detail.type", "detail.id", "detail.title", "detail.accountId", "detail.region",
    "detail.updatedAt", "detail.service.serviceName", "detail.resource.resourceType",
    "detail.service.action.actionType",
    # CloudTrail
    "provider", "eventName", "eventSource", "eventType", "eventID", "eventCategory",
    "errorCode", "errorMessage", "awsRegion", "sourceIPAddress", "userAgent",
    "recipientAccountId", "userIdentity.type", "userIdentity.arn", "userIdentity.userName",
    "userIdentity.accountId", "userIdentity.principalId", "userIdentity.invokedBy",
    "responseElements.ConsoleLogin", "additionalEventData.MFAUsed",
)
_NUMBERS = ("detail.severity", "detail.service.count")

HOT_COLUMNS: tuple[HotColumn, ...] = tuple(
    [HotColumn(name, _column_name(name), "VARCHAR") for name in _STRINGS]
    + [HotColumn(name, _column_name(name), "DOUBLE") for name in _NUMBERS]
)
HOT_BY_ATTRIBUTE: dict[str, HotColumn] = {hot.attribute: hot for hot in HOT_COLUMNS}
if len({hot.column for hot in HOT_COLUMNS}) != len(HOT_COLUMNS):
    raise RuntimeError("two hot attributes map to the same column name")

# Columns every row has besides the hot ones. `timestamp` is the NRQL attribute
# of the same name; `event_type` is what FROM selects.
BASE_COLUMNS = (
    ("event_type", "VARCHAR NOT NULL"),
    ("timestamp", "BIGINT NOT NULL"),
)

# An event's content key (see `Event.dedup_key`) as a 128-bit digest: a re-delivered
# event is recognised by finding its digest among the stored ones. A column of fixed-size
# numbers scans and joins far faster than the key text, and needs no index (DuckDB's
# primary-key index grew slower with every key: claiming 20,000 keys took 210 ms at 1M
# stored keys and 400 ms at 3M; the semi-join over this column stays near 60 ms).
DEDUP_COLUMN = "dedup_hash"
# The SQL that turns the key text into the digest. MD5 is enough here: no key text can be
# steered towards another's digest, because the text ends in a SHA-256 digest of the
# event's content (CloudTrail records, findings) or is an id AWS assigned (EventBridge).
DEDUP_DIGEST_SQL = "md5_number({key})"


# The whole original JSON (`message`) and the other attributes (`attrs`) are most of
# every row. DuckDB's default string compression (dictionary/FSST) leaves them near raw
# size; ZSTD keeps them ~9x smaller (measured on generated CloudTrail and GuardDuty:
# 3,081 -> 331 bytes per event, 2.2x the gzip'd JSON) and even scans them faster.
# Filtered and faceted columns keep the default, which suits repeated values.
ZSTD_COLUMNS = ("a_message", ATTRS_COLUMN)


# `attrs` holds JSON text but is declared VARCHAR: DuckDB parses every value put into a
# JSON column to validate it, which cost 1.7-2.9 us of the server's CPU per event at
# ingest (200k generated events, ~4.4 KB of attrs each), while the JSON functions read a
# VARCHAR the same way. The text is always valid: only the store's own serializer writes
# it. Stores created before keep their JSON column, which works the same.
ATTRS_SQL_TYPE = "VARCHAR"


def _compression(column: str) -> str:
    return " USING COMPRESSION zstd" if column in ZSTD_COLUMNS else ""


def create_statements() -> list[str]:
    """DDL for the events table and the idempotency tables (DuckDB dialect).

    Built only from the constant names above, never from user input.
    """
    columns = [f'"{name}" {sql_type}' for name, sql_type in BASE_COLUMNS]
    columns.append(f'"{DEDUP_COLUMN}" UHUGEINT')
    columns += [f'"{hot.column}" {hot.sql_type}{_compression(hot.column)}'
                for hot in HOT_COLUMNS]
    columns.append(f'"{ATTRS_COLUMN}" {ATTRS_SQL_TYPE}{_compression(ATTRS_COLUMN)}')
    return [
        f'CREATE TABLE IF NOT EXISTS {TABLE} ({", ".join(columns)})',
        ("CREATE TABLE IF NOT EXISTS delivery_requests ("
        "request_id VARCHAR PRIMARY KEY, received_ms BIGINT NOT NULL, events INTEGER NOT NULL)"),
    ]


def upgrade_statements(event_columns: set[str]) -> list[str]:
    """DDL that brings a store written by an earlier trailguard up to this schema.

    Before digests, content keys were kept as text in `events.dedup_key` and again in
    a `dedup_keys` table with a primary-key index.
    """
    if "dedup_key" not in event_columns or DEDUP_COLUMN in event_columns:
        return []
    digest = DEDUP_DIGEST_SQL.format(key="dedup_key")
    return [
        f"ALTER TABLE {TABLE} ALTER COLUMN dedup_key SET DATA TYPE UHUGEINT USING {digest}",
        f"ALTER TABLE {TABLE} RENAME COLUMN dedup_key TO {DEDUP_COLUMN}",
        "DROP TABLE IF EXISTS dedup_keys",
    ]
