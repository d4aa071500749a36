"""Reports: grouping, exact totals, and the CSV / JSON / XLSX files read back."""

from __future__ import annotations

import csv
import io
import json
import sys
import zipfile
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from costwarden import reports
from costwarden.errors import ConfigurationError, InvalidInputError
from costwarden.money import usd_to_nanos
from costwarden.records import StoredRecord

T0 = int(datetime(2026, 11, 1, 23, 30, tzinfo=UTC).timestamp() * 1_000_000)


def rec(i: int = 0, cost: int = 100_000, **kw: Any) -> StoredRecord:
    fields: dict[str, Any] = {
        "id": i,
        "ts_us": T0 + i,
        "model": "gpt-4o",
        "provider": "openai",
        "input_tokens": 10,
        "output_tokens": 5,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
        "cost_nanos": cost,
        "user_id": "alice",
        "team": "eng",
        "key": None,
        "endpoint": None,
        "request_id": None,
        "tags": (),
        "latency_ms": None,
        "status": "ok",
        "estimated": False,
        "price_source": "caller",
    }
    fields.update(kw)
    return StoredRecord(**fields)


TEN_THOUSAND = [rec(i, usd_to_nanos(0.0001)) for i in range(10_000)]


def test_ten_thousand_tenth_of_a_cent_records_total_exactly_one_dollar_in_csv() -> None:
    report = reports.build_report(TEN_THOUSAND, "user")
    out = io.StringIO()
    reports.write_csv(report, out)
    lines = list(csv.reader(io.StringIO(out.getvalue())))
    assert lines[0] == ["user", *reports.COLUMNS]
    total = dict(zip(lines[0], lines[-1], strict=True))
    assert total["user"] == "TOTAL"
    assert total["cost_usd"] == "1.000000000"
    assert total["cost_nanos"] == "1000000000"
    assert total["requests"] == "10000"
    assert float(sum(0.0001 for _ in range(10_000))) != 1.0  # what the float path would print


def test_rows_sorted_by_cost_and_none_label() -> None:
    records = [
        rec(1, 5, user_id="bob"),
        rec(2, 50, user_id="alice"),
        rec(3, 7, user_id=None),
        rec(4, 50, user_id="alice"),
    ]
    report = reports.build_report(records, "user")
    assert [(r.group, r.cost_nanos, r.requests) for r in report.rows] == [
        ("alice", 100, 2),
        (reports.NONE_LABEL, 7, 1),
        ("bob", 5, 1),
    ]
    assert report.total.cost_nanos == 112 and not report.rows_overlap


def test_day_groups_by_local_date_in_the_report_time_zone() -> None:
    # 2026-11-01 23:30 UTC is already 2 November in Tokyo.
    records = [rec(1), rec(2, ts_us=T0 + 3_600_000_000)]  # and 00:30 UTC on the 2nd
    assert [r.group for r in reports.build_report(records, "day").rows] == [
        "2026-11-01",
        "2026-11-02",
    ]
    tokyo = reports.build_report(records, "day", timezone="Asia/Tokyo")
    assert [(r.group, r.requests) for r in tokyo.rows] == [("2026-11-02", 2)]


@settings(max_examples=100, deadline=None)
@given(
    stamps=st.lists(st.integers(1_600_000_000, 1_900_000_000), min_size=1, max_size=40),
    zone=st.sampled_from(
        ["UTC", "Europe/Paris", "America/Santiago", "Asia/Kolkata", "Pacific/Apia"]
    ),
)
def test_day_labels_match_the_local_date_of_each_record(stamps: list[int], zone: str) -> None:
    # Random order makes the cached day window move back and forth, across DST changes too.
    from collections import Counter
    from zoneinfo import ZoneInfo

    records = [rec(i, 1, ts_us=s * 1_000_000 + 123) for i, s in enumerate(stamps)]
    expected = Counter(
        datetime.fromtimestamp(s + 0.000123, ZoneInfo(zone)).date().isoformat() for s in stamps
    )
    report = reports.build_report(records, "day", timezone=zone)
    assert {r.group: r.requests for r in report.rows} == dict(expected)


def test_tag_rows_overlap_but_total_counts_each_record_once() -> None:
    records = [rec(1, 10, tags=("a", "b")), rec(2, 5, tags=("b",)), rec(3, 1)]
    report = reports.build_report(records, "tag")
    assert {r.group: r.cost_nanos for r in report.rows} == {"b": 15, "a": 10, "(none)": 1}
    assert report.total.cost_nanos == 16 and report.total.requests == 3
    assert report.rows_overlap


def test_bad_grouping_and_time_zone_are_typed_errors() -> None:
    with pytest.raises(InvalidInputError, match="groups by one of"):
        reports.build_report([], "planet")
    with pytest.raises(InvalidInputError, match="time zone"):
        reports.build_report([], "day", timezone="Mars/Olympus")


