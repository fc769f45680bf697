"""The DuckDB store keeps every value whatever its type, once."""

import subprocess
import sys
from pathlib import Path

import pytest

from trailguard.errors import StoreBusyError, StoreError
from trailguard.events import Event
from trailguard.ingest.documents import cloudtrail_event
from trailguard.nrql import run_nrql
from trailguard.store import DuckDBStore

T0 = 1_700_000_000_000
NOW = T0 + 60_000
EVER = "SINCE 30 years ago"


def ct(event_id: str, **fields) -> dict:
    record = {"eventVersion": "1.08", "eventTime": "2023-11-14T22:13:20Z",
              "eventSource": "iam.amazonaws.com", "eventName": "CreateUser",
              "awsRegion": "us-east-1", "eventID": event_id,
              "userIdentity": {"type": "IAMUser", "userName": "example"}}
    record.update(fields)
    return record


def results(store, nrql: str) -> list:
    return run_nrql(store, nrql, now_ms=NOW)["results"]


def test_bl06_object_in_one_event_string_in_another(store):
    glue = ct("a", eventSource="glue.amazonaws.com", eventName="UpdateCrawler",
              requestParameters={"role": "arn:aws:iam::111122223333:role/example"})
    iam = ct("b", eventName="CreateInstanceProfile",
             requestParameters={"role": {"roleName": "example"}},
             responseElements={"role": {"roleName": "example"}})
    store.write([cloudtrail_event(glue), cloudtrail_event(iam)])

    assert results(store, "SELECT count(*) FROM InfrastructureEvent WHERE eventSource IN "
                          f"('glue.amazonaws.com','iam.amazonaws.com') {EVER}") == [{"count": 2}]
    rows = results(store, "SELECT requestParameters.role, requestParameters.role.roleName "
                          f"FROM InfrastructureEvent {EVER}")
    assert sorted((r["requestParameters.role"] or "", r["requestParameters.role.roleName"] or "")
                  for r in rows) == [("", "example"),
                                     ("arn:aws:iam::111122223333:role/example", "")]


def test_bl08_date_looking_strings_and_numbers_are_kept_as_sent(store):
    records = [ct("a", requestParameters={"logStreamNamePrefix": "2021/05/01"}),
               ct("b", requestParameters={"logStreamNamePrefix": "example-prefix"}),
               ct("c", requestParameters={"startTime": 1700000000}),
               ct("d", requestParameters={"startTime": "Nov 14, 2023 10:13:20 PM"})]
    store.write([cloudtrail_event(record) for record in records])

    prefixes = results(store, "SELECT requestParameters.logStreamNamePrefix FROM "
                              f"InfrastructureEvent WHERE eventID IN ('a', 'b') {EVER}")
    starts = results(store, "SELECT requestParameters.startTime FROM InfrastructureEvent "
                            f"WHERE eventID IN ('c', 'd') {EVER}")
    assert sorted(r["requestParameters.logStreamNamePrefix"] for r in prefixes) == [
        "2021/05/01", "example-prefix"]
    assert sorted(map(str, (r["requestParameters.startTime"] for r in starts))) == [
        "1700000000", "Nov 14, 2023 10:13:20 PM"]


def test_a_value_of_another_type_than_its_column_is_kept(store):
    store.write([Event("Log", T0, {"detail.severity": 8}),
                 Event("Log", T0, {"detail.severity": "HIGH"})])
    rows = results(store, f"FROM Log SELECT * {EVER}")
    assert sorted(str(row["detail.severity"]) for row in rows) == ["8", "HIGH"]
    assert results(store, f"FROM Log SELECT count(*) WHERE detail.severity = 'HIGH' {EVER}") \
        == [{"count": 1}]
    assert results(store, f"FROM Log SELECT count(*) WHERE detail.severity > 7 {EVER}") \
        == [{"count": 1}]


