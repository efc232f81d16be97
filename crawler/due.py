"""When a feed is next due: its interval, stretched by what the server asked, backed off after failures."""

from __future__ import annotations

from datetime import datetime, timedelta

MAX_BACKOFF = 24 * 3600.0  # a failing feed is still tried once a day


def next_due(now: datetime, interval: float, failures: int = 0, server_delay: float | None = None) -> datetime:
    """``now`` + the larger of the interval and the server's delay; doubled per consecutive failure, capped."""
    delay = max(interval, server_delay or 0.0)
    if failures > 0:
        delay = min(delay * 2 ** min(failures, 16), max(MAX_BACKOFF, server_delay or 0.0))
    return now + timedelta(seconds=delay)
