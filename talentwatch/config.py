"""Load, merge and validate talentwatch.toml: the one place where every option, its default and its check live.

Lookup: ``--config PATH``, else ``$TALENTWATCH_CONFIG``, else ``./talentwatch.toml``; with none, the defaults run.
Environment variables override the file: TALENTWATCH_DATABASE_URL, TALENTWATCH_SMTP_URL, TALENTWATCH_SMTP_PASSWORD;
TALENTWATCH_WEB_PASSWORD protects `talentwatch serve` (read by web/app.py, never stored). ``[[alert]]`` tables
become :class:`Alert` values; a webhook's ``${NAME}`` parts are read from the environment only when it is called.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import platformdirs

from talentwatch import PROJECT_URL, __version__
from talentwatch.schema import ConfigError, check_keys, parse_duration, read_toml

DEFAULTS_DIR = Path(str(resources.files("talentwatch") / "defaults"))
ENV_OVERRIDES = {
    "TALENTWATCH_DATABASE_URL": ("database", "url"),
    "TALENTWATCH_SMTP_URL": ("smtp", "url"),
}


def _str(v: Any) -> str:
    if not isinstance(v, str) or not v:
        raise ValueError(f"expected a non-empty string, got {v!r}")
    return v


def _bool(v: Any) -> bool:
    if not isinstance(v, bool):
        raise ValueError(f"expected true or false, got {v!r}")
    return v


def _positive_int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or v < 1:
        raise ValueError(f"expected a positive integer, got {v!r}")
    return v


def _port(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= 65535:
        raise ValueError(f"expected a TCP port (1-65535), got {v!r}")
    return v


def _str_list(v: Any) -> list[str]:
    if not isinstance(v, list) or not all(isinstance(x, str) and x for x in v):
        raise ValueError(f"expected a list of strings, got {v!r}")
    return v


def _timezone(v: Any) -> str:
    try:
        ZoneInfo(_str(v))
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {v!r}") from None
    return v


WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_weekly(v: Any) -> tuple[int, int, int]:
    """'mon 07:00' -> (weekday 0-6, hour, minute)."""
    m = re.fullmatch(r"\s*([a-z]{3})[a-z]*\s+(\d{1,2}):(\d{2})\s*", _str(v).lower())
    if not m or m.group(1) not in WEEKDAYS or int(m.group(2)) > 23 or int(m.group(3)) > 59:
        raise ValueError(f"expected a weekday and a time such as 'mon 07:00', got {v!r}")
    return WEEKDAYS.index(m.group(1)), int(m.group(2)), int(m.group(3))


# (table, key) -> (default, check). A default of None means "not set".
OPTIONS: dict[tuple[str, str], tuple[Any, Callable[[Any], Any]]] = {
    ("database", "url"): (None, _str),
    ("crawl", "sources"): (None, _str),
    ("crawl", "topics"): (None, _str),
    ("crawl", "interval"): ("30m", parse_duration),
    ("crawl", "fulltext"): (False, _bool),
    ("crawl", "concurrency"): (16, _positive_int),
    ("crawl", "timeout"): ("30s", parse_duration),
    ("crawl", "user_agent"): (f"talentwatch/{__version__} (+{PROJECT_URL})", _str),
    ("digest", "schedule"): ("mon 07:00", parse_weekly),
    ("digest", "timezone"): ("UTC", _timezone),
    ("digest", "to"): ([], _str_list),
    ("digest", "sender"): ("talentwatch@localhost", _str),
    ("smtp", "url"): (None, _str),
    ("archive", "wayback_url"): ("https://web.archive.org", _str),
    ("archive", "google_news_url"): ("https://news.google.com", _str),
    ("archive", "gdelt_url"): ("https://api.gdeltproject.org", _str),
    ("archive", "delay"): ("1s", parse_duration),  # per-host delay between archive requests (GDELT: 5s at least)
    ("archive", "terms"): (None, _str_list),  # search terms for gnews/gdelt; default: derived from the topics
    ("web", "host"): ("127.0.0.1", _str),  # `talentwatch serve`; not loopback: only with TALENTWATCH_WEB_PASSWORD
    ("web", "port"): (8750, _port),
    ("daemon", "worker_id"): (None, _str),  # default: host:pid
    ("daemon", "lease"): ("2m", parse_duration),  # PostgreSQL: how long a daemon holds the feeds it took
    ("daemon", "batch"): (50, _positive_int),  # PostgreSQL: due feeds a daemon takes at a time
}


ALERT_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
WEBHOOK_SECRET = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")  # ${NAME}: from the environment at call time


@dataclass(frozen=True)
class Alert:
    """One ``[[alert]]`` table: stories matching ``topic`` (a topic id) or ``query`` (the topics' language)."""

    id: str
    topic: str | None
    query: str | None
    to: list[str]
    min_outlets: int = 1
    every: float = 900.0  # seconds: the batching window
    webhook: str | None = field(default=None, repr=False)  # may hold ${NAME} parts, filled from the environment

    @property
    def watches(self) -> str:
        return f"topic {self.topic}" if self.topic else f"query {self.query}"


ALERT_KEYS = {"id", "topic", "query", "to", "min_outlets", "every", "webhook"}


def parse_alerts(path: Path | None, raw: Any, default_to: list[str]) -> list[Alert]:
    """The ``[[alert]]`` array of tables; ConfigError names the file, the alert and the key."""
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise ConfigError(path, "[[alert]]", "expected an array of tables: [[alert]]")
    alerts: list[Alert] = []
    for n, table in enumerate(raw, start=1):
        where = f"[[alert]] {table.get('id', f'#{n}')!s}"
        check_keys(path, f"{where} ", table, ALERT_KEYS)

        def get(key: str, default: Any, check: Callable[[Any], Any], where: str = where, table: dict = table) -> Any:
            return _checked(path, where, key, table.get(key, default), check)

        alert_id = get("id", "", _str)
        if not ALERT_ID.match(alert_id) or alert_id in {a.id for a in alerts}:
            raise ConfigError(path, f"{where} id", f"expected a unique id of a-z, 0-9 and '-', got {alert_id!r}")
        topic, query = get("topic", None, _str), get("query", None, _str)
        if (topic is None) == (query is None):
            raise ConfigError(path, where, "set one of topic (a topic id) or query (the topics' query language)")
        webhook = get("webhook", None, _webhook)
        to = get("to", default_to, _str_list_or_empty)
        if not to and webhook is None:
            raise ConfigError(path, f"{where} to", "no recipients: set to = [\"you@example.org\"] (or [digest] to), "
                              "or a webhook")
        alerts.append(Alert(alert_id, topic, query, to, get("min_outlets", 1, _positive_int),
                            get("every", "15m", parse_duration), webhook))
    return alerts


def _str_list_or_empty(v: Any) -> list[str]:
    return [] if v == [] else _str_list(v)


def _webhook(v: Any) -> str:
    if not re.match(r"^https?://[^/\s]+", _str(v)):
        raise ValueError(f"expected an http(s) URL, got {WEBHOOK_SECRET.sub('${…}', v)!r}")
    return v


@dataclass(frozen=True)
class Config:
    """The validated configuration. ``values`` holds every OPTIONS key as its check returned it
    (durations in seconds, the schedule as (weekday, hour, minute))."""

    path: Path | None
    home: Path
    values: dict[tuple[str, str], Any] = field(repr=False)
    smtp_password: str | None = field(default=None, repr=False)
    alerts: list[Alert] = field(default_factory=list)

    def get(self, table: str, key: str) -> Any:
        return self.values[(table, key)]

    @property
    def worker_id(self) -> str:
        return self.get("daemon", "worker_id") or f"{socket.gethostname()}:{os.getpid()}"

    @property
    def database_url(self) -> str:
        return self.get("database", "url") or f"sqlite:///{self.home / 'talentwatch.db'}"

    @property
    def sources_path(self) -> Path:
        return self._relative(self.get("crawl", "sources"), "sources.toml")

    @property
    def topics_path(self) -> Path:
        return self._relative(self.get("crawl", "topics"), "topics.toml")

    def _relative(self, value: str | None, default_name: str) -> Path:
        if value is None:
            return DEFAULTS_DIR / default_name
        p = Path(value).expanduser()
        return p if p.is_absolute() or self.path is None else self.path.parent / p


def find_config_file(explicit: str | None) -> Path | None:
    """--config, else $TALENTWATCH_CONFIG, else ./talentwatch.toml if it exists."""
    chosen = explicit or os.environ.get("TALENTWATCH_CONFIG")
    if chosen:
        path = Path(chosen).expanduser()
        if not path.is_file():
            raise ConfigError(path, "", "config file not found")
        return path
    local = Path("talentwatch.toml")
    return local if local.is_file() else None


def data_home() -> Path:
    return Path(os.environ.get("TALENTWATCH_HOME") or platformdirs.user_data_dir("talentwatch")).expanduser()


def load_config(explicit: str | None = None) -> Config:
    """Find, read and validate the configuration; ConfigError names the file and key."""
    path = find_config_file(explicit)
    raw = read_toml(path) if path else {}
    tables = {t for t, _ in OPTIONS}
    check_keys(path, "", raw, tables | {"alert"})
    values: dict[tuple[str, str], Any] = {}
    for table in tables:
        section = raw.get(table, {})
        if not isinstance(section, dict):
            raise ConfigError(path, f"[{table}]", "expected a table")
        check_keys(path, f"[{table}] ", section, {k for t, k in OPTIONS if t == table})
    for (table, key), (default, check) in OPTIONS.items():
        values[(table, key)] = _checked(path, table, key, raw.get(table, {}).get(key, default), check)
    for env, (table, key) in ENV_OVERRIDES.items():
        if os.environ.get(env):
            values[(table, key)] = _checked(f"${env}", table, key, os.environ[env], OPTIONS[(table, key)][1])
    alerts = parse_alerts(path, raw.get("alert", []), values[("digest", "to")])
    return Config(path, data_home(), values, os.environ.get("TALENTWATCH_SMTP_PASSWORD") or None, alerts)


def _checked(where: Path | str | None, table: str, key: str, value: Any, check: Callable[[Any], Any]) -> Any:
    """``table`` is a table's name, or how an array's table is named in messages (``[[alert]] travel``)."""
    if value is None:
        return None
    try:
        return check(value)
    except ValueError as e:
        name = table if table.startswith("[[") else f"[{table}]"
        raise ConfigError(where, f"{name} {key}", str(e)) from None
