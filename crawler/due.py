"""When a feed is next due: its interval, backed off after failures, and never before the server asked."""

from __future__ import annotations

from datetime import datetime, timedelta

MAX_BACKOFF = 24 * 3600.0  # a failing feed is still tried once a day
MAX_SERVER_DELAY = 7 * 24 * 3600.0  # a Retry-After, ttl or max-age further off than this is taken as this


def next_due(now: datetime, interval: float, failures: int = 0, server_delay: float | None = None) -> datetime:
    """``now`` + the larger of the interval (doubled per consecutive failure, capped at a day unless the interval
    is longer) and the server's delay (Retry-After, ttl, max-age; capped at a week)."""
    delay = interval
    if failures > 0:
        delay = max(interval, min(interval * 2 ** min(failures, 16), MAX_BACKOFF))
    return now + timedelta(seconds=max(delay, min(server_delay or 0.0, MAX_SERVER_DELAY)))
