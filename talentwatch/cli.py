"""The talentwatch command line: every command of DESIGN.md section 2 that exists so far."""

from __future__ import annotations

import argparse
import contextlib
import csv
import itertools
import json
import os
import sys
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError
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
    except OperationalError as e:  # the database is unreachable, locked or refuses writes: one line, no traceback
        print(f"talentwatch: database error: {str(e.orig or e).strip().splitlines()[0]}", file=sys.stderr)
        return EXIT_FAILED


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

    recrawl = sub.add_parser("recrawl", help="re-process stored items of a date range; backfill it from archives")
    recrawl.add_argument("--from", dest="start", required=True, metavar="DATE", type=_datetime_arg,
                         help="first day (ISO date or time, UTC)")
    recrawl.add_argument("--to", dest="end", required=True, metavar="DATE", type=_until_arg,
                         help="last day, inclusive (a future end is cut to now)")
    recrawl.add_argument("--source", action="append", default=[], metavar="ID", help="only this source (repeatable)")
    archives = recrawl.add_mutually_exclusive_group()
    archives.add_argument("--archive", action="append", default=[], metavar="NAME",
                          help="wayback, sitemap, gdelt or gnews (repeatable; default: all that apply)")
    archives.add_argument("--no-archive", action="store_true", help="only re-process what is stored")
    recrawl.add_argument("--format", choices=("table", "json"), default="table", help="the summary's format")
    recrawl.set_defaults(func=cmd_recrawl)

    items = sub.add_parser("items", help="list stored items")
    items.add_argument("--query", metavar="Q", help="only items matching Q, in the topics' query language")
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

    digest = sub.add_parser("digest", help="build the digest of a week: --preview FILE writes the HTML, --send mails "
                            "it (or writes the outbox) once per period")
    digest.add_argument("--week", metavar="YYYY-Www", type=_week_arg, help="an ISO week (default: the last full week)")
    digest.add_argument("--from", dest="date_from", metavar="DATE", type=_date_arg, help="first day (with --to)")
    digest.add_argument("--to", dest="date_to", metavar="DATE", type=_date_arg, help="last day, inclusive")
    digest_action = digest.add_mutually_exclusive_group(required=True)
    digest_action.add_argument("--preview", metavar="FILE", help="write the digest's HTML to FILE; nothing is sent")
    digest_action.add_argument("--send", action="store_true", help="send it, unless this period's was sent already")
    digest.add_argument("--force", action="store_true", help="with --send: build and send it again")
    digest.set_defaults(func=cmd_digest)

    rules = sub.add_parser("rules", help="check the topic rules")
    rules_sub = rules.add_subparsers(dest="rules_command", required=True, metavar="SUBCOMMAND")
    test = rules_sub.add_parser("test", help="precision, recall and F1 per topic against labelled items")
    test.add_argument("file", metavar="FILE.jsonl", help='JSON Lines: {"title", "summary", "labels": [topic ids]}')
    test.add_argument("--topic", action="append", default=[], metavar="T", help="only this topic (repeatable)")
    test.add_argument("--split", metavar="NAME", help="only items whose split is NAME (e.g. tune, holdout)")
    test.add_argument("--by-event", action="store_true",
                      help="also per topic: event recall (events with an item tagged) and the events missed")
    test.add_argument("--format", choices=("table", "json"), default="table")
    test.add_argument("--min-precision", type=float, metavar="P", help="exit 1 if a topic's precision is below P")
    test.add_argument("--min-recall", type=float, metavar="R", help="exit 1 if a topic's recall is below R")
    test.set_defaults(func=cmd_rules_test)

    serve = sub.add_parser("serve", help="the web workbench and its JSON API (default http://127.0.0.1:8750)")
    serve.add_argument("--host", metavar="H", help="address to listen on (default: [web] host, 127.0.0.1)")
    serve.add_argument("--port", type=int, metavar="P", help="port (default: [web] port, 8750)")
    serve.set_defaults(func=cmd_serve)

    sources = sub.add_parser("sources", help="the configured sources; OPML in and out; a feed found from a page")
    sources_sub = sources.add_subparsers(dest="sources_command", required=True, metavar="SUBCOMMAND")
    listing = sources_sub.add_parser("list", help="the configured sources and their feeds")
    listing.add_argument("--format", choices=("table", "json"), default="table")
    listing.set_defaults(func=cmd_sources_list)
    opml_in = sources_sub.add_parser("import", help="an OPML file's feeds as new sources: their TOML on standard "
                                     "output, or --write")
    opml_in.add_argument("file", metavar="FILE.opml", help="OPML 1.0 or 2.0, as feed readers export it")
    opml_in.add_argument("--write", action="store_true", help="append them to the configured sources.toml")
    opml_in.set_defaults(func=cmd_sources_import)
    sources_sub.add_parser("export", help="OPML 2.0 of every configured feed, on standard output").set_defaults(
        func=cmd_sources_export)
    add = sources_sub.add_parser("add", help="a source from a feed's URL, or from a page that leads to its feed")
    add.add_argument("url", metavar="URL", help="a feed, or a page of the site")
    add.add_argument("--id", metavar="ID", help="the source's id (default: from the feed's title)")
    add.add_argument("--write", action="store_true", help="append it to the configured sources.toml")
    add.set_defaults(func=cmd_sources_add)

    alerts = sub.add_parser("alerts", help="same-day alerts ([[alert]] in talentwatch.toml)")
    alerts_sub = alerts.add_subparsers(dest="alerts_command", required=True, metavar="ACTION")
    alert_test = alerts_sub.add_parser("test", help="what the alerts would have sent, without sending")
    alert_test.add_argument("--id", metavar="ID", help="only this alert")
    alert_test.add_argument("--since", metavar="DURATION", type=_duration_arg, default=86400.0,
                            help="look back this far (default 24h)")
    alert_test.set_defaults(func=cmd_alerts_test)

    judgements = sub.add_parser("judgements", help="the analyst's verdicts from the web view")
    judgements_sub = judgements.add_subparsers(dest="judgements_command", required=True, metavar="SUBCOMMAND")
    judgements_sub.add_parser("export", help="write them as JSON Lines in rules test's format").set_defaults(
        func=cmd_judgements_export)

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


