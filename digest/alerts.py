"""Same-day alerts (``[[alert]]`` in talentwatch.toml): the stories that newly match an alert's topic or query, sent
in one message per check, each story at most once per alert.

A check (the daemon runs one per alert every ``every``):

1. Record, in one transaction: the stories with a matching report from the last day (``LOOKBACK``) that this alert
   has not recorded yet and that ``min_outlets`` outlets carry; one row per story in ``alert_stories`` (its primary
   key keeps a story to one message per alert, across restarts and several daemons) and the finished message, one
   row per channel (email, webhook), in ``alert_messages``.
2. Send every due row of the alert with the digest's ledger (digest/ledger.py): claim, deliver, mark sent. A
   failure puts the row back with a backoff time (doubling from the alert's window, at most an hour), so an
   unreachable SMTP server or webhook delays an alert and never loses it.

As with the digest, the one window for a duplicate is a crash after the server accepted a message and before its
row says so: after ``ledger.LEASE`` the message is sent again, with the same Message-ID.
"""

from __future__ import annotations

import json
import logging
import os
import urllib.error
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.policy import SMTP
from email.utils import format_datetime, make_msgid
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import Engine, and_, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from digest import deliverer, topic_order
from digest.ledger import LEASE, PENDING, SENDING, SENT, claim, crash_point, mark_sent, release
from digest.render import TEMPLATES, plain
from digest.select import Story, group_stories, story_of, topic_names, with_story_members
from digest.transport import DeliveryError
from pipelines.tagging import QueryError, RuleError, Tagger
from store import models as m
from store.queries import ItemFilter, items_query, utcnow
from store.search import matching
from store.stories import assign_stories, unassigned
from talentwatch.config import WEBHOOK_SECRET, Alert, Config
from talentwatch.schema import ConfigError

logger = logging.getLogger(__name__)

LOOKBACK = timedelta(days=1)  # a check looks at stories with a matching report this recent
BACKOFF_MAX = timedelta(hours=1)
BACKOFF_FIRST = timedelta(minutes=1)  # at most: an alert checked more often than this retries at its own pace
WEBHOOK_TIMEOUT = 30.0
SUBJECT_TITLE = 120  # characters of a story's title in a one-story subject


@dataclass
class Candidate:
    story: Story
    recorded: datetime | None  # when this alert recorded the story (None: never)

    def status(self, alert: Alert) -> str:
        if self.recorded is not None:
            return "recorded"
        return "new" if self.story.outlets >= alert.min_outlets else "below min_outlets"


def searches(config: Config) -> dict[str, Tagger | None]:
    """Check every alert against the topics (a topic that exists, a query that parses) and return each query
    alert's search; ConfigError names the file, the alert and the position of a mistake."""
    from pipelines.tagging.rules import load_rules

    rules = load_rules(config.topics_path)
    known = {t.id for t in rules.topics}
    found: dict[str, Tagger | None] = {}
    for alert in config.alerts:
        where = f"[[alert]] {alert.id}"
        if alert.topic is not None:
            if alert.topic not in known:
                raise ConfigError(config.path, f"{where} topic", f"unknown topic {alert.topic!r} (topics: "
                                  f"{', '.join(sorted(known))}, in {config.topics_path})")
            found[alert.id] = None
            continue
        try:
            found[alert.id] = rules.search(alert.query or "")
        except (QueryError, RuleError) as e:  # both carry the parser's message and position
            raise ConfigError(config.path, f"{where} query", f"{e.message} at position {e.position}") from None
    for alert in config.alerts:
        webhook_url(alert, config.path)  # every ${NAME} it needs is set
    return found


def candidates(session: Session, alert: Alert, search: Tagger | None, since: datetime, now: datetime,
               topic_order: Iterable[str] = ()) -> list[Candidate]:
    """The stories with a report matching the alert published (or, undated, first seen) since ``since``, each with
    when this alert recorded it; most outlets first, then the most recent. Clusters the range's items that have no
    story yet (so this writes: roll back to leave nothing behind)."""
    assign_stories(session, unassigned(session, since, now))
    if alert.topic is not None:
        found = list(session.scalars(items_query(ItemFilter(tag=alert.topic, since=since, until=now))))
    else:
        assert search is not None
        found = list(matching(session, items_query(ItemFilter(since=since, until=now)), search))
    if not found:
        return []
    order = [alert.topic] if alert.topic else []
    topics = topic_names(session, [*order, *topic_order])
    sources = dict(session.execute(select(m.Source.id, m.Source.name)).all())
    entities = {e.id: e for e in session.scalars(select(m.Entity))}
    groups = group_stories(with_story_members(session, found))
    stories = [story_of(items, topics, sources, entities) for items in groups.values()]
    recorded = dict(session.execute(select(m.AlertStory.story_id, m.AlertStory.recorded).where(
        m.AlertStory.alert == alert.id, m.AlertStory.story_id.in_([s.id for s in stories]))).all())
    stories.sort(key=lambda s: (-s.outlets, -s.latest.timestamp(), s.id))
    return [Candidate(s, recorded.get(s.id)) for s in stories]


