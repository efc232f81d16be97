"""Feed bodies are parsed, normalized and tagged in worker processes, off the reactor thread and on every core, so
that fetching goes on while feeds parse.

The stages stay where they live (``crawler.feedparse.parse_feed``, ``pipelines.normalize.normalize_entries``,
``pipelines.tag.tag_article``): a worker only calls them one after the other and hands back picklable Articles.
The pool starts on the first body to parse (an all-304 poll starts none; the first bodies wait until it runs)
and lives as long as the process, so the daemon's crawls share it. Workers come from a fork server: they hold
none of the parent's descriptors (the daemon's lock dies with the daemon), ignore SIGINT (Ctrl-C stops the
daemon, which then finishes its crawl) and end themselves, with their fork server, within ``OWNER_POLL`` seconds
of the daemon's death (a SIGKILL leaves it no chance to stop them). When the pool cannot be used (a worker
killed, no fork server) bodies parse in a thread and the pipeline's own stages normalize and tag them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from crawler.feedparse import ParsedFeed, parse_feed
from crawler.items import Article
from pipelines.normalize import normalize_entries
from pipelines.tag import tag_article
from pipelines.tagging import Tagger
from pipelines.tagging.rules import load_tagger

logger = logging.getLogger(__name__)
RulesStamp = tuple[str, int, int]  # topics.toml: path, mtime (ns), size; a changed file is loaded again

_executor: ProcessPoolExecutor | None = None
_ready = False  # every worker of _executor has started
_tagger: tuple[RulesStamp, Tagger] | None = None  # in a worker: the rules of the last stamp seen
_watching = False  # in a worker: the owner watch runs
OWNER_POLL = 1.0  # seconds between a worker's checks that the pool's owner is alive


@dataclass
class Parsed:
    """A parsed body: the feed (entries emptied once normalized) and its articles, when normalized here."""

    feed: ParsedFeed
    articles: list[Article] | None = field(default=None, repr=False)
    tagged: bool = False


def rules_stamp(path: str | Path | None) -> RulesStamp | None:
    if not path:
        return None
    st = os.stat(path)
    return str(path), st.st_mtime_ns, st.st_size


def process_body(body: bytes, headers: dict[str, str], rules: RulesStamp | None) -> Parsed:
    """parse -> normalize -> tag (when rules are given): what a worker does with one body."""
    feed = parse_feed(body, headers)
    if feed.error:
        return Parsed(feed)
    articles = normalize_entries(feed.entries)
    feed.entries = []
    if rules is not None:
        tagger = _rules(rules)
        for article in articles:
            tag_article(tagger, article)
    return Parsed(feed, articles, rules is not None)


def _rules(stamp: RulesStamp) -> Tagger:
    global _tagger
    if _tagger is None or _tagger[0] != stamp:
        _tagger = (stamp, load_tagger(stamp[0]))
    return _tagger[1]


def _init_worker(owner: int = 0) -> None:
    """In each worker: ignore SIGINT, and watch the process that owns the pool (see ``_watch``)."""
    global _watching
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    if owner and not _watching:
        _watching = True
        threading.Thread(target=_watch, args=(owner, os.getppid()), name="talentwatch-owner", daemon=True).start()


def _watch(owner: int, server: int) -> None:
    """End this worker once the process that started the pool is gone. A daemon killed with SIGKILL cannot shut
    its pool down, and the workers (which hold both ends of their task queue) would wait for work forever; the fork
    server they came from is ended too (it would wait for requests from the dead owner)."""
    while True:
        time.sleep(OWNER_POLL)
        try:
            os.kill(owner, 0)
        except ProcessLookupError:
            break
        except PermissionError:  # alive, under another user (cannot happen for our own parent; harmless)
            continue
    if server not in (1, owner, os.getpid()):
        with contextlib.suppress(OSError):
            os.kill(server, signal.SIGTERM)
    os._exit(0)


def _running() -> None:
    """A task that returns at once: ``_start`` waits for the workers with it."""


def _start(workers: int) -> None:
    """Start the pool and wait until each worker runs (a fork server first starts and imports this module: too
    slow to wait for on the reactor thread, so this runs in a thread while the reactor goes on fetching)."""
    global _executor, _ready
    if _executor is None:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload([__name__])
        _executor = ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker,
                                        initargs=(os.getpid(),))
    for started in [_executor.submit(_running) for _ in range(workers)]:
        started.result()
    _ready = True


def _discard(pool: ProcessPoolExecutor) -> None:
    global _executor, _ready
    if _executor is pool:
        _executor, _ready = None, False
        pool.shutdown(wait=False, cancel_futures=True)


class ParsePool:
    """What the feeds spider awaits for each body it parses."""

    def __init__(self, workers: int, rules: RulesStamp | None) -> None:
        self.workers, self.rules = workers, rules
        self.starting: asyncio.Future[None] | None = None

    async def parse(self, body: bytes, headers: dict[str, str]) -> Parsed:
        pool = await self._pool()
        if pool is not None:
            try:
                return await asyncio.get_running_loop().run_in_executor(
                    pool, process_body, body, headers, self.rules)
            except BrokenProcessPool as e:  # a worker died
                self._unusable(e, pool)
        return Parsed(await asyncio.to_thread(parse_feed, body, headers))

    async def _pool(self) -> ProcessPoolExecutor | None:
        """The running pool, once started (the first bodies wait for it: parsing them in threads meanwhile would
        cost the reactor's process the memory and CPU the pool exists to take off it); None when it cannot run."""
        if _ready and _executor is not None:
            return _executor
        if self.workers <= 0:
            return None
        if self.starting is None:
            self.starting = asyncio.ensure_future(asyncio.to_thread(_start, self.workers))
            self.starting.add_done_callback(self._started)
        with contextlib.suppress(Exception):  # _started reports it, and parsing goes on in a thread
            await asyncio.shield(self.starting)
        return _executor if _ready else None

    def _started(self, starting: asyncio.Future[None]) -> None:
        if not starting.cancelled() and (error := starting.exception()) is not None:
            self.workers = 0
            self._unusable(error, _executor)

    def _unusable(self, error: BaseException, pool: ProcessPoolExecutor | None) -> None:
        logger.warning("parse workers unusable (%s: %s): parsing in a thread", type(error).__name__, error)
        if pool is not None:
            _discard(pool)
        self.starting = None
