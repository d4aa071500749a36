"""Calendar windows at their edges: DST, month ends, leap days, ISO weeks, non-UTC zones."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from costwarden.budget import WindowCache, calendar_window, get_zone, rolling_window


def local(y: int, mo: int, d: int, h: int = 0, mi: int = 0, tz: str = "UTC") -> datetime:
    return datetime(y, mo, d, h, mi, tzinfo=ZoneInfo(tz))


def test_day_in_paris_across_spring_dst_has_23_hours() -> None:
    w = calendar_window(
        "daily", local(2026, 3, 29, 12, tz="Europe/Paris"), get_zone("Europe/Paris")
    )
    assert w.end - w.start == 23 * 3600
    assert w.start_dt == local(2026, 3, 29, tz="Europe/Paris").astimezone(UTC)


def test_day_in_new_york_across_autumn_dst_has_25_hours() -> None:
    w = calendar_window(
        "daily", local(2026, 11, 1, 12, tz="America/New_York"), get_zone("America/New_York")
    )
    assert w.end - w.start == 25 * 3600


def test_midnight_that_does_not_exist() -> None:
    # Santiago skips 00:00 -> 01:00 on 2026-09-06: the day starts at 01:00 local.
    zone = get_zone("America/Santiago")
    w = calendar_window("daily", local(2026, 9, 6, 12, tz="America/Santiago"), zone)
    assert w.start_dt.astimezone(zone).hour == 1
    assert w.end - w.start == 23 * 3600


def test_last_millisecond_and_first_instant_of_a_day() -> None:
    zone = get_zone("Asia/Kolkata")  # UTC+05:30
    before = datetime(2026, 11, 28, 23, 59, 59, 999000, tzinfo=zone)
    after = datetime(2026, 11, 29, 0, 0, tzinfo=zone)
    w1 = calendar_window("daily", before, zone)
    w2 = calendar_window("daily", after, zone)
    assert w1.end == w2.start
    assert w1.contains(before.timestamp()) and not w1.contains(after.timestamp())


@pytest.mark.parametrize(
    ("at", "days"),
    [
        (local(2028, 2, 29, 23, 59), 29),  # leap February
        (local(2027, 2, 28, 12), 28),
        (local(2026, 12, 31, 23, 59), 31),  # year end
        (local(2026, 4, 30), 30),
    ],
)
def test_month_lengths(at: datetime, days: int) -> None:
    w = calendar_window("monthly", at, get_zone("UTC"))
    assert w.end - w.start == days * 86400
    assert w.start_dt.day == 1


def test_leap_day_is_its_own_day() -> None:
    w = calendar_window("daily", local(2028, 2, 29, 6), get_zone("UTC"))
    assert w.start_dt == local(2028, 2, 29).astimezone(UTC)
    assert w.end_dt == local(2028, 3, 1).astimezone(UTC)


def test_iso_week_starts_monday_even_across_years() -> None:
    w = calendar_window("weekly", local(2027, 1, 1, 9), get_zone("UTC"))  # a Friday
    assert w.start_dt == local(2026, 12, 28).astimezone(UTC)  # Monday
    assert w.end - w.start == 7 * 86400


def test_rolling_window_is_minute_aligned() -> None:
    w = rolling_window("rolling:3600s", 1_000_030.0)
    assert w.end % 60 == 0 and w.end - w.start == 3600 and w.contains(1_000_030.0)


zones = st.sampled_from(
    [
        "UTC",
        "Europe/Paris",
        "America/New_York",
        "Asia/Kolkata",
        "Australia/Lord_Howe",
        "America/Santiago",
        "Pacific/Chatham",
        "Asia/Kathmandu",
    ]
)


@given(
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2040, 1, 1)),
    zones,
    st.sampled_from(["daily", "weekly", "monthly"]),
)
def test_windows_contain_their_instant_and_tile_time(naive: datetime, tz: str, period: str) -> None:
    at = naive.replace(tzinfo=UTC)
    zone = get_zone(tz)
    w = calendar_window(period, at, zone)
    assert w.contains(at.timestamp())
    nxt = calendar_window(period, w.end_dt, zone)
    assert nxt.start == w.end  # no gap, no overlap
    cache = WindowCache()
    assert cache.window(period, tz, at.timestamp()) == w
    assert cache.window(period, tz, at.timestamp() + 0.5) == calendar_window(
        period, at + timedelta(seconds=0.5), zone
    )