def check(config: Config, engine: Engine, alert: Alert, search: Tagger | None, now: datetime | None = None) -> int:
    """One check of one alert: record the newly matching stories, then send what is due. Returns the number of
    stories recorded."""
    now = now or utcnow()
    recorded = record(config, engine, alert, search, now)
    crash_point("render")
    send_due(config, engine, alert, now)
    return recorded


def record(config: Config, engine: Engine, alert: Alert, search: Tagger | None, now: datetime) -> int:
    since = now - max(LOOKBACK, timedelta(seconds=2 * alert.every))
    try:
        with Session(engine) as session, session.begin():
            fresh = [c.story for c in candidates(session, alert, search, since, now, topic_order(config))
                     if c.status(alert) == "new"]
            if not fresh:
                return 0
            message = build_message(config, alert, fresh, now)
            batch = str(message["Message-ID"])
            session.add_all(m.AlertStory(alert=alert.id, story_id=s.id, batch=batch, recorded=now) for s in fresh)
            row = {"alert": alert.id, "status": PENDING, "message_id": batch, "subject": str(message["Subject"]),
                   "stories": len(fresh), "created": now, "attempts": 0}
            if alert.to:
                email = message.as_bytes(policy=SMTP)  # CRLF line ends, as sent
                session.add(m.AlertMessage(channel="email", recipients=list(alert.to), message=email, **row))
            if alert.webhook:
                session.add(m.AlertMessage(channel="webhook", recipients=[], message=webhook_body(alert, fresh), **row))
    except IntegrityError:  # another daemon recorded some of these stories first; the next check takes the rest
        logger.info("alert %s: another process recorded these stories first", alert.id)
        return 0
    logger.info("alert %s: %d new %s recorded", alert.id, len(fresh), "story" if len(fresh) == 1 else "stories")
    return len(fresh)


def send_due(config: Config, engine: Engine, alert: Alert, now: datetime) -> int:
    """Send the alert's unsent messages whose backoff has passed (and those claimed by a sender that died)."""
    due = or_(and_(m.AlertMessage.status == PENDING,
                   or_(m.AlertMessage.not_before.is_(None), m.AlertMessage.not_before <= now)),
              and_(m.AlertMessage.status == SENDING, m.AlertMessage.claimed < now - LEASE))
    with Session(engine) as session:
        rows = list(session.scalars(select(m.AlertMessage.id).where(m.AlertMessage.alert == alert.id, due)
                                    .order_by(m.AlertMessage.id)))
    sent = 0
    for row_id in rows:
        if not claim(engine, m.AlertMessage, row_id, now):
            continue  # another daemon has it
        crash_point("claim")
        with Session(engine) as session:
            row = session.get_one(m.AlertMessage, row_id)
            channel, body, recipients, attempts = row.channel, row.message, list(row.recipients), row.attempts
            message_id = row.message_id
        try:
            where = (_post(alert, body) if channel == "webhook"
                     else deliverer(config, delays=())(body, recipients, f"alert-{alert.id}-{row_id}", message_id))
        except (DeliveryError, OSError, ConfigError) as e:
            wait = min(BACKOFF_MAX, min(BACKOFF_FIRST, timedelta(seconds=alert.every)) * 2 ** (attempts - 1))
            release(engine, m.AlertMessage, row_id, str(e), not_before=now + wait)
            logger.error("alert %s: %s not sent (attempt %d): %s; next attempt in %.0f s", alert.id, channel,
                         attempts, e, wait.total_seconds())
            continue
        crash_point("send")
        mark_sent(engine, m.AlertMessage, row_id, where)
        logger.info("alert %s: %s sent via %s", alert.id, channel, where)
        sent += 1
    return sent


def webhook_url(alert: Alert, path: Path | None = None) -> str | None:
    """The webhook's URL with its ``${NAME}`` parts from the environment; ConfigError names a missing one."""
    if alert.webhook is None:
        return None

    def secret(match: object) -> str:
        name = match.group(1)  # type: ignore[attr-defined]
        if not os.environ.get(name):
            raise ConfigError(path, f"[[alert]] {alert.id} webhook", f"${{{name}}} is not set in the environment")
        return os.environ[name]

    return WEBHOOK_SECRET.sub(secret, alert.webhook)