def _duration_arg(value: str) -> float:
    from talentwatch.schema import parse_duration

    try:
        return parse_duration(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


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
    from pipelines.tagging.rules import load_rules
    from store.db import open_database
    from store.queries import sync_config

    rules = load_rules(config.topics_path)
    rules.tagger()  # validates every query (and the learned model) before anything is written
    engine = open_database(config.database_url)
    with Session(engine) as session, session.begin():
        sync_config(session, sources, rules.topics, rules.entities)
    return engine


# ---- commands ---------------------------------------------------------------------------------------------------

def cmd_run(config: Config, args: argparse.Namespace) -> int:
    import scheduler
    from digest.alerts import searches
    from store.lock import DaemonLock

    sources = _load_sources(config)
    alert_searches = searches(config)  # a bad alert stops the daemon before it starts
    _open_synced(config, sources).dispose()
    lock = DaemonLock(config.database_url)  # SQLite: one daemon; PostgreSQL: any number, sharing the feeds
    lock.acquire()
    try:
        scheduler.configure_logging(args.log_level, args.log_file)
        return scheduler.run(config, sources, alert_searches)
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
    stats = crawl_once(crawl_settings(config), feeds, [s for s in sources if s.fulltext])
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
    if texts := _text_counts(stats):
        console.print(f"Texts: {texts}.", highlight=False)
    if n("store_errors") or unrecorded:
        console.print(f"[red]{n('store_errors') or unrecorded} feed results could not be stored[/]")
        return EXIT_FAILED
    return EXIT_OK


def _text_counts(stats: dict[str, Any]) -> str:
    """"3 ok, 1 paywalled" from the articles spider's ``talentwatch/text/<status>`` counters ("" when none)."""
    statuses = ("ok", "paywalled", "blocked", "failed", "skipped")
    counts = {s: int(stats.get(f"talentwatch/text/{s}", 0)) for s in statuses}
    return ", ".join(f"{n} {s}" for s, n in counts.items() if n)


def cmd_recrawl(config: Config, args: argparse.Namespace) -> int:
    """Re-process the stored items of a range with the current rules, then backfill the range from archives."""
    from crawler.archives import NAMES, make_providers
    from pipelines.tagging.rules import load_tagger
    from store.queries import utcnow
    from store.recrawl import items_in_range, recluster, reprocess

    window = _recrawl_window(args.start, args.end, utcnow())
    unknown = sorted(set(args.archive) - set(NAMES))
    if unknown:
        raise UsageError(f"--archive: unknown archive {', '.join(unknown)} (known: {', '.join(NAMES)})")
    sources = _load_sources(config, args.source)
    engine = _open_synced(config, sources)
    providers = [] if args.no_archive else make_providers(args.archive or NAMES, _archive_options(config))
    for p in providers:
        if args.archive and (skipped := [s.id for s in sources if not p.applies(s)]):
            print(f"talentwatch: --archive {p.name} does not apply to {', '.join(skipped)}", file=sys.stderr)
    rows: dict[tuple[str, str], Any] = {}
    stats: dict[str, Any] = {}
    texts: dict[str, Any] = {}
    with _RecrawlProgress() as progress:
        with Session(engine) as session:
            ids = items_in_range(session, [s.id for s in sources], window.start, window.end)
        progress.phase("stored")
        progress.plan(len(ids))
        try:
            rows.update({(sid, "stored"): c for sid, c in reprocess(engine, load_tagger(config.topics_path), ids,
                                                                     progress.done).items()})
        except KeyboardInterrupt:
            return _recrawl_report(args.format, window, rows, interrupted=True)
        if providers or any(s.fulltext for s in sources):
            with _archives_turn(engine) if providers else contextlib.nullcontext():
                stats, texts = _recrawl_crawls(config, sources, window, providers, progress)
            rows.update(_archive_rows(stats))
    interrupted = any(s.get("finish_reason") not in (None, "finished") for s in (stats, texts))
    if text_counts := _text_counts(texts):
        print(f"talentwatch: texts of the range's items: {text_counts}", file=sys.stderr)
    if not interrupted:
        recluster(engine, [s.id for s in sources], window.start, window.end)
    code = _recrawl_report(args.format, window, rows, interrupted)
    if stats.get("talentwatch/store_errors"):
        print(f"talentwatch: {stats['talentwatch/store_errors']} batches could not be stored", file=sys.stderr)
        return EXIT_FAILED
    return code


def _archives_turn(engine: Any) -> Any:
    """One recrawl at a time asks the archives, whatever the number of processes and machines on a PostgreSQL
    database (their rate limits, GDELT's 5 s, are kept within a process); the articles' fetches are leased."""
    from store.lock import ARCHIVE_KEY, advisory_lock

    def waiting() -> None:
        print("talentwatch: another recrawl is asking the archives; waiting for it to finish", file=sys.stderr)

    return advisory_lock(engine, ARCHIVE_KEY, wait=True, waiting=waiting)


def _recrawl_crawls(config: Config, sources: Sequence[Any], window: Any, providers: Sequence[Any],
                    progress: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Backfill the range from the archives, then fetch the texts its items of fulltext sources lack, one crawl
    after the other in this process; returns the stats of each (empty for one that did not run)."""
    from crawler.runner import run_crawls
    from crawler.spiders.archive import ArchiveSpider, archive_settings
    from crawler.spiders.articles import ArticlesSpider

    crawls: list[tuple[Any, dict[str, Any]]] = []
    if providers:
        crawls.append((ArchiveSpider, {"sources": sources, "window": window, "providers": providers,
                                       "progress": progress}))
    if any(s.fulltext for s in sources):
        crawls.append((ArticlesSpider, {"sources": sources, "window": window, "progress": progress}))
    stats = run_crawls(archive_settings(config), crawls)
    return (stats[0] if providers else {}), (stats[-1] if crawls[-1][0] is ArticlesSpider else {})


def _recrawl_window(start: datetime, end: datetime, now: datetime) -> Any:
    """The range [start, end) of `recrawl`; an end in the future is cut to now."""
    from crawler.archives import Window

    if start >= end:
        raise UsageError(f"--from {_bound(start)} is after --to {_bound(end, end=True)}")
    if start > now:
        raise UsageError(f"--from {_bound(start)} is in the future (now {_iso(now)}): nothing to re-crawl there")
    return Window(start, min(end, now))


def _bound(dt: datetime, end: bool = False) -> str:
    """A range bound as it was given: a date for a whole day (an exclusive end shows its last day)."""
    if dt.timetz() == time(tzinfo=UTC):
        return (dt - timedelta(days=1) if end else dt).date().isoformat()
    return _iso(dt) or ""


def _archive_options(config: Config) -> Any:
    from crawler.archives import ArchiveOptions, key_terms
    from pipelines.tagging.rules import load_rules

    rules = load_rules(config.topics_path)
    terms = config.get("archive", "terms") or key_terms([t.query for t in rules.topics], lists=rules.lists,
                                                        kinds=rules.kinds)
    return ArchiveOptions(config.get("archive", "wayback_url"), config.get("archive", "google_news_url"),
                          config.get("archive", "gdelt_url"), tuple(terms))


def _archive_rows(stats: dict[str, Any]) -> dict[tuple[str, str], Any]:
    """Summary rows from the backfill's stats counters ``talentwatch/<provider>/<source>/<what>``."""
    from crawler.archives import NAMES
    from store.recrawl import Counts

    rows: dict[tuple[str, str], Any] = {}
    fields = {"candidates": "candidates", "items_new": "new", "items_updated": "updated", "errors": "errors"}
    for key, value in stats.items():
        parts = key.split("/")
        if len(parts) == 4 and parts[0] == "talentwatch" and parts[1] in NAMES and parts[3] in fields:
            counts = rows.setdefault((parts[2], parts[1]), Counts())
            setattr(counts, fields[parts[3]], int(value))
    return rows


def _recrawl_report(fmt: str, window: Any, rows: dict[tuple[str, str], Any], interrupted: bool) -> int:
    from dataclasses import asdict

    from crawler.archives import NAMES
    from store.recrawl import Counts

    phases = ("stored", *NAMES)
    ordered = [{"source": s, "provider": p, **asdict(c)}
               for (s, p), c in sorted(rows.items(), key=lambda r: (r[0][0], phases.index(r[0][1])))]
    total = {k: sum(r[k] for r in ordered) for k in asdict(Counts())}
    if fmt == "json":
        sys.stdout.write(json.dumps({"from": _iso(window.start), "until": _iso(window.end), "interrupted": interrupted,
                                     "rows": ordered, "total": total}) + "\n")
    else:
        table = Table("source", "provider", "candidates", "new", "updated", "re-tagged", "errors",
                      title=f"recrawl {_bound(window.start)} .. {_bound(window.end, end=True)}")
        for r in [*ordered, {"source": "total", "provider": "", **total}]:
            table.add_row(r["source"], r["provider"], *(str(r[k]) for k in asdict(Counts())))
        console.print(table)
    if interrupted:
        print("talentwatch: recrawl interrupted; run it again to finish (nothing is stored twice)", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


class _RecrawlProgress:
    """One rich progress bar per phase, on standard error (so that `--format json` keeps stdout to JSON)."""

    def __init__(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

        self.bars = Progress(TextColumn("{task.description:<8}"), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), console=Console(stderr=True))
        self.task: Any = None
        self.total = 0

    def __enter__(self) -> _RecrawlProgress:
        self.bars.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.bars.stop()

    def phase(self, name: str) -> None:
        self.task, self.total = self.bars.add_task(name, total=0), 0

    def plan(self, units: int) -> None:
        self.total += units
        self.bars.update(self.task, total=self.total)

    def done(self, units: int) -> None:
        self.bars.advance(self.task, units)


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
    from store.search import matching

    search = None
    if args.query:
        from pipelines.tagging import QueryError, RuleError
        from pipelines.tagging.rules import load_rules

        try:
            search = load_rules(config.topics_path).search(args.query)
        except (QueryError, RuleError) as e:  # both carry the parser's message and position
            raise UsageError(f"--query: {e.message} at position {e.position}") from None
    engine = open_database(config.database_url)
    query = items_query(ItemFilter(args.tag, args.entity, args.source, args.since, args.until, args.tagged))
    if args.limit and search is None:
        query = query.limit(args.limit)
    with Session(engine) as session:
        found = session.scalars(query) if search is None else matching(session, query, search)
        if search is not None and args.limit:
            found = itertools.islice(found, args.limit)
        records = (item_record(i, args.with_text) for i in found)
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
        "disabled": feed.disabled, "worker": feed.polled_by,
    }


def cmd_status(config: Config, args: argparse.Namespace) -> int:
    from digest.alerts import statuses
    from store.leases import workers
    from store.queries import feed_status, utcnow

    engine = _open_synced(config, _load_sources(config))
    with Session(engine) as session:
        feeds = feed_status(session, utcnow())
        records = [status_record(f, n) for f, n in feeds]
        alerts = [{"alert": a.id, "last_sent": _iso(a.last_sent), "stories": a.stories, "pending": a.pending,
                   "last_error": a.last_error} for a in statuses(session, [a.id for a in config.alerts])]
        shared = engine.dialect.name == "postgresql"
        live = [{"worker": w.id, "started": _iso(w.started), "heartbeat": _iso(w.heartbeat), "live": w.live,
                 "feeds_hour": w.feeds_hour, "leases": w.leases}
                for w in (workers(session, config.get("daemon", "lease")) if shared else [])]
    if args.format == "json":
        for r in [*records, *alerts, *live]:
            sys.stdout.write(json.dumps(r, ensure_ascii=False) + "\n")
        return EXIT_OK
    table = Table("source", "feed", "last fetch", "last success", "fail", "next due", "week", "worker", "last error")
    for r, (feed, _) in zip(records, feeds, strict=True):
        table.add_row(r["source"], r["feed_url"], _short(r["last_fetch"]), _short(r["last_success"]),
                      str(r["failures"]), _short(r["next_due"]), str(r["items_week"]), r["worker"] or "-",
                      _status_note(r, feed.fetch_url))
    console.print(table)
    if alerts:
        table = Table("alert", "last sent", "stories sent", "waiting", "last error")
        for a in alerts:
            table.add_row(a["alert"], _short(a["last_sent"]), str(a["stories"]), str(a["pending"]),
                          a["last_error"] or "")
        console.print(table)
    if live:
        table = Table("worker", "started", "last heartbeat", "state", "feeds polled (1 h)", "leases")
        for w in live:
            table.add_row(w["worker"], _short(w["started"]), w["heartbeat"][:19].replace("T", " "),
                          "live" if w["live"] else "gone", str(w["feeds_hour"]), str(w["leases"]))
        console.print(table)
    return EXIT_OK


def _status_note(r: dict[str, Any], moved_to: str | None) -> str:
    """The last column of `status`: disabled (410), the last error, where the feed moved (301, 308)."""
    notes = [f"disabled: {r['last_error']}" if r["disabled"] else r["last_error"] or "",
             f"moved to {moved_to}" if moved_to else ""]
    return "; ".join(n for n in notes if n)


def _short(iso: str | None) -> str:
    return iso[:16].replace("T", " ") if iso else "-"


def _week_arg(value: str) -> tuple[int, int]:
    from digest.period import parse_week

    try:
        return parse_week(value)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _date_arg(value: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an ISO date such as 2026-11-02, got {value!r}") from None


def _digest_period(config: Config, args: argparse.Namespace) -> Any:
    """--week, or --from/--to (whole days in [digest] timezone), else the week that ended last."""
    from digest.period import last_week, period_of, week
    from store.queries import utcnow

    tz = config.get("digest", "timezone")
    if args.week and (args.date_from or args.date_to):
        raise UsageError("digest: --week or --from/--to, not both")
    if args.week:
        return week(*args.week, tz)
    if args.date_from or args.date_to:
        if not (args.date_from and args.date_to):
            raise UsageError("digest: --from and --to go together")
        try:
            return period_of(args.date_from, args.date_to, tz)
        except ValueError as e:
            raise UsageError(f"digest: --from/--to: {e}") from None
    return last_week(utcnow(), tz)


def cmd_digest(config: Config, args: argparse.Namespace) -> int:
    from pathlib import Path

    import digest

    if args.force and not args.send:
        raise UsageError("digest: --force goes with --send")
    period = _digest_period(config, args)
    engine = _open_synced(config, _load_sources(config))
    try:
        if args.preview:
            data = digest.preview(config, engine, period, Path(args.preview))
            console.print(f"wrote {args.preview}: digest {period.label}, {data.stories} stories from {data.items} "
                          f"items, {len(data.failing)} feeds failing", highlight=False, soft_wrap=True)
            return EXIT_OK
        outcome = digest.send(config, engine, period, force=args.force)
    except digest.DeliveryError as e:
        print(f"talentwatch: digest {period.label} not sent: {e}. It stays recorded as pending: the next "
              "`digest --send` or the daemon's next digest run sends it.", file=sys.stderr)
        return EXIT_FAILED
    finally:
        engine.dispose()
    return _digest_outcome(outcome)


def _digest_outcome(outcome: Any) -> int:
    if outcome.status == "sent":
        to = f" to {', '.join(outcome.recipients)}" if outcome.recipients else ""
        console.print(f"sent digest {outcome.period} ({outcome.stories} stories){to} via {outcome.delivered_to}, "
                      f"Message-ID {outcome.message_id}", highlight=False, soft_wrap=True)
        return EXIT_OK
    if outcome.status == "already sent":
        console.print(f"digest {outcome.period} was already sent on {_iso(outcome.sent)} via {outcome.delivered_to}"
                      ": nothing to do (--force sends it again)", highlight=False, soft_wrap=True)
        return EXIT_OK
    print(f"talentwatch: digest {outcome.period} is being sent by another process (since {_iso(outcome.claimed)});"
          " if that process died, the next run after 10 minutes takes over", file=sys.stderr)
    return EXIT_FAILED


def cmd_rules_test(config: Config, args: argparse.Namespace) -> int:
    from pipelines.tagging.evaluate import LabelledFileError, evaluate, read_labelled
    from pipelines.tagging.rules import load_tagger

    tagger = load_tagger(config.topics_path)
    unknown = sorted(set(args.topic) - set(tagger.topic_ids))
    if unknown:
        raise UsageError(f"--topic: unknown topic {', '.join(unknown)} (in {config.topics_path})")
    try:
        items = read_labelled(args.file, tagger.topic_ids)
    except LabelledFileError as e:
        raise UsageError(str(e)) from None
    if args.split:
        items = [i for i in items if i.split == args.split]
        if not items:
            raise UsageError(f"--split: no item of {args.file} is in split {args.split!r}")
    report = evaluate(tagger, items, args.topic or None)
    if args.format == "json":
        sys.stdout.write(json.dumps({"file": args.file, "split": args.split, **report.as_dict(args.by_event)},
                                    ensure_ascii=False) + "\n")
    else:
        _rules_report(report, args.file, args.by_event)
    below = [s.topic for s in report.scores
             if (args.min_precision is not None and s.precision < args.min_precision)
             or (args.min_recall is not None and s.recall < args.min_recall)]
    if below:
        print(f"talentwatch: below the thresholds: {', '.join(below)}", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK


def _rules_report(report: Any, file: str, by_event: bool) -> None:
    table = Table("topic", "precision", "recall", "F1", "support", "TP", "FP", "FN",
                  title=f"{len(report.items)} labelled items ({file})")
    for s in report.scores:
        table.add_row(s.topic, f"{s.precision:.3f}", f"{s.recall:.3f}", f"{s.f1:.3f}", str(s.support),
                      str(s.tp), str(s.fp), str(s.fn))
    console.print(table)
    for e in report.errors:
        label = "false positive" if e.kind == "fp" else "false negative"
        console.print(f"[bold]{label}[/] {e.topic}, line {e.item.line}: "
                      f"{escape(e.item.title or e.item.summary[:100])}", highlight=False)
        for snippet in e.evidence:
            console.print(f"    fired on: {snippet}", highlight=False, markup=False)
        for clause in e.nearest:
            if clause.snippets is None:
                console.print(f"    missing: {clause.text}", highlight=False, markup=False)
            else:
                console.print(f"    matched: {clause.text} -> {clause.snippets[0]}", highlight=False, markup=False)
    if by_event:
        events = Table("topic", "events", "tagged", "event recall", "missed entirely", title="by event")
        for e in report.by_event():
            events.add_row(e.topic, str(e.events), str(e.events - len(e.missed)), f"{e.recall:.3f}",
                           escape(", ".join(e.missed)) or "-")
        console.print(events)


def cmd_serve(config: Config, args: argparse.Namespace) -> int:
    """Serve the workbench; a host that is not loopback needs TALENTWATCH_WEB_PASSWORD."""
    import ipaddress

    import uvicorn

    from store.db import open_database
    from web.app import create_app

    host, port = args.host or config.get("web", "host"), args.port or config.get("web", "port")
    password = os.environ.get("TALENTWATCH_WEB_PASSWORD") or None
    try:
        loopback = host == "localhost" or ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = False
    if not loopback and password is None:
        raise UsageError(f"serve: host {host} ([web] host or --host) is not loopback: set TALENTWATCH_WEB_PASSWORD "
                         "so that every page needs it")
    app = create_app(open_database(config.database_url), config.topics_path, password,
                     config.get("daemon", "lease"))
    print(f"talentwatch workbench on http://{host}:{port}/", flush=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")
    return EXIT_OK


def sources_record(source: Any, interval: str | None) -> dict[str, Any]:
    """The JSON object of one source (`sources list --format json`); ``interval`` as written in sources.toml."""
    return {"id": source.id, "name": source.name, "feeds": list(source.feeds), "site": source.site,
            "interval": interval, "fulltext": source.fulltext, "language": source.language}


def cmd_sources_list(config: Config, args: argparse.Namespace) -> int:
    from rich.table import Column

    from talentwatch.schema import read_toml

    sources = _load_sources(config)
    written = {t.get("id"): t.get("interval") for t in read_toml(config.sources_path).get("source", [])}
    records = [sources_record(s, written.get(s.id)) for s in sources]
    if args.format == "json":
        for r in records:
            sys.stdout.write(json.dumps(r, ensure_ascii=False) + "\n")
        return EXIT_OK
    table = Table("id", "name", Column("feeds", overflow="fold"), "interval", "fulltext", "language",
                  title=f"{len(records)} sources, {sum(len(r['feeds']) for r in records)} feeds "
                        f"({config.sources_path})")
    for r in records:
        table.add_row(r["id"], r["name"], "\n".join(r["feeds"]), r["interval"] or "-", "yes" if r["fulltext"] else "no",
                      r["language"] or "-")
    console.print(table, highlight=False, markup=False)
    return EXIT_OK


def _writable_sources(config: Config) -> Any:
    """The sources.toml that --write appends to: the user's own, never the shipped list."""
    if config.get("crawl", "sources") is None:
        raise UsageError(f"--write: no [crawl] sources is configured, and the shipped list ({config.sources_path}) "
                         "is not edited: copy it beside talentwatch.toml and set [crawl] sources = \"sources.toml\"")
    return config.sources_path


def cmd_sources_import(config: Config, args: argparse.Namespace) -> int:
    from pathlib import Path

    from crawler.sources import append_sources, sources_toml
    from talentwatch.opml import plan_import, read_opml

    target = _writable_sources(config) if args.write else None
    plan = plan_import(read_opml(Path(args.file)), _load_sources(config))
    if target is None:
        sys.stdout.write(sources_toml(plan.tables))
    elif plan.tables:
        append_sources(target, plan.tables)
    repeated = f", {plan.repeated} listed twice in {args.file}" if plan.repeated else ""
    where = f"; written to {target}" if target else (" (not written: --write appends them to "
                                                     f"{config.sources_path})" if plan.tables else "")
    print(f"{len(plan.tables)} sources added, {plan.already} feeds already configured{repeated}{where}",
          file=sys.stderr)
    return EXIT_OK


def cmd_sources_export(config: Config, args: argparse.Namespace) -> int:
    from talentwatch.opml import write_opml

    sys.stdout.buffer.write(write_opml(_load_sources(config)))
    sys.stdout.buffer.flush()
    return EXIT_OK


def cmd_sources_add(config: Config, args: argparse.Namespace) -> int:
    """Find the feed of a URL and print its [[source]] table, or append it to sources.toml."""
    from urllib.parse import urlsplit

    from crawler.discover import FetchFailed, NoFeed, Refused, discover
    from crawler.sources import SOURCE_ID, append_sources, derive_id, feed_key, site_of, source_table, sources_toml

    target = _writable_sources(config) if args.write else None
    sources = _load_sources(config)
    taken = {s.id for s in sources}
    if urlsplit(args.url).scheme not in ("http", "https") or not urlsplit(args.url).hostname:
        raise UsageError(f"sources add: expected an http(s) URL, got {args.url!r}")
    if args.id is not None and not SOURCE_ID.match(args.id):
        raise UsageError(f"--id: expected an id of [a-z0-9-]+, got {args.id!r}")
    if args.id in taken:
        raise UsageError(f"--id: there is a source '{args.id}' already (in {config.sources_path})")
    try:
        found = discover(args.url, config.get("crawl", "timeout"), config.get("crawl", "user_agent"))
    except (Refused, FetchFailed, NoFeed) as e:
        print(f"talentwatch: {'' if isinstance(e, NoFeed) else args.url + ': '}"
              f"{'refused: ' if isinstance(e, Refused) else ''}{e}", file=sys.stderr)
        return EXIT_FAILED
    for url, reason in found.passed:
        print(f"  passed over {url}: {reason}", file=sys.stderr)
    owner = next((s.id for s in sources if feed_key(found.url) in {feed_key(u) for u in s.feeds}), None)
    if owner:
        print(f"talentwatch: {found.url} is configured already (source '{owner}'): nothing to add", file=sys.stderr)
        return EXIT_OK
    sid = args.id or derive_id(found.title, found.url, taken)
    table = source_table(sid, found.title or site_of(found.url) or sid, [found.url],
                         site_of(found.link) or site_of(args.url), found.language)
    print(f"found {found.url} ({found.how}, {found.entries} entries)", file=sys.stderr)
    if target is None:
        sys.stdout.write(sources_toml([table]))
    else:
        append_sources(target, [table])
        print(f"added source '{sid}' to {target}", file=sys.stderr)
    return EXIT_OK


def cmd_alerts_test(config: Config, args: argparse.Namespace) -> int:
    """Each alert's matching stories of the look-back window: what a check would send now, what it sent already,
    what waits for more outlets. Nothing is written (the transaction is rolled back)."""
    from digest.alerts import candidates, searches
    from store.queries import utcnow

    chosen = [a for a in config.alerts if args.id in (None, a.id)]
    if args.id and not chosen:
        known = ", ".join(a.id for a in config.alerts) or "none configured"
        raise UsageError(f"--id: unknown alert {args.id!r} (alerts: {known})")
    if not chosen:
        print("no alerts configured: add [[alert]] tables to talentwatch.toml (see the README)")
        return EXIT_OK
    search = searches(config)
    engine = _open_synced(config, _load_sources(config))
    now = utcnow()
    since = now - timedelta(seconds=args.since)
    with Session(engine) as session:
        for alert in chosen:
            found = candidates(session, alert, search[alert.id], since, now)
            counts = Counter(c.status(alert) for c in found)
            print(f"alert {alert.id} ({alert.watches}; min_outlets {alert.min_outlets}, every "
                  f"{alert.every:g} s): {counts['new']} would be sent, {counts['recorded']} sent before, "
                  f"{counts['below min_outlets']} below min_outlets, since {_iso(since)}")
            for c in found:
                what = {"new": "would send", "recorded": f"sent {_short(_iso(c.recorded))}",
                        "below min_outlets": "below min"}[c.status(alert)]
                print(f"  {what:<22} {c.story.outlets} outlet{'s' if c.story.outlets > 1 else ' '}  "
                      f"{_short(_iso(c.story.published or c.story.latest))}  {c.story.title}"
                      + (f"  <{c.story.url}>" if c.story.url else ""))
        session.rollback()
    return EXIT_OK


def cmd_judgements_export(config: Config, args: argparse.Namespace) -> int:
    from store.db import open_database
    from store.judgements import export

    with Session(open_database(config.database_url)) as session:
        for record in export(session):
            sys.stdout.write(json.dumps(record, ensure_ascii=False) + "\n")
    return EXIT_OK


def cmd_db_upgrade(config: Config, args: argparse.Namespace) -> int:
    from store.db import make_engine, upgrade

    engine = make_engine(config.database_url)
    before, after = upgrade(engine)
    console.print(f"database at revision {after}" + (f" (was {before or 'empty'})" if before != after else ""))
    return EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
