"""Exports and bills end to end: the ledgers' streaming reads (records, and plain rows) and bill
lines on every backend, the CSV and XLSX files read back (csv, openpyxl) against the ledger's
own totals to the nano, the fast CSV writing the same bytes in bounded memory, and provider
bills imported and compared through the real CLI."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
import sqlite3
import tracemalloc
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner, Result

from costwarden import reports
from costwarden.cli.app import app
from costwarden.cli.base import parse_when
from costwarden.errors import InvalidInputError
from costwarden.ledger import BillingLedger, BillLine, NewRecord, StreamingLedger, open_ledger
from costwarden.ledger.record_rows import ROW_FIELDS, stream_rows, tags_decoder
from tests import pg

T0 = int(datetime(2026, 10, 31, 22, 0, tzinfo=UTC).timestamp()) * 1_000_000
HOUR = 3_600_000_000
MODELS = ("gpt-4o-2024-08-06", "gpt-4o-mini", "claude-3-5-haiku-20241022", "a-model-" + "x" * 60)


def new(i: int, ts_us: int | None = None) -> NewRecord:
    return NewRecord(
        ts_us=T0 + (i // 3) * HOUR if ts_us is None else ts_us,  # three records share a stamp
        model=MODELS[i % len(MODELS)],
        provider="anthropic" if "claude" in MODELS[i % len(MODELS)] else "openai",
        input_tokens=100 + i,
        output_tokens=10 + i % 7,
        cache_read_tokens=i % 5,
        cache_write_tokens=0,
        reasoning_tokens=i % 3,
        cost_nanos=123_456_789 + i * 1_001,
        user_id=None if i % 4 == 0 else f"user{i % 3}",
        team=f"team{i % 2}",
        key=None,
        endpoint="/v1/chat" if i % 2 else None,
        request_id=f"req-{i}",
        tags=("prod", "a&b <x>") if i % 3 == 0 else (),
        latency_ms=12.5 if i % 2 else None,
        status="ok",
        estimated=bool(i % 5 == 0),
        price_source="caller",
    )


@pytest.fixture(params=["memory", "sqlite", "postgres"])
def any_ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Any]:
    if request.param == "memory":
        ledger = open_ledger("memory://")
        yield ledger
        ledger.close()
    elif request.param == "sqlite":
        ledger = open_ledger(f"sqlite:///{tmp_path}/l.db")
        yield ledger
        ledger.close()
    else:
        url = pg.require_postgres()
        schema = pg.new_schema_name()
        ledger = open_ledger(pg.with_schema(url, schema))
        try:
            yield ledger
        finally:
            ledger.close()
            pg.drop_schema(url, schema)


def test_iter_records_streams_in_batches_in_records_order(any_ledger: Any) -> None:
    for i in range(23):
        any_ledger.append(new(i), [])
    assert isinstance(any_ledger, StreamingLedger)
    everything = any_ledger.records()
    # Batches of 2 split the groups of three records sharing one ts_us: none is lost or doubled.
    assert list(any_ledger.iter_records(batch=2)) == everything
    since, until = T0 + HOUR, T0 + 5 * HOUR
    assert list(any_ledger.iter_records(since, until, batch=4)) == any_ledger.records(since, until)
    assert list(any_ledger.iter_records(until, since)) == []
    with pytest.raises(InvalidInputError, match="batch"):
        list(any_ledger.iter_records(batch=0))


def test_record_rows_are_the_records_as_plain_rows(any_ledger: Any) -> None:
    for i in range(23):
        any_ledger.append(new(i), [])
    everything = any_ledger.records()
    batches = stream_rows(any_ledger, batch=4)
    if batches is None:  # the memory ledger: its records are objects already
        assert type(any_ledger).__name__ == "MemoryLedger"
        return
    got = list(batches)
    assert [len(b) for b in got] == [4] * 5 + [3]
    decode = tags_decoder()
    rows = [r for b in got for r in b]
    assert len(rows) == len(everything)
    for row, rec in zip(rows, everything, strict=True):
        values = dict(zip(ROW_FIELDS, row, strict=True))
        assert decode(values.pop("tags")) == rec.tags
        assert bool(values.pop("estimated")) == rec.estimated
        assert values == {f: getattr(rec, f) for f in values}
    since, until = T0 + HOUR, T0 + 5 * HOUR
    part = [r[0] for b in stream_rows(any_ledger, since, until, batch=2) or [] for r in b]
    assert part == [r.id for r in any_ledger.records(since, until)]
    with pytest.raises(InvalidInputError, match="batch"):
        list(stream_rows(any_ledger, batch=0) or [])


def test_the_tags_decoder_answers_rightly_past_its_bound() -> None:
    # Its memo is a BoundedCache: more distinct tag sets than it keeps must still decode.
    from costwarden.ledger import record_rows

    decode = tags_decoder()
    assert decode(None) == () and decode("") == ()
    for i in range(record_rows._CACHE + 10):
        assert decode(json.dumps([f"t{i}", "x"])) == (f"t{i}", "x")
    assert decode('["t0", "x"]') == ("t0", "x") and decode(None) == ()


def test_bill_amounts_are_rounded_by_the_money_rule(tmp_path: Path) -> None:
    # Half-even to the nano-USD, as everywhere; an amount beyond what costwarden can account
    # for is refused with a typed error rather than stored.
    from costwarden.billing import read_import
    from costwarden.pricing import default_catalog

    head = "start_time,end_time,amount_value,amount_currency,line_item,project_id\n"
    row = f'{DAY0},{DAY0 + 86400},{{}},usd,"gpt-4o-mini-2024-07-18, output",proj\n'
    for amount, nanos in (("0.1000000005", 100_000_000), ("0.1000000015", 100_000_002)):
        (tmp_path / "costs.csv").write_text(head + row.format(amount))
        got = read_import(tmp_path / "costs.csv", catalog=default_catalog())
        assert got.lines[0].cost_nanos == nanos
    (tmp_path / "costs.csv").write_text(head + row.format("1e40"))
    with pytest.raises(InvalidInputError, match="too large"):
        read_import(tmp_path / "costs.csv", catalog=default_catalog())


def test_the_fast_csv_writes_what_the_records_writer_writes(any_ledger: Any) -> None:
    for i in range(40):
        any_ledger.append(new(i), [])
    odd = dataclasses.replace(new(40), user_id='a "quoted", user', request_id="line\nbreak")
    any_ledger.append(odd, [])
    where = reports.RecordFilter(user="user1")
    for zone, since, until, match in (
        ("UTC", None, None, None),
        ("Asia/Kolkata", None, None, reports.RecordFilter()),
        ("Europe/Paris", T0 + HOUR, T0 + 9 * HOUR, None),
        ("America/St_Johns", None, None, where),
    ):
        fast, plain = io.StringIO(), io.StringIO()
        counted: list[int] = []
        n = reports.write_ledger_csv(
            any_ledger,
            fast,
            since_us=since,
            until_us=until,
            where=match,
            timezone=zone,
            progress=counted.append,
        )
        records = any_ledger.records(since, until)
        if match is not None:
            records = list(match.apply(records))
        assert reports.write_records_csv(records, plain, timezone=zone) == n == len(records)
        assert fast.getvalue() == plain.getvalue(), zone
        assert sum(counted) == n
        if since is None and match is None:  # quoting: the same csv module writes both
            assert '"a ""quoted"", user"' in fast.getvalue() and '"line\nbreak"' in fast.getvalue()


def test_the_fast_csv_runs_in_bounded_memory(tmp_path: Path) -> None:
    """Peak Python memory while exporting 60,000 records is about that of 15,000: one batch
    of rows at a time, whatever the ledger's size."""
    peaks = []
    for n in (15_000, 60_000):
        url = f"sqlite:///{tmp_path}/m{n}.db"
        open_ledger(url).close()
        conn = sqlite3.connect(url.removeprefix("sqlite:///"))
        with conn:
            conn.executemany(
                "INSERT INTO records (ts_us, model, input_tokens, output_tokens, cost_nanos, "
                "user_id, tags, status, estimated, price_source) "
                "VALUES (?, 'gpt-4o', 10, 5, ?, ?, ?, 'ok', 0, 'caller')",
                ((T0 + i * 1_000, 1_000 + i, f"user{i % 7}", '["prod"]') for i in range(n)),
            )
        conn.close()
        ledger = open_ledger(url)
        try:
            sink = _Counting()
            tracemalloc.start()
            try:
                assert reports.write_ledger_csv(ledger, sink) == n
                peaks.append(tracemalloc.get_traced_memory()[1])
            finally:
                tracemalloc.stop()
        finally:
            ledger.close()
        assert sink.lines == n + 1
    assert peaks[1] < peaks[0] * 1.5, peaks


