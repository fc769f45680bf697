"""The C flattener gives exactly the Python walk's results, or hands the document back."""

from __future__ import annotations

import re
import shutil
import sysconfig
from pathlib import Path

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sample_records import public_records

from trailguard.errors import IngestError
from trailguard.generate import generate_cloudtrail, generate_findings
from trailguard.ingest import flatten as flattening
from trailguard.ingest.flatten import (
    MAX_ATTRIBUTES,
    MAX_DEPTH,
    MAX_NAME_CHARS,
    flatten,
    flatten_in_python,
)

T0 = 1_700_000_000_000


def outcome(function, document):
    """What flattening `document` gives: the attributes in order, or the error message."""
    try:
        return list(function(document).items())
    except IngestError as exc:
        return ("error", str(exc))


def test_the_c_flattener_is_built_where_a_compiler_is():
    if not (shutil.which("cc") or shutil.which("gcc")) or not sysconfig.get_paths()["include"]:
        pytest.skip("no C compiler here: flattening runs in Python alone")
    assert flattening._flatten_plain is not None, (
        "setup.py did not build trailguard.ingest._cflatten; reinstall with "
        "`pip install -e .` and read the compiler's output")


needs_c = pytest.mark.skipif(flattening._flatten_plain is None,
                             reason="the C flattener is not built (no compiler at install)")

# Mostly ASCII text, the C walk's case, with some that it must hand back.
_text = st.text(alphabet=st.characters(max_codepoint=0x7F), max_size=6) | st.text(max_size=4)
_integers = st.integers(min_value=-2**64, max_value=2**64) | st.sampled_from(
    [-2**63, -2**63 + 1, 2**63 - 1, 2**63, 0])
_scalars = (st.none() | st.booleans() | _integers
            | st.floats(allow_nan=False, allow_infinity=False) | _text)
_values = st.recursive(_scalars, lambda children: st.lists(children, max_size=3)
                       | st.dictionaries(_text, children, max_size=3), max_leaves=20)


@needs_c
@settings(max_examples=400)
@given(st.dictionaries(_text, _values, max_size=5))
def test_any_document_flattens_as_in_python(document):
    assert outcome(flatten, document) == outcome(flatten_in_python, document)


@needs_c
@pytest.mark.parametrize("document", [
    {"": 1, "a": {"": 2}},                        # the "" names
    {"a.b": 1, "a": {"b": 2}},                    # a dotted key and a path meeting
    {"s": "\ud800"},                              # a lone surrogate: refused in Python
    {"k\u00e9": 1, "v": "caf\u00e9"},            # non-ASCII key and value
    {"n": -2**63, "m": 2**63 - 1, "w": 2**63},    # the 64-bit edges
    {"x" * MAX_NAME_CHARS: 1},                    # a name at its limit ...
    {"x" * (MAX_NAME_CHARS + 1): 1},              # ... and past it
    {"list": ["x" * MAX_NAME_CHARS]},
    {f"k{n}": n for n in range(MAX_ATTRIBUTES)},  # attributes at their limit ...
    {f"k{n}": n for n in range(MAX_ATTRIBUTES + 1)},  # ... and past it
    {"a": list(range(MAX_ATTRIBUTES))},           # an array counts per element
])
def test_edge_documents_flatten_as_in_python(document):
    assert outcome(flatten, document) == outcome(flatten_in_python, document)


@needs_c
@pytest.mark.parametrize("depth", [MAX_DEPTH - 1, MAX_DEPTH, MAX_DEPTH + 1])
def test_nesting_at_the_depth_limit_flattens_as_in_python(depth):
    document: dict = {"leaf": 1}
    for _ in range(depth):
        document = {"a": document}

    assert outcome(flatten, document) == outcome(flatten_in_python, document)


@needs_c
def test_generated_findings_and_cloudtrail_flatten_as_in_python():
    documents = (generate_findings(3, T0, T0 + 3_600_000, 200)
                 + generate_cloudtrail(3, T0, T0 + 3_600_000, 800))
    for document in documents:
        # As a record is read: the JSON text decoded again (orjson's own types).
        document = orjson.loads(orjson.dumps(document))
        assert outcome(flatten, document) == outcome(flatten_in_python, document)


@needs_c
def test_public_cloudtrail_and_guardduty_samples_flatten_as_in_python(samples: Path):
    checked = 0
    for record in public_records(samples):
        assert outcome(flatten, record) == outcome(flatten_in_python, record)
        checked += 1
    assert checked > 100


@needs_c
@settings(max_examples=300)
@given(st.text(alphabet=st.sampled_from("0123456789 x\u0661\u00e9\U0001f600"), max_size=60))
def test_the_digit_run_scan_agrees_with_python(text):
    from trailguard.ingest import payloads

    assert payloads._has_digit_run is not None
    assert payloads._may_hold_wide_integer(text) == \
        payloads._may_hold_wide_integer_in_python(text)


@needs_c
@settings(max_examples=500)
@given(st.text(alphabet=st.sampled_from("0123456789x. "), max_size=120),
       st.integers(min_value=1, max_value=25))
def test_the_skipping_digit_run_scan_agrees_with_reading_every_character(text, run):
    from trailguard.ingest._cflatten import has_digit_run

    longest = max((len(digits) for digits in re.findall("[0-9]+", text)), default=0)
    assert has_digit_run(text, run) is (longest >= run)


@needs_c
@pytest.mark.parametrize(("text", "expected"), [
    ("1" * 18, False), ("1" * 19, True), ('{"a": ' + "9" * 25 + "}", True),
    ("1" * 18 + "." + "1" * 18, False), ("\u0661" * 19, False), ("\U0001f600" + "0" * 19, True),
])
def test_the_digit_run_scan_finds_nineteen_ascii_digits(text, expected):
    from trailguard.ingest import payloads

    assert payloads._may_hold_wide_integer(text) is expected
