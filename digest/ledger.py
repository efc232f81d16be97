"""The record of digests (table ``digests``) that makes sending exactly once per period; alerts (digest/alerts.py)
keep their messages the same way (table ``alert_messages``), with the same states and functions.

1. Record: the digest is built and stored, message and Message-ID included, with status ``pending``, in the
   transaction that clusters the period's items. A period that already has a row is not built again (unless
   forced): a retry sends the stored bytes, with the same Message-ID.
2. Claim: one atomic UPDATE moves the row from ``pending`` to ``sending``, so two senders (the daemon and a
   `talentwatch digest --send`) never both send it.
3. Deliver, then mark ``sent`` with the time and where it went. A failure puts the row back to ``pending`` with
   the error, so the next run sends it.

A crash before step 3's delivery leaves ``pending`` or ``sending``: the next run sends the stored message, once.
The one window left is a crash after the server accepted the message and before the row says so: the row stays
``sending``; after ``LEASE`` the next run sends the same message again, with the same Message-ID, so that a mail
client shows one message. We chose at-least-once for that window (milliseconds long) over at-most-once: a
weekly digest that silently never arrives is worse than a rare duplicate with the same Message-ID.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import getaddresses

from sqlalchemy import Engine, and_, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digest.period import Period
from store import models as m
from store.queries import utcnow

logger = logging.getLogger(__name__)

LEASE = timedelta(minutes=10)  # a claim older than this is taken over (its sender died); longer than any send
CRASH_ENV = "TALENTWATCH_TEST_CRASH_AFTER"  # tests: render | claim | send makes the process exit right there
PENDING, SENDING, SENT = "pending", "sending", "sent"

Build = Callable[[Session], tuple[EmailMessage, int]]  # the message and its number of stories
Deliver = Callable[[bytes, list[str], str, str], str]  # (message, recipients, period, message id) -> where


@dataclass(frozen=True)
class Outcome:
    period: str
    status: str  # sent | already sent | in progress
    stories: int
    subject: str
    message_id: str
    recipients: list[str]
    delivered_to: str | None
    sent: datetime | None
    claimed: datetime | None = None


def send_once(engine: Engine, period: Period, build: Build, deliver: Deliver, force: bool = False,
              now: datetime | None = None) -> Outcome:
    """Send the period's digest unless it was sent already (``force`` builds and sends it again)."""
    now = now or utcnow()
    row = _record(engine, period, build, now, force)
    if row.status == SENT:
        return _outcome(row, "already sent")
    crash_point("render")
    if not claim(engine, m.Digest, row.id, now):
        return _outcome(load(engine, m.Digest, row.id), "in progress")
    crash_point("claim")
    try:
        where = deliver(row.message, list(row.recipients), row.period, row.message_id)
    except BaseException as e:
        release(engine, m.Digest, row.id, f"{type(e).__name__}: {e}")
        raise
    crash_point("send")
    return _outcome(mark_sent(engine, m.Digest, row.id, where), "sent")


def unsent_periods(engine: Engine) -> list[m.Digest]:
    """Recorded digests not sent yet, oldest first (the scheduled job retries them)."""
    with Session(engine, expire_on_commit=False) as session:
        return list(session.scalars(select(m.Digest).where(m.Digest.status != SENT).order_by(m.Digest.starts)))


def _record(engine: Engine, period: Period, build: Build, now: datetime, force: bool) -> m.Digest:
    try:
        with Session(engine, expire_on_commit=False) as session, session.begin():
            row = session.scalar(select(m.Digest).where(m.Digest.period == period.label))
            if row is not None and not force:
                return row
            message, stories = build(session)
            if row is None:
                row = m.Digest(period=period.label, created=now, attempts=0)
                session.add(row)
            row.starts, row.ends, row.stories = period.start, period.end, stories
            row.status, row.claimed, row.sent, row.delivered_to, row.last_error = PENDING, None, None, None, None
            row.message_id, row.subject = str(message["Message-ID"]), str(message["Subject"])
            row.recipients = [address for _, address in getaddresses([str(message.get("To", ""))]) if address]
            row.message = message.as_bytes(policy=SMTP)  # CRLF line ends, as sent
            return row
    except IntegrityError:  # another sender recorded the period first: use its message
        with Session(engine, expire_on_commit=False) as session:
            return session.scalars(select(m.Digest).where(m.Digest.period == period.label)).one()


Row = type[m.Digest] | type[m.AlertMessage]


def claim(engine: Engine, model: Row, row_id: int, now: datetime) -> bool:
    """Take the row for sending: pending, or sending under a claim so old that its sender must have died."""
    takeable = or_(model.status == PENDING, and_(model.status == SENDING, model.claimed < now - LEASE))
    with Session(engine) as session, session.begin():
        result = session.execute(update(model).where(model.id == row_id, takeable)
                                 .values(status=SENDING, claimed=now, attempts=model.attempts + 1))
        return result.rowcount == 1


def release(engine: Engine, model: Row, row_id: int, error: str, **values: object) -> None:
    """Back to pending after a failed delivery, with the error (and ``values``, e.g. a backoff time)."""
    with Session(engine) as session, session.begin():
        session.execute(update(model).where(model.id == row_id, model.status == SENDING)
                        .values(status=PENDING, claimed=None, last_error=error[:2000], **values))


def mark_sent(engine: Engine, model: Row, row_id: int, where: str) -> m.Digest | m.AlertMessage:
    with Session(engine, expire_on_commit=False) as session, session.begin():
        row = session.get_one(model, row_id)
        row.status, row.sent, row.delivered_to, row.last_error = SENT, utcnow(), where, None
        return row


def load(engine: Engine, model: Row, row_id: int) -> m.Digest | m.AlertMessage:
    with Session(engine, expire_on_commit=False) as session:
        return session.get_one(model, row_id)


def _outcome(row: m.Digest, status: str) -> Outcome:
    return Outcome(row.period, status, row.stories, row.subject, row.message_id, list(row.recipients),
                   row.delivered_to, row.sent, row.claimed)


def crash_point(name: str) -> None:
    if os.environ.get(CRASH_ENV) == name:
        logging.shutdown()
        os._exit(70)