class _Counting(io.TextIOBase):
    """A text sink that keeps nothing but the number of lines written to it."""

    def __init__(self) -> None:
        self.lines = 0

    def write(self, text: str) -> int:
        self.lines += text.count("\n")
        return len(text)


def line(
    day: int, cost: int, model: str | None = "gpt-4o-2024-08-06", item: str = "in"
) -> BillLine:
    start = T0 + 2 * HOUR + day * 24 * HOUR  # midnight UTC of 1 November + day
    return BillLine("openai", start, start + 24 * HOUR, model, item, cost, source="test")


def test_bill_lines_replace_on_reimport_and_filter_by_window(any_ledger: Any) -> None:
    assert isinstance(any_ledger, BillingLedger)
    assert any_ledger.put_bill_lines([line(0, 5), line(0, 7, item="out"), line(1, 9, None)]) == 3
    assert any_ledger.put_bill_lines([line(0, 6)]) == 1  # the same key: replaced, not added
    got = any_ledger.bill_lines()
    assert [(x.model, x.item, x.cost_nanos) for x in got] == [
        ("gpt-4o-2024-08-06", "in", 6),
        ("gpt-4o-2024-08-06", "out", 7),
        (None, "in", 9),
    ]
    assert [x.cost_nanos for x in any_ledger.bill_lines(line(1, 0).start_us)] == [9]
    assert any_ledger.bill_lines(provider="anthropic") == []
    assert got[2] == line(1, 9, None)  # every field round-trips