def test_bl11_huge_values_are_stored_whole_and_searchable(store):
    policy = '{"Statement": [' + ",".join(['{"Action": "s3:ListBucket"}'] * 1500) \
        + ',{"Action": "s3:GetObject"}]}'
    assert len(policy) > 40_000
    tags = [{"key": f"k{index}", "value": "v" * 400} for index in range(500)]
    store.write([cloudtrail_event(ct("p", eventName="PutRolePolicy",
                                     requestParameters={"policyDocument": policy})),
                 cloudtrail_event(ct("r", eventName="RunInstances",
                                     requestParameters={"tagSpecificationSet": tags}))])

    rows = results(store, "SELECT requestParameters.policyDocument FROM InfrastructureEvent "
                          f"WHERE requestParameters.policyDocument LIKE '%s3:GetObject%' {EVER}")
    assert [row["requestParameters.policyDocument"] for row in rows] == [policy]
    assert results(store, "SELECT count(*) FROM InfrastructureEvent WHERE "
                          f"requestParameters.tagSpecificationSet.499.key = 'k499' {EVER}") \
        == [{"count": 1}]


def test_content_duplicates_and_replayed_deliveries_are_stored_once(store):
    first = store.write([cloudtrail_event(ct("x")), Event("Log", T0, {"message": "m"})], "d-1")
    replay = store.write([cloudtrail_event(ct("x")), Event("Log", T0, {"message": "m"})], "d-1")
    again = store.write([cloudtrail_event(ct("x"))], "d-2")
    changed = store.write([cloudtrail_event(ct("x", errorCode="AccessDenied"))], "d-3")

    assert (first.stored, replay.replayed, again.stored, changed.stored) == (2, True, 0, 1)
    assert results(store, f"FROM InfrastructureEvent SELECT count(*) {EVER}") == [{"count": 2}]


