import pytest

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
