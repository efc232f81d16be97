"""Render a digest from its data: an HTML part (inline CSS only, no external resources, no scripts; everything from
feeds escaped by Jinja2's autoescape, links only to http(s) URLs) and a plain-text part with the same content, as
one multipart/alternative message."""

from __future__ import annotations

import re
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from zoneinfo import ZoneInfo

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from digest.select import DigestData

BAR_HEIGHT = 36  # px of the tallest bar in the chart
_TAGS = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


def _environment() -> Environment:
    env = Environment(loader=PackageLoader("digest", "templates"), undefined=StrictUndefined,
                      autoescape=select_autoescape(enabled_extensions=("html.j2",), default=False),
                      trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True)
    env.filters["plain"] = plain
    env.filters["counted"] = lambda pair: f"{plain(pair[0])} ({pair[1]})"
    return env


def plain(text: object) -> str:
    """Feed text for the plain-text part: anything tag-like removed, white space collapsed."""
    return _SPACE.sub(" ", _TAGS.sub("", str(text))).strip()


TEMPLATES = _environment()


def subject(data: DigestData) -> str:
    n = data.stories
    count = "no stories" if n == 0 else "1 story" if n == 1 else f"{n} stories"
    return f"talentwatch digest {data.period.label}: {count}"


def _context(data: DigestData) -> dict[str, object]:
    tz = ZoneInfo(data.period.tz)
    top = max([c for row in data.counts for c in row.counts] + [1])

    def day(dt: datetime | None) -> str:
        return dt.astimezone(tz).strftime("%a %d %b %Y") if dt else "never"

    def bar(count: int) -> int:
        return max(2, round(BAR_HEIGHT * count / top)) if count else 0

    return {"d": data, "subject": subject(data), "day": day, "bar": bar, "bar_height": BAR_HEIGHT,
            "columns": [p.short for p in [*data.history, data.period]],
            "span": f"{data.period.first:%d %b %Y} to {data.period.last:%d %b %Y} ({data.period.tz})"}


def render_html(data: DigestData) -> str:
    return TEMPLATES.get_template("digest.html.j2").render(_context(data))


def render_text(data: DigestData) -> str:
    return TEMPLATES.get_template("digest.txt.j2").render(_context(data))


def build_message(data: DigestData, sender: str, recipients: list[str]) -> EmailMessage:
    """The digest as an email: text and HTML alternatives, a fresh Message-ID."""
    msg = EmailMessage()
    msg["Subject"] = subject(data)
    msg["From"] = sender
    if recipients:
        msg["To"] = ", ".join(recipients)
    msg["Date"] = format_datetime(data.generated)
    msg["Message-ID"] = make_msgid("digest", domain=sender.rpartition("@")[2] or "talentwatch.invalid")
    msg["X-Talentwatch-Period"] = data.period.label
    msg.set_content(render_text(data))
    msg.add_alternative(render_html(data), subtype="html")
    return msg
