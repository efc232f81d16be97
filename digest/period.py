"""The period a digest covers: an ISO week or a range of whole days, in the digest's time zone."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

_WEEK = re.compile(r"(\d{4})-W(\d{2})")


@dataclass(frozen=True)
class Period:
    """Whole days ``first`` to ``last`` (inclusive) in ``tz``; ``label`` is how it is recorded and shown."""

    first: date
    last: date
    tz: str
    label: str

    @property
    def start(self) -> datetime:
        """The first moment, in UTC."""
        return datetime.combine(self.first, time(), ZoneInfo(self.tz)).astimezone(UTC)

    @property
    def end(self) -> datetime:
        """The moment after the last day (exclusive), in UTC."""
        return datetime.combine(self.last + timedelta(days=1), time(), ZoneInfo(self.tz)).astimezone(UTC)

    @property
    def days(self) -> int:
        return (self.last - self.first).days + 1

    def before(self, n: int) -> list[Period]:
        """The ``n`` periods of the same length just before this one, oldest first."""
        out = []
        for k in range(n, 0, -1):
            first = self.first - timedelta(days=k * self.days)
            out.append(period_of(first, first + timedelta(days=self.days - 1), self.tz))
        return out

    @property
    def short(self) -> str:
        """A short column label: W48 for a week, else the first day (11-02)."""
        return self.label[5:] if _WEEK.fullmatch(self.label) else self.first.strftime("%m-%d")


def parse_week(value: str) -> tuple[int, int]:
    """'2026-W48' -> (2026, 48); ValueError naming the value otherwise."""
    m = _WEEK.fullmatch(value.strip())
    if not m:
        raise ValueError(f"expected an ISO week such as 2026-W48, got {value!r}")
    year, week = int(m.group(1)), int(m.group(2))
    try:
        date.fromisocalendar(year, week, 1)
    except ValueError:
        raise ValueError(f"{year} has no week {week}") from None
    return year, week


def week(year: int, number: int, tz: str) -> Period:
    monday = date.fromisocalendar(year, number, 1)
    return Period(monday, monday + timedelta(days=6), tz, f"{year}-W{number:02d}")


def period_of(first: date, last: date, tz: str) -> Period:
    """Days first..last; an exact ISO week (Monday to Sunday) is labelled as that week."""
    if last < first:
        raise ValueError(f"the period ends ({last}) before it starts ({first})")
    if first.isoweekday() == 1 and last - first == timedelta(days=6):
        year, number, _ = first.isocalendar()
        return week(year, number, tz)
    return Period(first, last, tz, f"{first.isoformat()}..{last.isoformat()}")


def last_week(now: datetime, tz: str) -> Period:
    """The ISO week that ended most recently before ``now`` (in ``tz``)."""
    today = now.astimezone(ZoneInfo(tz)).date()
    year, number, _ = (today - timedelta(days=7)).isocalendar()
    return week(year, number, tz)
