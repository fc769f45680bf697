"""The C row writer (trailguard.store._crows) builds exactly the rows the Python code builds,
or hands the input back to it."""

from __future__ import annotations

import math
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sample_records import public_records

from trailguard.errors import IngestError
from trailguard.events import LOG, Event
from trailguard.generate import generate_cloudtrail, generate_findings
from trailguard.ingest.documents import cloudtrail_event, log_event, packed_log_event
from trailguard.ingest.flatten import MAX_ATTRIBUTES, MAX_DEPTH, MAX_NAME_CHARS
from trailguard.store import rows
from trailguard.store.arrow_rows import _table_in_python, events_to_table, table_from_columns
from trailguard.store.rows import PackedEvent, event_row, pack_columns, pack_event, row_in_python
from trailguard.store.schema import HOT_COLUMNS

T0 = 1_700_000_000_000
MESSAGE_SLOT = [hot.attribute for hot in HOT_COLUMNS].index("message")


def test_the_c_row_writer_is_built_where_a_compiler_is():
    if not (shutil.which("cc") or shutil.which("gcc")) or not sysconfig.get_paths()["include"]:
        pytest.skip("no C compiler here: rows are written in Python alone")
    assert rows.NATIVE_ROWS, (
        "setup.py did not build trailguard.store._crows; reinstall with `pip install -e .` "
        "and read the compiler's output")


needs_c = pytest.mark.skipif(not rows.NATIVE_ROWS,
                             reason="the C row writer is not built (no compiler at install)")


def same_row(native, python) -> None:
    """Rows agree: the same hot values, and attrs holding the same attributes in the same
    order (floats may be spelled differently, 1e+16 against 1e16, and read back equal)."""
    assert native[1] == python[1]
    assert list(orjson.loads(native[0]).items()) == list(orjson.loads(python[0]).items())


# Values of every kind a hot column may be offered, around the 2**53 and 64-bit edges
# (flat attributes hold no wider integer: flattening keeps those as their digits).
_values = (st.none() | st.booleans() | st.floats(allow_nan=False) | st.text(max_size=5)
           | st.integers(min_value=-2**63, max_value=2**64 - 1)
           | st.sampled_from([2**53, 2**53 + 1, -2**53, -2**53 - 1, 0, -2**63, 2**63 - 1]))


def _not_for_c(value) -> bool:
    """A value the C writer hands back: null, an integer at or past the signed 64-bit
    edge, a float JSON cannot spell."""
    if value is None:
        return True
    if type(value) is int:
        return value >= 2**63 or value == -2**63
    return type(value) is float and not math.isfinite(value)


_names = st.sampled_from(["detail.severity", "detail.service.count", "eventName", "message",
                          "detail.type", "other", "another.name", "caf\u00e9", "q\"\\\n"])


@needs_c
@settings(max_examples=400)
@given(st.dictionaries(_names, _values, max_size=7))
def test_any_flat_attributes_make_the_python_row(attributes):
    native = rows._crows.flat_row(attributes)
    python = row_in_python(attributes)

    if native is None:  # handed back: only for what it must leave to Python
        assert any(_not_for_c(value) for value in attributes.values())
    else:
        same_row(native, python)


@needs_c
def test_text_is_escaped_as_json():
    attributes = {"a": "quote \" backslash \\ tab \t nul \x00 unit \x1f caf\u00e9 \U0001f600"}

    attrs, _ = rows._crows.flat_row(attributes)

    assert attrs == orjson.dumps(attributes)


# The C writer scans text 8 bytes at a time for what needs escaping; these put each kind
# of such byte (and bytes that do not count: DEL, UTF-8) at every place in and around
# 8-byte words.
_SPECIAL = ["\"", "\\", "\x00", "\n", "\x1f", "\x7f", " ", "\u00e9", "\U0001f600"]


@needs_c
@pytest.mark.parametrize("special", _SPECIAL)
def test_text_is_escaped_at_every_place_in_a_word(special):
    for length in range(25):
        for place in range(length + 1):
            text = "x" * place + special + "y" * (length - place)
            attributes = {"a": text, "b": special * length}

            attrs, _ = rows._crows.flat_row(attributes)

            assert attrs == orjson.dumps(attributes), (length, place)


@needs_c
@settings(max_examples=300)
@given(st.text(alphabet=st.sampled_from(["a", "\"", "\\", "\x01", "\t", "\x7f", "\u00e9",
                                         "\u2028", "\U0001f600"]), max_size=70))
def test_any_text_is_escaped_as_orjson_escapes_it(text):
    attrs, _ = rows._crows.flat_row({"t": text})

    assert attrs == orjson.dumps({"t": text})


