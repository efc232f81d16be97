"""The weekly digest: select a period's tagged items grouped into stories, render HTML and plain text, send
exactly once (by SMTP, or into ``<data>/outbox/`` when no SMTP URL is set).

    preview(config, engine, period, path)  # write the HTML; nothing is recorded
    send(config, engine, period, force)    # once per period (table digests), see digest/ledger.py
    send_scheduled(config)                 # the daemon's weekly job: unsent earlier digests, then last week's
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections.abc import Sequence
from datetime import datetime, timedelta
from email.message import EmailMessage
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from digest.ledger import Deliver, Outcome, send_once, unsent_periods
from digest.period import Period, last_week
from digest.render import build_message, render_html
from digest.select import DigestData, select_digest
from digest.transport import RETRY_DELAYS, DeliveryError, parse_smtp_url, send_smtp, write_outbox
from store.queries import utcnow
from talentwatch.config import Config
from talentwatch.schema import ConfigError

logger = logging.getLogger(__name__)

__all__ = ["DeliveryError", "Outcome", "Period", "build", "preview", "send", "send_scheduled"]


def build(config: Config, session: Session, period: Period, now: datetime | None = None
          ) -> tuple[DigestData, EmailMessage]:
    """The period's digest data and its email (clusters the period's unclustered items: call in a transaction)."""
    data = select_digest(session, period, now or utcnow(), topic_order(config), _feed_urls(config))
    return data, build_message(data, config.get("digest", "sender"), config.get("digest", "to"))


def preview(config: Config, engine: Engine, period: Period, path: Path, now: datetime | None = None) -> DigestData:
    """Write the digest's HTML to ``path``; nothing is recorded as sent."""
    with Session(engine) as session, session.begin():
        data = select_digest(session, period, now or utcnow(), topic_order(config), _feed_urls(config))
    _write_atomically(path, render_html(data).encode("utf-8"))
    return data


def send(config: Config, engine: Engine, period: Period, force: bool = False, now: datetime | None = None,
         delays: Sequence[float] = RETRY_DELAYS) -> Outcome:
    """Send the period's digest once (``force``: build and send it again). Raises DeliveryError when it could not
    be delivered; the digest then stays recorded as pending and the next run sends it."""
    if config.get("smtp", "url") and not config.get("digest", "to"):
        raise ConfigError(config.path, "[digest] to", "no recipients: set to = [\"you@example.org\"] to send by SMTP")
    deliver = deliverer(config, delays)

    def built(session: Session) -> tuple[EmailMessage, int]:
        data, message = build(config, session, period, now)
        return message, data.stories

    outcome = send_once(engine, period, built, deliver, force, now)
    _log(outcome)
    return outcome


def send_scheduled(config: Config, now: datetime | None = None) -> list[Outcome]:
    """The daemon's weekly job: first the digests of earlier periods that were recorded but not sent, then the week
    that just ended. Failures are logged; the next run (or the hourly ``retry_unsent``) tries again."""
    return _send_periods(config, now or utcnow(), last_week_too=True)


def retry_unsent(config: Config, now: datetime | None = None) -> list[Outcome]:
    """The daemon's hourly job: send again the digests that were recorded but not sent (e.g. SMTP was down)."""
    return _send_periods(config, now or utcnow(), last_week_too=False)


def _send_periods(config: Config, now: datetime, last_week_too: bool) -> list[Outcome]:
    from store.db import open_database

    tz = config.get("digest", "timezone")
    engine = open_database(config.database_url)
    outcomes = []
    try:
        target = last_week(now, tz)
        periods = [_period_of_row(r.period, r.starts, r.ends, tz) for r in unsent_periods(engine)]
        if last_week_too:
            periods = [p for p in periods if p.label != target.label] + [target]
        for period in periods:
            try:
                outcomes.append(send(config, engine, period, now=now))
            except DeliveryError as e:
                logger.error("digest %s not sent: %s; the next run tries again", period.label, e)
    finally:
        engine.dispose()
    return outcomes


def deliverer(config: Config, delays: Sequence[float] = RETRY_DELAYS) -> Deliver:
    """SMTP when ``[smtp] url`` is set, else the outbox folder (files named after the period); configuration errors
    name the key."""
    url, sender = config.get("smtp", "url"), config.get("digest", "sender")
    if not url:
        outbox = config.home / "outbox"
        return lambda message, recipients, period, message_id: write_outbox(outbox, message, period, message_id)
    try:
        target = parse_smtp_url(url, config.smtp_password)
    except ValueError as e:
        raise ConfigError(config.path, "[smtp] url", str(e)) from None
    return lambda message, recipients, period, message_id: send_smtp(target, message, sender, recipients, delays)


def topic_order(config: Config) -> list[str]:
    from pipelines.tagging.rules import load_rules

    return [t.id for t in load_rules(config.topics_path).topics]


def _feed_urls(config: Config) -> list[str]:
    from crawler.sources import load_sources

    return [u for s in load_sources(config.sources_path) for u in s.feeds]


def _period_of_row(label: str, starts: datetime, ends: datetime, tz: str) -> Period:
    zone = ZoneInfo(tz)
    return Period(starts.astimezone(zone).date(), (ends.astimezone(zone) - timedelta(days=1)).date(), tz, label)


def _write_atomically(path: Path, data: bytes) -> None:
    path = path.expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _log(outcome: Outcome) -> None:
    if outcome.status == "sent":
        logger.info("digest %s sent: %d stories to %d recipients via %s, %s", outcome.period, outcome.stories,
                    len(outcome.recipients), outcome.delivered_to, outcome.message_id)
    else:
        logger.info("digest %s: %s, nothing sent", outcome.period, outcome.status)
