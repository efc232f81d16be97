"""The talentwatch command line: every command of DESIGN.md section 2 that exists so far."""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from rich.console import Console
from rich.table import Table
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from store.db import DatabaseOutdated
from store.lock import AlreadyRunning
from talentwatch import __version__
from talentwatch.config import Config, load_config
from talentwatch.schema import ConfigError

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
console = Console()


class UsageError(Exception):
    """A bad command-line value (exit status 2)."""


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        config = load_config(args.config)
        return args.func(config, args) or EXIT_OK
    except (ConfigError, UsageError, DatabaseOutdated, AlreadyRunning) as e:
        print(f"talentwatch: {e}", file=sys.stderr)
        return EXIT_USAGE


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="talentwatch", description="Monitor news feeds for the China-US AI talent race.")
    p.add_argument("--config", metavar="PATH", help="talentwatch.toml (else $TALENTWATCH_CONFIG, ./talentwatch.toml)")
    p.add_argument("--version", action="version", version=f"talentwatch {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = sub.add_parser("run", help="the daemon, in the foreground: poll each feed when due, send the weekly digest")
    run.add_argument("--log-file", metavar="PATH", help="log here instead of to standard error")
    run.add_argument("--log-level", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))
    run.set_defaults(func=cmd_run)

    crawl = sub.add_parser("crawl", help="poll all (or the named) sources now, then exit")
    crawl.add_argument("--source", action="append", default=[], metavar="ID", help="only this source (repeatable)")
    crawl.set_defaults(func=cmd_crawl)

    items = sub.add_parser("items", help="list stored items")
    items.add_argument("--tag", metavar="T", help="only items tagged with this topic id")
    items.add_argument("--entity", metavar="E", help="only items mentioning this entity id")
    items.add_argument("--source", action="append", default=[], metavar="S", help="only this source (repeatable)")
    items.add_argument("--since", metavar="DATE", type=_datetime_arg, help="published on or after (ISO date or time)")
    items.add_argument("--until", metavar="DATE", type=_until_arg, help="published on or before (whole day, UTC)")
    items.add_argument("--tagged", action="store_true", help="only items with at least one topic")
    items.add_argument("--with-text", action="store_true", help="include the extracted article text (json, csv)")
    items.add_argument("--format", choices=("table", "json", "csv"), default="table")
    items.add_argument("--limit", type=int, default=None, metavar="N", help="at most N items (newest first)")
    items.set_defaults(func=cmd_items)

    status = sub.add_parser("status", help="per feed: last fetch, failures, next due, items this week, last error")
    status.add_argument("--format", choices=("table", "json"), default="table")
    status.set_defaults(func=cmd_status)

    db = sub.add_parser("db", help="database maintenance")
    db_sub = db.add_subparsers(dest="db_command", required=True, metavar="SUBCOMMAND")
    db_sub.add_parser("upgrade", help="migrate the database to the latest revision").set_defaults(func=cmd_db_upgrade)
    return p


# ---- argument types -------------------------------------------------------------------------------------------

def _datetime_arg(value: str) -> datetime:
    """ISO date (start of that day, UTC) or ISO date-time (UTC unless it has an offset)."""
    try:
        if len(value) == 10:
            return datetime.combine(date.fromisoformat(value), time(), UTC)
        dt = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO date such as 2026-11-02, got {value!r}") from None
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt.astimezone(UTC)


def _until_arg(value: str) -> datetime:
    """An inclusive whole day becomes the start of the next day (the bound is exclusive)."""
    dt = _datetime_arg(value)
    return dt + timedelta(days=1) if len(value) == 10 else dt + timedelta(microseconds=1)


def _iso(dt: datetime | None) -> str | None:
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z") if dt else None


# ---- shared set-up ----------------------------------------------------------------------------------------------

def _load_sources(config: Config, only: Sequence[str] = ()) -> list[Any]:
    from crawler.sources import load_sources

    sources = load_sources(config.sources_path, config.get("crawl", "interval"), config.get("crawl", "fulltext"))
    unknown = sorted(set(only) - {s.id for s in sources})
    if unknown:
        raise UsageError(f"--source: unknown source {', '.join(unknown)} (in {config.sources_path})")
    return [s for s in sources if not only or s.id in only]


def _open_synced(config: Config, sources: Sequence[Any]) -> Engine:
    """Open the database and mirror the configured sources, feeds, topics and entities into it."""
    from pipelines.tagging.rules import load_rules, load_tagger
    from store.db import open_database
    from store.queries import sync_config

    load_tagger(config.topics_path)  # validates every query before anything is written
    topics, entities = load_rules(config.topics_path)
    engine = open_database(config.database_url)
    with Session(engine) as session, session.begin():
        sync_config(session, sources, topics, entities)
    return engine


# ---- commands ---------------------------------------------------------------------------------------------------

def cmd_run(config: Config, args: argparse.Namespace) -> int:
    import scheduler
    from store.lock import DaemonLock

    sources = _load_sources(config)
    _open_synced(config, sources).dispose()
    lock = DaemonLock(config.database_url)
    lock.acquire()
    try:
        scheduler.configure_logging(args.log_level, args.log_file)
        return scheduler.run(config, sources)
    finally:
        lock.release()