def test_second_process_and_missing_data_get_actionable_errors(store, tmp_path: Path):
    holder = subprocess.Popen(
        [sys.executable, "-c", ("import sys, time; from trailguard.store import DuckDBStore; "
         "held = DuckDBStore(sys.argv[1]); print('ready', flush=True); time.sleep(60)"),
         str(tmp_path / "other")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreBusyError, match="in use by another trailguard process"):
            DuckDBStore(tmp_path / "other", read_only=True)
    finally:
        holder.kill()
        holder.wait()
    with pytest.raises(StoreBusyError):  # this process already has it open for writing
        DuckDBStore(tmp_path, read_only=True)
    with pytest.raises(StoreError, match="no trailguard data"):
        DuckDBStore(tmp_path / "empty", read_only=True)


def test_a_store_with_key_text_is_upgraded_and_still_recognises_its_events(tmp_path: Path):
    # The layout trailguard wrote before content keys became digests: the key text in
    # events.dedup_key and again in an indexed dedup_keys table.
    import duckdb

    from trailguard.store.schema import create_statements

    stored = cloudtrail_event(ct("old-1"))
    connection = duckdb.connect(str(tmp_path / "trailguard.duckdb"))
    events_ddl = create_statements()[0].replace('"dedup_hash" UHUGEINT', '"dedup_key" VARCHAR')
    connection.execute(events_ddl)
    connection.execute("CREATE TABLE dedup_keys (key VARCHAR PRIMARY KEY)")
    connection.execute("INSERT INTO events (event_type, timestamp, dedup_key, a_eventid) "
                       "VALUES ('InfrastructureEvent', $ts, $key, 'old-1')",
                       {"ts": stored.timestamp, "key": stored.dedup_key})
    connection.execute("INSERT INTO dedup_keys VALUES ($key)", {"key": stored.dedup_key})
    connection.close()

    store = DuckDBStore(tmp_path)
    try:
        again = store.write([cloudtrail_event(ct("old-1")), cloudtrail_event(ct("new-1"))])
        tables = store.read("SELECT table_name FROM duckdb_tables() ORDER BY 1", {}).rows
        counted = results(store, f"FROM InfrastructureEvent SELECT count(*) {EVER}")
    finally:
        store.close()

    assert (again.stored, again.duplicates) == (1, 1)
    assert tables == [("delivery_requests",), ("events",)]
    assert counted == [{"count": 2}]



def test_a_store_whose_attrs_column_is_json_keeps_working(tmp_path: Path):
    # Stores created before `attrs` became VARCHAR declare it JSON; they are not rewritten.
    import duckdb

    from trailguard.store.schema import create_statements

    connection = duckdb.connect(str(tmp_path / "trailguard.duckdb"))
    connection.execute(create_statements()[0].replace('"attrs" VARCHAR', '"attrs" JSON'))
    connection.close()

    store = DuckDBStore(tmp_path)
    try:
        written = store.write([cloudtrail_event(ct("json-1", requestParameters={"n": 7}))])
        again = store.write([cloudtrail_event(ct("json-1", requestParameters={"n": 7}))])
        declared = store.read("SELECT data_type FROM duckdb_columns() "
                              "WHERE table_name = 'events' AND column_name = 'attrs'", {}).rows
        found = results(store, "FROM InfrastructureEvent SELECT requestParameters.n, "
                               f"userIdentity.userName {EVER}")
    finally:
        store.close()

    assert declared == [("JSON",)]
    assert (written.stored, again.stored, again.duplicates) == (1, 0, 1)
    assert [(row["requestParameters.n"], row["userIdentity.userName"]) for row in found] == [
        (7, "example")]


def test_a_new_store_declares_attrs_as_text(store):
    declared = store.read("SELECT data_type FROM duckdb_columns() "
                          "WHERE table_name = 'events' AND column_name = 'attrs'", {}).rows
    assert declared == [("VARCHAR",)]


DAY = 86_400_000


def test_copies_are_found_near_their_time_and_untimed_ones_at_any_time(store):
    from trailguard.ingest.documents import log_event

    record = ct("near-1")
    near = store.write([cloudtrail_event(record)])
    # The same record read from CloudWatch Logs carries the delivery's time: hours off.
    moved = cloudtrail_event(record)
    moved.timestamp += 5 * 3_600_000
    again = store.write([moved])

    # An EventBridge event without a time of its own takes each delivery's time.
    untimed = {"version": "0", "id": "eb-untimed-1", "detail-type": "Example",
               "source": "example.app", "detail": {"n": 1}}
    first = store.write([log_event(untimed, T0)])
    later = store.write([log_event(untimed, T0 + 400 * DAY)])

    assert (near.stored, again.stored, again.duplicates) == (1, 0, 1)
    assert log_event(untimed, T0).dedup_key.startswith("untimed:eb:eb-untimed-1|")
    assert (first.stored, later.stored, later.duplicates) == (1, 0, 1)


def test_copies_further_apart_than_the_window_are_different_events(store):
    # Copies of one record share its time; the same key two days apart cannot be a
    # copy, and is stored (keeping a copy is better than dropping an event).
    event = cloudtrail_event(ct("far-1"))
    store.write([event])
    event.timestamp += 2 * DAY

    assert store.write([event]).stored == 1


def test_one_group_spanning_years_looks_up_each_time_cluster():
    from trailguard.store.duckdb_store import _time_clusters

    times = [0, 1_000, 2 * DAY, 2 * DAY + 5, 900 * DAY]
    assert _time_clusters(times) == [(0, 2), (2, 4), (4, 5)]
    assert _time_clusters([]) == []
    # More clusters than the cap: the widest gaps split, the rest stay together.
    spread = [n * 10 * DAY for n in range(20)]
    assert len(_time_clusters(spread)) == 8
    assert _time_clusters(spread)[0][0] == 0 and _time_clusters(spread)[-1][1] == 20


def test_an_event_differing_from_a_stored_one_under_a_reused_id_is_kept(store):
    from trailguard.ingest.documents import log_event

    def eventbridge(detail: dict, **envelope) -> dict:
        return {"version": "0", "id": "eb-reused", "detail-type": "Example", "time":
                "2023-11-14T22:13:20Z", "source": "example.app", "detail": detail, **envelope}

    first = store.write([log_event(eventbridge({"n": 1}), T0)])
    other = store.write([log_event(eventbridge({"n": 2}), T0)])
    # An archive replay adds replay-name to the envelope: still the same event.
    replay = store.write([log_event(eventbridge({"n": 1}, **{"replay-name": "r1"}), T0)])
    # Bare findings without updatedAt: same id, other severity.
    finding = {"schemaVersion": "2.0", "id": "f-no-updated", "type": "Recon:EC2/PortProbeUnprotectedPort",
               "severity": 2, "service": {"serviceName": "guardduty"},
               "createdAt": "2023-11-14T22:13:20Z"}
    low = store.write([log_event(finding, T0)])
    high = store.write([log_event({**finding, "severity": 8}, T0)])

    assert (first.stored, other.stored, replay.duplicates) == (1, 1, 1)
    assert (low.stored, high.stored) == (1, 1)


def test_the_same_record_as_another_event_type_is_another_event(store):
    from trailguard.ingest.documents import log_event

    record = ct("typed-1")
    as_log = store.write([log_event(record, T0)])                  # Firehose: Log
    as_infrastructure = store.write([cloudtrail_event(record)])    # trail file import
    again = store.write([cloudtrail_event(record), log_event(record, T0)])

    assert (as_log.stored, as_infrastructure.stored, again.duplicates) == (1, 1, 2)


def test_the_store_file_is_written_in_row_groups_of_the_configured_size(store):
    # Small row groups keep each checkpoint's rewrite of the unfinished last group short
    # (see ROW_GROUP_SIZE); this checks the option reaches the file.
    from trailguard.ingest.documents import log_event
    from trailguard.store.duckdb_store import ROW_GROUP_SIZE

    events = [log_event({"message": f"line {n}", "timestamp": T0 + n}, T0)
              for n in range(ROW_GROUP_SIZE + 100)]
    store.write(events)
    groups = store.read("SELECT row_group_id, max(count) FROM pragma_storage_info('events') "
                        "WHERE column_name = 'event_type' GROUP BY ALL ORDER BY 1", {}).rows

    assert [rows for _, rows in groups] == [ROW_GROUP_SIZE, 100]


def test_a_query_past_the_memory_limit_spills_into_the_data_directory(tmp_path):
    from trailguard.config import Config

    store = DuckDBStore(tmp_path, memory_limit=Config().store_memory_limit)
    try:
        settings = store.read("SELECT current_setting('temp_directory'), "
                              "current_setting('memory_limit')", {}).rows[0]
    finally:
        store.close()

    assert Path(settings[0]) == tmp_path / "tmp"
    assert settings[1] == "244.1 MiB"  # 256MB, the default, as DuckDB spells it


def test_a_failed_statement_in_a_group_reports_its_own_error(tmp_path: Path) -> None:
    # Unregistering the group's rows after a failed INSERT fails too ("transaction is
    # aborted"); that error used to replace the real one, so a full disk read as a
    # failure of the deliveries themselves.
    import pyarrow as pa

    from trailguard.events import LOG
    from trailguard.store import Delivery
    from trailguard.store.arrow_rows import events_to_table

    table = events_to_table([Event(LOG, 1_700_000_000_000, {"message": "m"}, None)])
    broken = table.set_column(table.schema.get_field_index("timestamp"), "timestamp",
                              pa.array(["not a time"]))
    store = DuckDBStore(tmp_path)
    try:
        with pytest.raises(StoreError) as raised:
            store.write_deliveries([Delivery([], "bad-1", table=broken)])
        after = store.write_deliveries([Delivery([], "good-1", table=table)])
    finally:
        store.close()

    assert "transaction is aborted" not in str(raised.value)
    assert "not a time" in str(raised.value)  # DuckDB's own words: the value it could not cast
    assert after[0].stored == 1
