import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from trailguard.ingest.flatten import flatten


@pytest.mark.parametrize(("document", "expected"), [
    ({"a": {"b": {"c": 1}}}, {"a.b.c": 1}),
    ({"detail-type": "GuardDuty Finding"}, {"detail-type": "GuardDuty Finding"}),
    ({"resources": []}, {"resources": "[]"}),
    ({"resources": [{"ARN": "arn:aws:s3:::example"}]},
     {"resources": '[{"ARN":"arn:aws:s3:::example"}]', "resources.0.ARN": "arn:aws:s3:::example"}),
    ({"a": None, "b": False, "c": 0.5}, {"b": False, "c": 0.5}),
    ({"n": 2**70}, {"n": str(2**70)}),
    ({"tags": ["x", "y"]}, {"tags": '["x","y"]', "tags.0": "x", "tags.1": "y"}),
])
def test_flatten_names_attributes_like_new_relic(document, expected):
    assert flatten(document) == expected


def _reference_flatten(value, name=""):
    """The naming rule spelled out plainly: dotted names, arrays kept whole and by index,
    nulls left out, integers past 64 bits as digits."""
    if isinstance(value, dict):
        flat = {}
        for key, child in value.items():
            flat.update(_reference_flatten(child, f"{name}.{key}" if name else key))
        return flat
    if isinstance(value, list):
        flat = {name: orjson.dumps(value).decode()} if name else {}
        for index, child in enumerate(value):
            flat.update(_reference_flatten(child, f"{name}.{index}" if name else str(index)))
        return flat
    if value is None or not name:
        return {}
    if type(value) is int and abs(value) >= 2**63:
        return {name: str(value)}
    return {name: value}


# Integers a JSON decoder hands over (past 64 bits, decoders refuse them or give text).
_scalars = (st.none() | st.booleans() | st.integers(min_value=-2**63, max_value=2**64 - 1)
            | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=6))
_values = st.recursive(_scalars, lambda children: st.lists(children, max_size=3)
                       | st.dictionaries(st.text(max_size=4), children, max_size=3),
                       max_leaves=15)


@given(st.dictionaries(st.text(max_size=4), _values, max_size=4))
def test_flatten_follows_the_naming_rule_for_any_document(document):
    flat = flatten(document)
    assert flat == _reference_flatten(document)
    assert list(flat) == list(_reference_flatten(document))  # and keeps document order