def cmd_crawl(config: Config, args: argparse.Namespace) -> int:
    from crawler.runner import crawl_once
    from crawler.settings import crawl_settings
    from store.queries import feeds_to_poll, utcnow

    sources = _load_sources(config, args.source)
    engine = _open_synced(config, sources)
    with Session(engine) as session:
        feeds = feeds_to_poll(session, sources)
    started = utcnow()
    stats = crawl_once(crawl_settings(config), feeds)
    return _crawl_summary(engine, stats, len(feeds), started)


def _crawl_summary(engine: Engine, stats: dict[str, Any], polled: int, started: datetime) -> int:
    from store.queries import feed_status

    def n(key: str) -> int:
        return int(stats.get(f"talentwatch/{key}", 0))

    with Session(engine) as session:
        failed = [(f.url, f.last_error) for f, _ in feed_status(session, started)
                  if f.last_fetch and f.last_fetch >= started and f.last_error]
    unrecorded = polled - n("feeds_parsed") - n("feeds_not_modified") - n("feeds_failed")
    console.print(
        f"Polled {polled} feeds: {n('feeds_parsed')} parsed, {n('feeds_not_modified')} unchanged, "
        f"{n('feeds_failed')} failed. Items: {n('items_new')} new, {n('items_updated')} updated, "
        f"{n('items_tagged')} tagged.", highlight=False)
    for url, error in failed:
        console.print(f"  [yellow]failed[/] {url}: {error}", highlight=False)
    if n("store_errors") or unrecorded:
        console.print(f"[red]{n('store_errors') or unrecorded} feed results could not be stored[/]")
        return EXIT_FAILED
    return EXIT_OK


def item_record(item: Any, with_text: bool = False) -> dict[str, Any]:
    """The JSON object of one item (DESIGN.md, `items --format json`)."""
    record = {
        "id": item.id, "source": item.source_id, "url": item.url, "title": item.title, "summary": item.summary,
        "published": _iso(item.published), "fetched": _iso(item.fetched),
        "tags": sorted(t.topic_id for t in item.tags), "entities": sorted(e.entity_id for e in item.entities),
        "story": item.story_id, "evidence": {t.topic_id: t.evidence for t in item.tags},
        "via": item.via, "text_status": item.text_status,
    }
    if with_text:
        record["text"] = item.text
    return record


def cmd_items(config: Config, args: argparse.Namespace) -> int:
    from store.db import open_database
    from store.queries import ItemFilter, items_query

    engine = open_database(config.database_url)
    query = items_query(ItemFilter(args.tag, args.entity, args.source, args.since, args.until, args.tagged))
    if args.limit:
        query = query.limit(args.limit)
    with Session(engine) as session:
        records = (item_record(i, args.with_text) for i in session.scalars(query))
        if args.format == "json":
            for r in records:
                sys.stdout.write(json.dumps(r, ensure_ascii=False) + "\n")
        elif args.format == "csv":
            _write_csv(records, args.with_text)
        else:
            _items_table(list(records))
    return EXIT_OK


def _write_csv(records: Any, with_text: bool) -> None:
    fields = ["id", "source", "url", "title", "summary", "published", "fetched", "tags", "entities", "story",
              "evidence", "via", "text_status"] + (["text"] if with_text else [])
    writer = csv.DictWriter(sys.stdout, fieldnames=fields)
    writer.writeheader()
    for r in records:
        writer.writerow({**r, "tags": ";".join(r["tags"]), "entities": ";".join(r["entities"]),
                         "evidence": json.dumps(r["evidence"], ensure_ascii=False)})


def _items_table(records: list[dict[str, Any]]) -> None:
    table = Table("published", "source", "tags", "title", title=f"{len(records)} items")
    for r in records:
        table.add_row((r["published"] or r["fetched"] or "")[:10], r["source"], ", ".join(r["tags"]), r["title"])
    console.print(table)


def status_record(feed: Any, items_week: int) -> dict[str, Any]:
    """The JSON object of one feed (DESIGN.md, `status --format json`)."""
    return {
        "source": feed.source_id, "feed_url": feed.url, "last_fetch": _iso(feed.last_fetch),
        "last_success": _iso(feed.last_success), "last_status": feed.last_status, "failures": feed.failures,
        "next_due": _iso(feed.next_due), "last_error": feed.last_error, "items_week": items_week,
        "disabled": feed.disabled,
    }


def cmd_status(config: Config, args: argparse.Namespace) -> int:
    from store.queries import feed_status, utcnow

    engine = _open_synced(config, _load_sources(config))
    with Session(engine) as session:
        records = [status_record(f, n) for f, n in feed_status(session, utcnow())]
    if args.format == "json":
        for r in records:
            sys.stdout.write(json.dumps(r, ensure_ascii=False) + "\n")
        return EXIT_OK
    table = Table("source", "feed", "last fetch", "last success", "fail", "next due", "week", "last error")
    for r in records:
        table.add_row(r["source"], r["feed_url"], _short(r["last_fetch"]), _short(r["last_success"]),
                      str(r["failures"]), _short(r["next_due"]), str(r["items_week"]),
                      "disabled" if r["disabled"] else r["last_error"] or "")
    console.print(table)
    return EXIT_OK


def _short(iso: str | None) -> str:
    return iso[:16].replace("T", " ") if iso else "-"


def cmd_db_upgrade(config: Config, args: argparse.Namespace) -> int:
    from store.db import make_engine, upgrade

    engine = make_engine(config.database_url)
    before, after = upgrade(engine)
    console.print(f"database at revision {after}" + (f" (was {before or 'empty'})" if before != after else ""))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
