"""Dashboard variables `{{name}}`: bound as NRQL literals before parsing."""

from __future__ import annotations

from typing import Any

import pytest

from trailguard.errors import NrqlError
from trailguard.nrql import bind_variables, compile_nrql, run_nrql, variable_names

SECURITY_WIDGET = ("SELECT count(*) FROM Log WHERE cloud.region IN ({{aws_region}}) AND "
                   "identity.user.account_uid IN ({{ aws_account }}) FACET cloud.region")


@pytest.mark.parametrize(("values", "expected"), [
    ({"aws_region": ["us-east-1", "eu-west-1"], "aws_account": "111122223333"},
     ("cloud.region IN ('us-east-1', 'eu-west-1') AND identity.user.account_uid IN "
     "('111122223333')")),
    ({"aws_region": "it's", "aws_account": 42},
     "cloud.region IN ('it\\'s') AND identity.user.account_uid IN (42)"),
    ({"aws_region": ["') OR 1=1 --"], "aws_account": True},
     "cloud.region IN ('\\') OR 1=1 --') AND identity.user.account_uid IN (true)"),
])
def test_bind_variables(values: dict[str, Any], expected: str) -> None:
    bound = bind_variables(SECURITY_WIDGET, values)
    assert bound == f"SELECT count(*) FROM Log WHERE {expected} FACET cloud.region"


def test_variable_names() -> None:
    assert variable_names(SECURITY_WIDGET + " {{aws_region}}") == ["aws_region", "aws_account"]


def test_a_value_cannot_change_the_query(synthetic: Any) -> None:
    nrql = "FROM InfrastructureEvent SELECT count(*) WHERE awsRegion IN ({{r}})"
    hostile = run_nrql(synthetic, nrql, 1_700_000_000_000,
                       variables={"r": ["x') OR awsRegion LIKE '%"]})
    honest = run_nrql(synthetic, nrql, 1_700_000_000_000, variables={"r": ["eu-west-1"]})
    assert (hostile["results"], honest["results"]) == ([{"count": 0}], [{"count": 3}])


def test_unbound_variable_names_itself() -> None:
    with pytest.raises(NrqlError, match=r"dashboard variable \{\{aws_account\}\} has no value"):
        compile_nrql(SECURITY_WIDGET, "duckdb", 0, variables={"aws_region": "x"})
    with pytest.raises(NrqlError, match=r"dashboard variable \{\{aws_region\}\} has no value "
                                        r"at line 1, column 49"):
        compile_nrql(SECURITY_WIDGET, "duckdb", 0)


@pytest.mark.parametrize(("dialect", "fragment"), [
    ("duckdb", "JSON_EXTRACT_STRING(attrs, $p3)"),
    ("clickhouse", "JSONExtractString(attrs, {p3: String})"),
])
def test_dialects_spell_attribute_access(dialect: str, fragment: str) -> None:
    compiled = compile_nrql("SELECT count(*) FROM Log WHERE cloud.region = 'x'", dialect, 0)
    assert fragment in compiled.sql
    assert compiled.params["p3"] == ('$."cloud.region"' if dialect == "duckdb"
                                     else "cloud.region")