@needs_c
def test_generated_events_make_the_same_table_as_in_python(monkeypatch):
    findings = generate_findings(5, T0, T0 + 3_600_000, 100)
    trail = generate_cloudtrail(5, T0, T0 + 3_600_000, 400)
    events = [log_event(orjson.loads(orjson.dumps(f)), T0) for f in findings]
    events += [cloudtrail_event(record) for record in trail]

    native = events_to_table(events)
    with monkeypatch.context() as python_only:
        python_only.setattr(rows, "_crows", None)
        plain = events_to_table(events)

    assert native.equals(plain)
    assert native.column("a_eventname").null_count < native.num_rows  # columns were filled


# Documents: mostly what the C walk handles, with keys and values it must hand back.
_keys = st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=6) | st.sampled_from(
    ["", "a.b", "k\u00e9", "message", "actor", "detail", "eventName", "detail.type"])
_leaves = (st.none() | st.booleans() | st.floats(allow_nan=False, allow_infinity=False)
           | st.integers(min_value=-2**64, max_value=2**64) | st.text(max_size=4)
           | st.sampled_from(["\ud800", "caf\u00e9", -2**63, 2**53 + 1]))
_documents = st.recursive(_leaves, lambda children: st.lists(children, max_size=3)
                          | st.dictionaries(_keys, children, max_size=3), max_leaves=20)
_extras = st.dictionaries(st.sampled_from(["logtype", "message", "env", "eventName", "a"]),
                          st.text(max_size=3) | st.integers(-5, 5), max_size=3)


def python_packed(document, extras, raw_text):
    """What the Python path stores for `document`: log_event, then event_row; or the error."""
    try:
        event = log_event(document, T0, extras, raw_text=raw_text, strict=True)
    except IngestError as exc:
        return ("error", str(exc))
    return event, row_in_python(event.attributes)


def assert_packed_as_in_python(document, extras=None, raw_text="raw") -> bool:
    """The packed event equals the Python path's; False when the C walk handed it back."""
    packed = packed_log_event(document, T0, extras, raw_text)
    if packed is None:
        return False
    event, row = python_packed(document, extras, raw_text)
    assert (packed.event_type, packed.timestamp, packed.dedup_key) == \
        (event.event_type, event.timestamp, event.dedup_key)
    assert packed.hot == row[1]
    # With extras the order of names may differ (they come last here); never a value.
    native, python = orjson.loads(packed.attrs), orjson.loads(row[0])
    assert (native == python) if extras else (list(native.items()) == list(python.items()))
    return True


@needs_c
@settings(max_examples=400)
@given(st.dictionaries(_keys, _documents, max_size=5), _extras, st.booleans())
def test_any_document_packs_as_in_python(document, extras, with_raw_text):
    assert_packed_as_in_python(document, extras, "raw" if with_raw_text else None)


@needs_c
@pytest.mark.parametrize(("document", "extras"), [
    ({"message": "own", "eventName": "x"}, {"message": "extra"}),     # the document's wins
    ({"message": 5}, None),                                          # not text: attrs
    ({"message": {"text": "nested"}}, None),                         # message.text: no message
    ({"message": None}, {"logtype": "t"}),                           # null: left out
    ({"eventName": ["a", "b"], "other": [[1, 2], {"x": None}]}, None),  # arrays twice
    ({"eventName": 7, "detail": {"severity": "high", "service": {"count": 2**60}}}, None),
    ({"s": "tab\there \"quoted\" caf\u00e9"}, {"env": "prod", "eventName": "kept"}),
    ({"f": 1e16, "g": 5.0, "h": -0.0, "t": True}, None),
])
def test_edge_documents_pack_as_in_python(document, extras):
    assert assert_packed_as_in_python(document, extras)


@needs_c
def test_a_cloudtrail_record_gets_its_actor_unless_it_has_one():
    record = {"eventTime": "2026-12-01T00:00:00Z", "eventID": "e-1", "eventSource": "s3",
              "userIdentity": {"type": "IAMUser", "userName": "alice"}}

    assert assert_packed_as_in_python(record)
    assert orjson.loads(packed_log_event(record, T0, None, "raw").attrs)["actor"] == "alice"
    assert assert_packed_as_in_python({**record, "actor": "own"})
    assert assert_packed_as_in_python({**record, "actor": None})  # in the record: not added


@needs_c
@pytest.mark.parametrize(("document", "handled"), [
    ({"": 1}, False),                                  # a name of nothing
    ({"a.b": 1, "a": {"b": 2}}, False),                # two paths to one name
    ({"k\u00e9": 1}, False),                           # a name to count in characters
    ({"s": "\ud800"}, False),                          # a lone surrogate: refused in Python
    ({"w": 2**63}, False), ({"w": -2**63}, False),     # kept as digits in Python
    ({"w": 2**63 - 1, "v": "caf\u00e9"}, True),
    ({"x" * MAX_NAME_CHARS: 1}, True), ({"x" * (MAX_NAME_CHARS + 1): 1}, False),
    ({f"k{n}": n for n in range(MAX_ATTRIBUTES)}, True),
    ({f"k{n}": n for n in range(MAX_ATTRIBUTES + 1)}, False),
    ({"a": list(range(MAX_ATTRIBUTES - 1))}, True),    # the array's text counts too
    ({"a": list(range(MAX_ATTRIBUTES))}, False),
])
def test_the_c_walk_hands_back_exactly_what_it_must(document, handled):
    assert assert_packed_as_in_python(document) is handled