def _post(alert: Alert, body: bytes) -> str:
    """POST the JSON body; any answer but 2xx is a failure. Shown (in logs, in the ledger) with its secret parts
    as written in the configuration, ``${NAME}``, never their values."""
    url, shown = webhook_url(alert), alert.webhook
    request = urllib.request.Request(url or "", data=body, method="POST",
                                     headers={"Content-Type": "application/json", "User-Agent": "talentwatch"})
    try:
        with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT) as response:
            response.read(65536)
    except urllib.error.HTTPError as e:
        raise DeliveryError(f"{shown}: HTTP {e.code}", temporary=e.code >= 500 or e.code == 429) from None
    except (urllib.error.URLError, TimeoutError, ConnectionError) as e:
        reason = getattr(e, "reason", e)
        raise DeliveryError(f"{shown}: {reason}", temporary=True) from None
    return str(shown)


# ---- the message ------------------------------------------------------------------------------------------------

def subject(alert: Alert, stories: list[Story]) -> str:
    if len(stories) == 1:
        title = plain(stories[0].title)
        if len(title) > SUBJECT_TITLE:
            title = title[:SUBJECT_TITLE].rsplit(" ", 1)[0] + "\u2026"
        return f"talentwatch alert {alert.id}: {title}"
    return f"talentwatch alert {alert.id}: {len(stories)} new stories"


def _context(config: Config, alert: Alert, stories: list[Story], now: datetime) -> dict[str, object]:
    tz = ZoneInfo(config.get("digest", "timezone"))

    def day(dt: datetime | None) -> str:
        return dt.astimezone(tz).strftime("%a %d %b %Y %H:%M") if dt else "never"

    return {"alert": alert, "stories": stories, "subject": subject(alert, stories), "day": day, "generated": now}


def build_message(config: Config, alert: Alert, stories: list[Story], now: datetime) -> EmailMessage:
    """The alert as an email in the digest's look: text and HTML alternatives, a fresh Message-ID."""
    sender = config.get("digest", "sender")
    context = _context(config, alert, stories, now)
    msg = EmailMessage()
    msg["Subject"] = str(context["subject"])
    msg["From"] = sender
    if alert.to:
        msg["To"] = ", ".join(alert.to)
    msg["Date"] = format_datetime(now)
    msg["Message-ID"] = make_msgid("alert", domain=sender.rpartition("@")[2] or "talentwatch.invalid")
    msg["X-Talentwatch-Alert"] = alert.id
    msg.set_content(TEMPLATES.get_template("alert.txt.j2").render(context))
    msg.add_alternative(TEMPLATES.get_template("alert.html.j2").render(context), subtype="html")
    return msg


def webhook_body(alert: Alert, stories: list[Story]) -> bytes:
    """Slack-compatible JSON: ``text`` (mrkdwn, links as <url|title>), plus the stories as data."""
    def esc(text: str) -> str:
        return plain(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")

    lines = [f"*{esc(subject(alert, stories))}*"]
    for s in stories:
        title = f"<{s.url}|{esc(s.title)}>" if s.url else esc(s.title)
        outlets = f" ({s.outlets} outlets: {esc(', '.join([s.source, *s.also]))})" if s.also else f" ({esc(s.source)})"
        lines.append(f"\u2022 {title}{outlets}")
    data = {"text": "\n".join(lines), "alert": alert.id,
            "stories": [{"id": s.id, "title": s.title, "url": s.url, "outlets": [s.source, *s.also],
                         "topics": s.topics, "published": s.published.isoformat() if s.published else None}
                        for s in stories]}
    return json.dumps(data, ensure_ascii=False).encode()


# ---- status -----------------------------------------------------------------------------------------------------

@dataclass
class AlertStatus:
    id: str
    last_sent: datetime | None
    stories: int  # recorded for sending, all time
    pending: int  # messages not sent yet
    last_error: str | None


def statuses(session: Session, ids: Iterable[str] | None = None) -> list[AlertStatus]:
    """Each alert's last send, stories recorded, messages waiting and the latest error (``ids``: these alerts, in
    this order; None: every alert that ever recorded a story)."""
    if ids is None:
        ids = session.scalars(select(m.AlertStory.alert).distinct().order_by(m.AlertStory.alert))
    ids = list(ids)
    sent = dict(session.execute(select(m.AlertMessage.alert, func.max(m.AlertMessage.sent))
                                .where(m.AlertMessage.alert.in_(ids)).group_by(m.AlertMessage.alert)).all())
    stories = dict(session.execute(select(m.AlertStory.alert, func.count()).where(m.AlertStory.alert.in_(ids))
                                   .group_by(m.AlertStory.alert)).all())
    waiting = list(session.scalars(select(m.AlertMessage).where(m.AlertMessage.alert.in_(ids),
                                                                 m.AlertMessage.status != SENT)
                                   .order_by(m.AlertMessage.id)))
    pending = {a: sum(1 for r in waiting if r.alert == a) for a in ids}
    errors = {r.alert: r.last_error for r in waiting if r.last_error}
    return [AlertStatus(a, sent.get(a), stories.get(a, 0), pending[a], errors.get(a)) for a in ids]
