"""Query output is safe to look at: event data never becomes markup, escapes or formulas."""

from trailguard.query_client import render

HOSTILE = {"results": [{"timestamp": 1, "arn": "arn:aws:iam::111122223333:user/[/bold]",
                        "ip": "[link=http://example.invalid]click[/link]",
                        "agent": "\x1b[31mred", "note": "=HYPERLINK(1)", "n": -5,
                        "ok": True}],
           "metadata": {"facets": []}}


def test_table_shows_markup_literally_and_neutralises_escapes():
    printed = render(HOSTILE, "table")
    assert "user/[/bold]" in printed
    assert "[link=http://example.invalid]click[/link]" in printed
    assert "\x1b" not in printed
    assert "\N{REPLACEMENT CHARACTER}[31mred" in printed
    assert printed.rstrip().endswith("1 row(s)")


def test_csv_defuses_spreadsheet_formulas_but_not_numbers():
    lines = render(HOSTILE, "csv").splitlines()
    assert lines[0] == "timestamp,arn,ip,agent,note,n,ok"
    assert lines[1].endswith(",'=HYPERLINK(1),-5,true")


def test_wide_results_print_one_block_per_event():
    wide = {"results": [{f"attr{index:02d}": index for index in range(20)}],
            "metadata": {"facets": []}}
    printed = render(wide, "table")
    assert "event 1" in printed
    assert "│ attr19 │ 19 │" in printed


def test_single_facet_column_is_not_repeated():
    faceted = {"results": [{"facet": "ConsoleLogin", "eventName": "ConsoleLogin", "count": 3}],
               "metadata": {"facets": ["eventName"]}}
    assert render(faceted, "csv").splitlines() == ["eventName,count", "ConsoleLogin,3"]