@needs_c
@pytest.mark.parametrize(("wrappers", "handled"), [(MAX_DEPTH - 1, True), (MAX_DEPTH, False)])
def test_nesting_at_the_depth_limit(wrappers, handled):
    document: dict = {"leaf": 1}
    for _ in range(wrappers):
        document = {"a": document}

    assert assert_packed_as_in_python(document) is handled
    if not handled:
        assert python_packed(document, None, "raw")[0] == "error"  # the limit, in Python


@needs_c
def test_generated_findings_and_cloudtrail_pack_as_in_python():
    documents = (generate_findings(3, T0, T0 + 3_600_000, 200)
                 + generate_cloudtrail(3, T0, T0 + 3_600_000, 800))
    for document in documents:
        text = orjson.dumps(document).decode()
        assert assert_packed_as_in_python(orjson.loads(text), None, text)


@needs_c
def test_public_cloudtrail_and_guardduty_samples_pack_as_in_python(samples: Path):
    checked = 0
    for record in public_records(samples):
        assert_packed_as_in_python(record, None, orjson.dumps(record).decode())
        checked += 1
    assert checked > 100


@needs_c
def test_an_event_with_plain_attributes_is_written_in_c():
    event = Event(LOG, T0, {"message": "m", "eventName": "x", "n": 1}, "k")

    attrs, hot = event_row(event.attributes)

    assert orjson.loads(attrs) == {"n": 1}
    assert hot[MESSAGE_SLOT] == "m"


@needs_c
def test_the_c_writer_refuses_a_malformed_configuration():
    with pytest.raises(TypeError, match="configure"):
        rows._crows.configure(("message",), ())
    with pytest.raises(TypeError, match="tail"):
        rows._crows.document_row({}, orjson.dumps, 1, 1, 1, ("not a pair",), ())


_text_or_none = st.none() | st.text(max_size=6)


@needs_c
@settings(max_examples=200)
@given(st.lists(st.tuples(st.sampled_from(["Log", "InfrastructureEvent"]),
                          st.integers(-2**63, 2**63 - 1), _text_or_none,
                          st.dictionaries(_names, _values, max_size=5)), max_size=12))
def test_packed_columns_make_the_table_pyarrow_makes(events):
    packed = [PackedEvent(kind, when, key, *row_in_python(attributes))
              for kind, when, key, attributes in events
              if not any(_not_for_c(value) for value in attributes.values())]

    native = table_from_columns(pack_columns(packed))
    native.validate(full=True)

    assert native.equals(_table_in_python(packed))


@needs_c
def test_packing_refuses_what_is_not_a_row():
    with pytest.raises(TypeError, match="PackedEvent"):
        pack_columns([("Log", 1, None, b"{}")])
    good = pack_event(Event(LOG, T0, {"message": "m"}, None))
    with pytest.raises(TypeError, match="number column"):
        pack_columns([good._replace(hot=tuple("text" if hot.sql_type == "DOUBLE" else None
                                              for hot in HOT_COLUMNS))])
    with pytest.raises(TypeError):
        pack_columns([good._replace(timestamp="soon")])


def test_a_decode_worker_never_imports_pyarrow():
    code = ("import sys, trailguard.ingest.decode_rows; "
            "sys.exit(1 if 'pyarrow' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@needs_c
def test_a_lone_surrogate_for_a_text_column_goes_to_the_python_walk():
    assert packed_log_event({"eventName": "\ud800"}, T0, None, "raw") is None


@needs_c
def test_the_walk_survives_a_hostile_dumps():
    document = {"a": [1, 2, 3], "b": "x"}
    walk = rows._crows.document_row

    assert walk(document, lambda value: "not bytes", 10, 100, 100, (), ()) is None
    assert walk(document, lambda value: [0] * 1000, 10, 100, 100, (), ()) is None

    walked = {"a": [[1, 2], [3]], "b": "x"}

    def emptying(value):
        value.clear()  # the list being walked and its document, gone under the walk's feet
        walked.clear()
        return b"[]"

    attrs, _ = walk(walked, emptying, 10, 100, 100, (), ())
    assert orjson.loads(attrs) == {"a": "[]"}
    with pytest.raises(ValueError, match="max_depth"):
        walk(document, orjson.dumps, 10**9, 100, 100, (), ())