def test_bad_bill_lines_are_refused_before_the_ledger() -> None:
    with pytest.raises(InvalidInputError, match="end after"):
        BillLine("openai", 10, 10, None, "", 1)
    with pytest.raises(InvalidInputError, match="int64"):
        BillLine("openai", 0, 10, None, "", 2**63)
    with pytest.raises(InvalidInputError, match="provider"):
        BillLine("", 0, 10, None, "", 1)


# -- the Cube gives build_report's rows -----------------------------------------------------------
stamps = st.integers(1_700_000_000, 1_800_000_000)


@settings(max_examples=60, deadline=None)
@given(
    seeds=st.lists(st.tuples(st.integers(0, 50), stamps), max_size=40),
    zone=st.sampled_from(["UTC", "Asia/Kolkata", "America/Santiago", "Pacific/Apia"]),
)
def test_cube_rolls_up_to_what_build_report_gives(seeds: list[tuple[int, int]], zone: str) -> None:
    recs = [new(i, s * 1_000_000).stored(n + 1) for n, (i, s) in enumerate(seeds)]
    cube = reports.Cube(timezone=zone).feed(recs)
    for by in reports.GROUP_BY:
        direct = reports.build_report(recs, by, timezone=zone)
        rolled = cube.report(by)
        assert rolled.rows == direct.rows and rolled.total == direct.total, by


def test_week_and_month_labels() -> None:
    rec = new(0, int(datetime(2026, 1, 1, 12, tzinfo=UTC).timestamp()) * 1_000_000).stored(1)
    assert reports.build_report([rec], "week").rows[0].group == "2026-W01"
    assert reports.build_report([rec], "month").rows[0].group == "2026-01"
    late = new(0, int(datetime(2026, 12, 31, 23, tzinfo=UTC).timestamp()) * 1_000_000).stored(2)
    # 08:00 on 1 January 2027 in Tokyo: a Friday of ISO week 53 of 2026, but January's month.
    assert reports.build_report([late], "week", timezone="Asia/Tokyo").rows[0].group == "2026-W53"
    assert reports.build_report([late], "month", timezone="Asia/Tokyo").rows[0].group == "2027-01"


def test_local_clock_matches_isoformat_across_dst() -> None:
    from zoneinfo import ZoneInfo

    clock = reports.LocalClock("Europe/Paris")
    start = int(datetime(2026, 10, 24, tzinfo=UTC).timestamp())
    for s in range(start, start + 3 * 86_400, 1_337):
        us = s * 1_000_000 + 250
        assert (
            clock.iso(us) == datetime.fromtimestamp(us / 1e6, ZoneInfo("Europe/Paris")).isoformat()
        )


# -- files read back through the real CLI ---------------------------------------------------------
def cli(*args: str) -> Result:
    return CliRunner().invoke(app, list(args))