group_names = st.sampled_from(["alice", "bob", "carol", None])
record_lists = st.lists(
    st.builds(
        lambda cost, user, team, model, tags, tokens: rec(
            0,
            cost,
            user_id=user,
            team=team,
            model=model,
            tags=tuple(dict.fromkeys(tags)),
            input_tokens=tokens,
        ),
        st.integers(0, 10**12),
        group_names,
        group_names,
        st.sampled_from(["gpt-4o", "gpt-4o-mini", "claude-3-haiku"]),
        st.lists(st.sampled_from(["x", "y", "z"]), max_size=3),
        st.integers(0, 10**6),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(records=record_lists, by=st.sampled_from(reports.GROUP_BY))
def test_totals_are_exact_sums_and_partitions_add_up(records: list[StoredRecord], by: str) -> None:
    report = reports.build_report(records, by)
    assert report.total.cost_nanos == sum(r.cost_nanos for r in records)
    assert report.total.requests == len(records)
    assert report.total.input_tokens == sum(r.input_tokens for r in records)
    row_cost = sum(r.cost_nanos for r in report.rows)
    row_calls = sum(r.requests for r in report.rows)
    if by == "tag":
        assert row_cost >= report.total.cost_nanos and row_calls >= len(records)
    else:
        assert row_cost == report.total.cost_nanos and row_calls == len(records)
    assert len({r.group for r in report.rows}) == len(report.rows)
    # The JSON strings are the same exact amounts.
    doc = report.to_dict()
    assert Decimal(doc["total"]["cost_usd"]).scaleb(9) == report.total.cost_nanos


def test_json_document_schema() -> None:
    records = [rec(1, 123_456_789, user_id="alice"), rec(2, 1, user_id="bob")]
    since = datetime(2026, 11, 1, tzinfo=UTC)
    report = reports.build_report(records, "user", since=since, timezone="Europe/Paris")
    out = io.StringIO()
    reports.write_json(report, out)
    doc = json.loads(out.getvalue())
    assert set(doc) == {
        "schema",
        "by",
        "since",
        "until",
        "timezone",
        "currency",
        "generated_at",
        "rows_overlap",
        "rows",
        "total",
    }
    assert doc["schema"] == reports.JSON_SCHEMA and doc["currency"] == "USD"
    assert doc["since"] == "2026-11-01T00:00:00+00:00" and doc["until"] is None
    row_keys = {"group", "requests", *reports.TOKEN_FIELDS, "cost_usd", "cost_nanos"}
    for row in [*doc["rows"], doc["total"]]:
        assert set(row) == row_keys
        assert isinstance(row["cost_usd"], str) and isinstance(row["cost_nanos"], int)
        assert Decimal(row["cost_usd"]) == Decimal(row["cost_nanos"]).scaleb(-9)
    assert doc["rows"][0] == {
        "group": "alice",
        "requests": 1,
        "input_tokens": 10,
        "output_tokens": 5,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
        "cost_usd": "0.123456789",
        "cost_nanos": 123456789,
    }
    assert doc["total"]["cost_usd"] == "0.123456790"


def test_csv_quotes_awkward_group_names() -> None:
    report = reports.build_report([rec(1, 1, user_id='o"brien, the "boss"\nline')], "user")
    out = io.StringIO()
    reports.write_csv(report, out)
    lines = list(csv.reader(io.StringIO(out.getvalue())))
    assert lines[1][0] == 'o"brien, the "boss"\nline'


def test_xlsx_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "spend.xlsx"
    report = reports.build_report(
        [*TEN_THOUSAND[:5000], *(rec(i, 100_000, user_id="bob") for i in range(5000))], "user"
    )
    reports.write_xlsx(report, path)
    with zipfile.ZipFile(path) as zf:  # the structure every XLSX reader relies on
        names = set(zf.namelist())
        assert {"[Content_Types].xml", "xl/workbook.xml", "xl/worksheets/sheet1.xml"} <= names
        assert "Spend by user" in zf.read("xl/workbook.xml").decode()
    openpyxl = pytest.importorskip("openpyxl")
    wb = openpyxl.load_workbook(path)
    assert wb.sheetnames == ["Spend by user", "About"]
    rows = list(wb["Spend by user"].iter_rows(values_only=True))
    assert rows[0] == ("user", *reports.COLUMNS)
    body = {r[0]: r for r in rows[1:]}
    assert set(body) == {"alice", "bob", "TOTAL"}
    nanos_col = 1 + reports.COLUMNS.index("cost_nanos")
    usd_col = 1 + reports.COLUMNS.index("cost_usd")
    assert body["TOTAL"][nanos_col] == 1_000_000_000
    assert body["TOTAL"][usd_col] == pytest.approx(1.0, abs=0)
    assert body["alice"][nanos_col] == 500_000_000 and body["alice"][1] == 5000
    about = {r[0]: r[1] for r in wb["About"].iter_rows(values_only=True)}
    assert about["by"] == "user" and about["currency"] == "USD"


def test_xlsx_without_xlsxwriter_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "xlsxwriter", None)  # as if the extra were not installed
    path = tmp_path / "spend.xlsx"
    with pytest.raises(ConfigurationError, match=r"costwarden\[excel\]"):
        reports.write_xlsx(reports.build_report([rec()], "user"), path)
    assert not path.exists()


def test_record_to_dict_is_exact_and_local() -> None:
    d = reports.record_to_dict(rec(7, 1_234, tags=("t",), endpoint="/chat"), "Asia/Tokyo")
    assert d["cost_usd"] == "0.000001234" and d["cost_nanos"] == 1234
    assert d["timestamp"].startswith("2026-11-02T08:30:00") and d["timestamp"].endswith("+09:00")
    assert d["tags"] == ["t"] and d["endpoint"] == "/chat" and d["user"] == "alice"


def test_zero_amounts_are_written_as_plain_decimals_not_exponents() -> None:
    """An empty report (or a free record) says ``0.000000000``, never Decimal's ``0E-9``."""
    empty = reports.build_report([], "model")
    assert empty.to_dict()["total"]["cost_usd"] == "0.000000000"
    out = io.StringIO()
    reports.write_csv(empty, out)
    assert "0E-9" not in out.getvalue() and "0.000000000" in out.getvalue()
    assert reports.record_to_dict(rec(cost=0))["cost_usd"] == "0.000000000"