@pytest.fixture(params=["sqlite", "postgres"])
def filled(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("COSTWARDEN_CONFIG", raising=False)
    monkeypatch.setenv("COLUMNS", "200")
    if request.param == "sqlite":
        url, cleanup = f"sqlite:///{tmp_path}/spend.db", None
    else:
        base = pg.require_postgres()
        schema = pg.new_schema_name()
        url, cleanup = pg.with_schema(base, schema), (base, schema)
    ledger = open_ledger(url)
    for i in range(300):
        ledger.append(new(i), [])
    ledger.close()
    monkeypatch.setenv("COSTWARDEN_LEDGER", url)
    yield url
    if cleanup:
        pg.drop_schema(*cleanup)


def ledger_total(url: str, **match: Any) -> tuple[int, int]:
    ledger = open_ledger(url)
    try:
        rows = [r for r in ledger.records() if all(getattr(r, k) == v for k, v in match.items())]
    finally:
        ledger.close()
    return len(rows), sum(r.cost_nanos for r in rows)


def test_records_csv_reads_back_to_the_ledgers_total(filled: str, tmp_path: Path) -> None:
    n, nanos = ledger_total(filled)
    out = tmp_path / "records.csv"
    result = cli("records", "--format", "csv", "-o", str(out), "--tz", "Asia/Kolkata")
    assert result.exit_code == 0, result.output
    with out.open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == n and sum(int(r["cost_nanos"]) for r in rows) == nanos
    assert sum(int(r["cost_usd"].replace(".", "")) for r in rows) == nanos  # exact text too
    assert rows[0]["timestamp"].endswith("+05:30") and rows[0]["tags"] == "prod|a&b <x>"
    stdout = cli("records", "--format", "csv", "--user", "user1")
    only = list(csv.DictReader(io.StringIO(stdout.stdout)))
    assert (len(only), sum(int(r["cost_nanos"]) for r in only)) == ledger_total(
        filled, user_id="user1"
    )


def test_xlsx_workbook_reads_back_to_the_ledgers_total(filled: str, tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    n, nanos = ledger_total(filled)
    out = tmp_path / "spend.xlsx"
    result = cli("report", "--by", "user", "--format", "xlsx", "-o", str(out), "--tz", "Asia/Tokyo")
    assert result.exit_code == 0, result.output
    book = openpyxl.load_workbook(out)
    assert book.sheetnames == [
        "Summary",
        *(f"By {g}" for g in ("user", "day", "week", "month", "model", "team", "key", "tag")),
        "By endpoint",
        "By provider",
        "Records",
    ]
    records = list(book["Records"].iter_rows(values_only=True))
    assert records[0] == reports.RECORD_COLUMNS and len(records) == n + 1
    nanos_col = reports.RECORD_COLUMNS.index("cost_nanos")
    assert sum(r[nanos_col] for r in records[1:]) == nanos
    first = book["Records"]
    assert first.freeze_panes == "A2" and first.auto_filter.ref == f"A1:U{n + 1}"
    assert isinstance(records[1][1], datetime) and first["B2"].number_format.startswith("yyyy")
    assert first["P2"].number_format == "$#,##0.000000" and records[1][8] == "prod|a&b <x>"
    for name in ("By user", "By day", "By model", "By tag"):
        sheet = book[name]
        rows = list(sheet.iter_rows(values_only=True))
        total = next(r for r in rows if r[0] == "TOTAL")
        assert total[9] == nanos and total[1] == n, name
        assert sheet.freeze_panes == "B2" and sheet.auto_filter.ref
        if name != "By tag":
            body = [r for r in rows[1:] if r[0] not in (None, "TOTAL") and isinstance(r[9], int)]
            assert sum(r[9] for r in body) == nanos, name
    assert isinstance(book["By day"]["A2"].value, datetime)
    facts = {r[0]: r[1] for r in book["Summary"].iter_rows(values_only=True) if r[0]}
    assert facts["Total cost (nano-USD, exact)"] == nanos and facts["Time zone"] == "Asia/Tokyo"
    with zipfile.ZipFile(out) as zf:  # two native charts on the summary sheet, with cached data
        charts = [zf.read(x).decode() for x in zf.namelist() if x.startswith("xl/charts/chart")]
    assert len(charts) == 2 and any("barChart" in c for c in charts)
    assert any("pieChart" in c and "<c:numCache>" in c for c in charts)


def test_report_filters_and_time_zone_through_the_cli(filled: str) -> None:
    doc = json.loads(cli("report", "--by", "team", "--model", "gpt-4o-mini", "--json").stdout)
    n, nanos = ledger_total(filled, model="gpt-4o-mini")
    assert doc["total"]["cost_nanos"] == nanos and doc["total"]["requests"] == n
    utc = json.loads(cli("report", "--by", "day", "--json").stdout)
    tokyo = json.loads(cli("report", "--by", "day", "--tz", "Asia/Tokyo", "--json").stdout)
    assert utc["rows"][0]["group"] == "2026-10-31" and tokyo["rows"][0]["group"] == "2026-11-01"
    assert cli("report", "--tz", "Mars/Base").exit_code == 2


def test_since_until_words() -> None:
    now = datetime(2026, 3, 15, 10, tzinfo=UTC)
    assert parse_when("this-month", "UTC", option="--since", now=now) == datetime(
        2026, 3, 1, tzinfo=UTC
    )
    assert parse_when("this-month", "UTC", option="--until", end=True, now=now) == datetime(
        2026, 4, 1, tzinfo=UTC
    )
    jan = datetime(2026, 1, 20, tzinfo=UTC)
    assert parse_when("last-month", "UTC", option="--since", now=jan) == datetime(
        2025, 12, 1, tzinfo=UTC
    )
    assert parse_when("last-month", "UTC", option="--until", end=True, now=jan) == datetime(
        2026, 1, 1, tzinfo=UTC
    )
    assert parse_when("7d", "UTC", option="--since", now=now) == now - timedelta(days=7)


def test_tables_never_cut_model_names_or_numbers(
    filled: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "60")
    out = cli("report", "--by", "model").stdout
    assert "…" not in out
    # The first column's pieces, read down the body rows, spell every model name whole.
    first = "".join(line.split("│")[1].strip() for line in out.splitlines() if line.startswith("│"))
    assert all(m in first for m in MODELS)
    assert "74,850" in out  # numbers stay whole (the input token total)
    monkeypatch.delenv("COLUMNS")
    wide = cli("report", "--by", "model").stdout  # not a terminal: as wide as it needs
    assert MODELS[3] in wide and "\x1b[" not in wide


# -- bills ----------------------------------------------------------------------------------------
DAY0 = T0 // 1_000_000 + 7200  # 2026-11-01T00:00Z


def openai_costs_page() -> dict[str, Any]:
    return {
        "object": "page",
        "data": [
            {
                "object": "bucket",
                "start_time": DAY0,
                "end_time": DAY0 + 86_400,
                "results": [
                    {
                        "object": "organization.costs.result",
                        "amount": {"value": 12.3456789012, "currency": "usd"},
                        "line_item": "gpt-4o-2024-08-06, input",
                        "project_id": "proj_1",
                    },
                    {
                        "object": "organization.costs.result",
                        "amount": {"value": 0.06, "currency": "usd"},
                        "line_item": "Image models",
                        "project_id": None,
                    },
                ],
            }
        ],
        "has_more": False,
        "next_page": None,
    }


def anthropic_cost_report() -> dict[str, Any]:
    return {
        "data": [
            {
                "starting_at": "2026-11-01T00:00:00Z",
                "ending_at": "2026-11-02T00:00:00Z",
                "results": [
                    {
                        "amount": "123.45",
                        "currency": "USD",
                        "model": "claude-3-5-haiku-20241022",
                        "description": "Claude Haiku 3.5 Usage - Input Tokens",
                        "cost_type": "tokens",
                        "token_type": "uncached_input_tokens",
                        "workspace_id": "wrkspc_1",
                        "service_tier": "standard",
                        "context_window": "0-200k",
                    }
                ],
            }
        ],
        "has_more": False,
        "next_page": None,
    }


def test_import_bills_and_compare_tracked_vs_billed(filled: str, tmp_path: Path) -> None:
    (tmp_path / "openai.json").write_text(json.dumps(openai_costs_page()))
    (tmp_path / "anthropic.json").write_text(json.dumps(anthropic_cost_report()))
    result = cli("import", "openai.json", "anthropic.json")
    assert result.exit_code == 0, result.output
    assert "(openai-costs): 2 bill lines, $12.405678901 billed" in result.output
    assert "(anthropic-cost): 1 bill lines, $1.234500000 billed" in result.output
    assert cli("import", "openai.json").exit_code == 0  # again: replaced, not doubled
    ledger = open_ledger(filled)
    try:
        assert isinstance(ledger, BillingLedger) and len(ledger.bill_lines()) == 3
        day1 = [
            r
            for r in ledger.records()
            if r.ts_us >= DAY0 * 1_000_000 and r.ts_us < (DAY0 + 86_400) * 1_000_000
        ]
    finally:
        ledger.close()
    doc = json.loads(
        cli(
            "report",
            "--vs-billed",
            "--since",
            "2026-11-01",
            "--until",
            "2026-11-01",
            "--tz",
            "UTC",
            "--json",
        ).stdout
    )
    rows = {(r["day"], r["model"]): r for r in doc["rows"]}
    gpt = rows[("2026-11-01", "gpt-4o")]
    tracked = sum(r.cost_nanos for r in day1 if r.model.startswith("gpt-4o-2024"))
    assert gpt["billed_nanos"] == 12_345_678_901 and gpt["tracked_nanos"] == tracked
    assert gpt["difference_nanos"] == 12_345_678_901 - tracked
    assert rows[("2026-11-01", "(no model)")]["billed_nanos"] == 60_000_000
    assert rows[("2026-11-01", "claude-3-5-haiku")]["billed_nanos"] == 1_234_500_000
    assert doc["total"]["billed_nanos"] == 12_345_678_901 + 60_000_000 + 1_234_500_000
    assert doc["total"]["tracked_nanos"] == sum(r.cost_nanos for r in day1)
    table = cli(
        "report", "--vs-billed", "--since", "2026-11-01", "--until", "2026-11-01", "--tz", "UTC"
    )
    assert table.exit_code == 0 and "Tracked vs billed" in table.stdout and "$12.35" in table.stdout


def test_a_bad_bill_changes_nothing(filled: str, tmp_path: Path) -> None:
    page = openai_costs_page()
    page["data"][0]["results"][1]["amount"]["currency"] = "eur"
    (tmp_path / "eur.json").write_text(json.dumps(page))
    (tmp_path / "good.json").write_text(json.dumps(anthropic_cost_report()))
    result = cli("import", "good.json", "eur.json")
    assert result.exit_code == 1 and "only USD" in result.output
    ledger = open_ledger(filled)
    try:
        assert ledger.bill_lines() == []  # the good file was not stored either
    finally:
        ledger.close()
    assert cli("report", "--vs-billed").exit_code == 1  # no bill: says what to do
    assert cli("import", "good.json", "--format", "nope").exit_code == 2


def test_costs_csv_and_usage_pages(tmp_path: Path) -> None:
    from costwarden.billing import read_import
    from costwarden.pricing import default_catalog

    (tmp_path / "costs.csv").write_text(
        "start_time,end_time,amount_value,amount_currency,line_item,project_id\n"
        f'{DAY0},{DAY0 + 86400},0.100000001,usd,"gpt-4o-mini-2024-07-18, output",proj\n'
    )
    got = read_import(tmp_path / "costs.csv", catalog=default_catalog())
    assert got.format == "openai-costs-csv"
    assert [(x.model, x.cost_nanos, x.account) for x in got.lines] == [
        ("gpt-4o-mini-2024-07-18", 100_000_001, "proj")
    ]
    usage = {
        "object": "page",
        "data": [
            {
                "start_time": DAY0,
                "end_time": DAY0 + 86_400,
                "results": [
                    {
                        "object": "organization.usage.completions.result",
                        "input_tokens": 1_000_000,
                        "input_cached_tokens": 0,
                        "output_tokens": 1_000_000,
                        "num_model_requests": 3,
                        "model": "gpt-4o",
                    }
                ],
            }
        ],
    }
    (tmp_path / "usage.json").write_text(json.dumps(usage))
    got = read_import(tmp_path / "usage.json", catalog=default_catalog())
    assert got.format == "openai-usage" and got.lines[0].cost_nanos == 12_500_000_000  # 2.5 + 10


def test_usage_export_imports_back(filled: str, tmp_path: Path) -> None:
    export = tmp_path / "records.csv"
    assert cli("records", "--format", "csv", "-o", str(export)).exit_code == 0
    other = f"sqlite:///{tmp_path}/other.db"
    open_ledger(other).close()
    result = cli("--ledger", other, "import", str(export))
    assert result.exit_code == 0 and "(usage-csv): 300 usage records" in result.output
    assert ledger_total(other) == ledger_total(filled)
