"""The analyst's workbench (``talentwatch serve``): Starlette routes over the store's queries and the digest's
selection, server-rendered with Jinja2 (autoescaped), a few lines of JavaScript (keyboard, verdicts).

Reads the database the daemon writes (SQLite in WAL mode, or PostgreSQL); writes only judgements. Safety:
everything from feeds is text (autoescaped; only http(s) URLs become links, with rel="noopener noreferrer");
headers forbid inline scripts, framing and referrers (``SECURITY_HEADERS``); a state-changing request needs the
CSRF token of its page (double-submit: cookie and header must match) or HTTP basic auth; with
TALENTWATCH_WEB_PASSWORD set, every route but /healthz needs the password (HTTP basic auth, any user name).
"""

from __future__ import annotations

import base64
import contextlib
import email
import email.policy
import gc
import hashlib
import hmac
import json
import logging
import math
import secrets
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html import escape as html_escape
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware, RequestResponseEndpoint
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from digest.alerts import statuses
from digest.period import Period, parse_week, week
from digest.select import DigestData, safe_url, select_digest
from pipelines.tag import body
from pipelines.tagging import QueryError, RuleError
from pipelines.tagging.evaluate import LabelledItem, TopicScore, evaluate
from pipelines.tagging.query import CJK_CHAR
from pipelines.tagging.rules import load_rules
from store import models as m
from store.judgements import UnknownTopic, export, judge, verdicts
from store.leases import workers
from store.queries import ItemFilter, feed_status, items_count, items_query
from store.search import catch_up, matching
from talentwatch.cli import item_record, status_record
from web.atom import atom
from web.trends import MIN_HISTORY, entity_series, topic_series, weeks_until

HERE = Path(__file__).parent
PAGE_SIZE = 50
INDEX_EVERY = 60.0  # seconds between two catch-ups of the search index
logger = logging.getLogger(__name__)
TRY_ITEMS = 2000  # latest stored items a query is tried on at /rules
DIGEST_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'"
CSRF_COOKIE = "tw_csrf"
SESSION_COOKIE = "tw_session"
SESSION_DAYS = 14
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
                               "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
}


FILTER_KEYS = ("q", "tag", "entity", "source", "since", "until", "lang")  # Filters' text fields, in order


@dataclass
class Filters:
    """The query parameters every list takes; ``error`` is the parser's message for a bad ``q``."""

    q: str = ""
    tag: str = ""
    entity: str = ""
    source: str = ""
    since: str = ""
    until: str = ""
    lang: str = ""
    page: int = 1
    error: str = ""

    @classmethod
    def of(cls, request: Request) -> Filters:
        p = request.query_params
        try:
            page = max(1, int(p.get("page", "1")))
        except ValueError:
            page = 1
        return cls(*(p.get(k, "").strip() for k in FILTER_KEYS), page=page)

    def store_filter(self) -> ItemFilter:
        return ItemFilter(self.tag or None, self.entity or None, [self.source] if self.source else [],
                          _day(self.since), _day(self.until, end=True))

    def link(self, **changes: Any) -> str:
        """This list's URL with some parameters changed (page back to 1 unless given)."""
        values = {k: getattr(self, k) for k in FILTER_KEYS}
        values.update(changes)
        return "?" + urlencode({k: v for k, v in values.items() if v not in ("", None, 1)})


def _day(value: str, end: bool = False) -> datetime | None:
    try:
        day = datetime.fromisoformat(value).replace(tzinfo=UTC) if value else None
    except ValueError:
        return None
    return day + timedelta(days=1) if day is not None and end and len(value) == 10 else day


class Workbench:
    """The app's state: the database, the topics (for ``q``), the templates, the password."""

    def __init__(self, engine: Engine, topics_path: Path, password: str | None) -> None:
        self.engine, self.password = engine, password
        self.rules = load_rules(topics_path)
        self.env = Environment(loader=FileSystemLoader(HERE / "templates"), autoescape=select_autoescape(default=True))
        self.env.globals.update(safe_url=safe_url, day=_fmt_day, highlight=highlight)
        for name in self.env.list_templates():  # compiled now rather than in each page's first request
            self.env.get_template(name)

    def items(self, session: Session, f: Filters) -> tuple[int, list[m.Item]]:
        """The filtered items of one page, newest first, and how many there are (none, and ``f.error`` set to the
        parser's message, for a bad ``q``)."""
        try:
            tagger = self.rules.search(f.q) if f.q else None
        except (QueryError, RuleError) as e:
            f.error = _query_error(e)
            return 0, []
        dialect, store_filter = session.get_bind().dialect.name, f.store_filter()
        query = items_query(store_filter, dialect)
        if tagger is None and not f.lang:
            total = session.scalar(items_count(store_filter, dialect)) or 0
            page = list(session.scalars(query.offset((f.page - 1) * PAGE_SIZE).limit(PAGE_SIZE)))
            return total, page
        rows = session.scalars(query) if tagger is None else matching(session, query, tagger)
        found = [i for i in rows if not f.lang or _language(i) == f.lang]
        return len(found), found[(f.page - 1) * PAGE_SIZE:f.page * PAGE_SIZE]

    def stories(self, period: Period) -> DigestData:
        """The digest's selection for a period, live (its clustering of unassigned items is rolled back: the web
        view writes only judgements)."""
        with Session(self.engine) as session:
            data = select_digest(session, period, datetime.now(UTC), [t.id for t in self.rules.topics])
            session.rollback()
        return data

    def try_query(self, session: Session, topic: str, q: str, judged: list[LabelledItem]) -> Trial:
        """A query tried in place of a topic's: which of the latest stored items it adds and drops against the
        topic's tags, and its figures on the analyst's verdicts."""
        trial = self.rules.search(q, topic)
        latest = session.scalars(select(m.Item).order_by(m.Item.id.desc()).limit(TRY_ITEMS))
        added, dropped, both = [], [], 0
        for item in latest:
            now = any(t.topic_id == topic for t in item.tags)
            then = bool(trial.tag(item.title or "", body(item.summary, item.text)).topics)
            both += now and then
            if then and not now:
                added.append(item)
            elif now and not then:
                dropped.append(item)
        score = evaluate(trial, judged, [topic]).scores[0] if judged else None
        return Trial(added, dropped, both, score)

    def render(self, request: Request, name: str, status: int = 200, **context: Any) -> HTMLResponse:
        token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
        html = self.env.get_template(name).render(csrf=token, path=request.url.path, **context)
        response = HTMLResponse(html, status_code=status)
        response.set_cookie(CSRF_COOKIE, token, httponly=False, samesite="strict")
        return response


@dataclass
class Trial:
    added: list[m.Item]
    dropped: list[m.Item]
    kept: int
    score: TopicScore | None  # on the analyst's verdicts


def _judged_items(session: Session) -> list[LabelledItem]:
    """The analyst's verdicts as labelled items (what ``judgements export`` writes)."""
    return [LabelledItem(r["title"] or "", r["summary"] or "", frozenset(r["labels"]), n, {"judged": r["judged"]})
            for n, r in enumerate(export(session), 1)]


def _language(item: m.Item) -> str:
    text = (item.title or "") + (item.summary or "")[:200]
    return "zh" if sum(bool(CJK_CHAR.match(c)) for c in text) * 4 > len(text) else "en"


def highlight(text: str, snippets: list[str]) -> list[tuple[str, bool]]:
    """``text`` cut into (part, is evidence) pieces: where a topic's evidence snippet occurs in it, marked. The
    template escapes every piece (nothing of the text becomes markup)."""
    marks = [False] * len(text)
    for snippet in snippets:
        needle = snippet.strip(" .…")
        start = text.find(needle) if needle else -1
        while start >= 0:
            marks[start:start + len(needle)] = [True] * len(needle)
            start = text.find(needle, start + len(needle))
    pieces: list[tuple[str, bool]] = []
    for ch, marked in zip(text, marks, strict=True):
        if pieces and pieces[-1][1] == marked:
            pieces[-1] = (pieces[-1][0] + ch, marked)
        else:
            pieces.append((ch, marked))
    return pieces


def _fmt_day(dt: datetime | None) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M") if dt else ""


def create_app(engine: Engine, topics_path: Path, password: str | None = None, lease: float = 120.0) -> Starlette:
    """The workbench's app; ``lease`` is [daemon] lease (when a silent daemon counts as gone, on /sources)."""
    wb = Workbench(engine, topics_path, password)
    catch_up(engine)  # the search index: what was stored since it last ran (store/search.py)

    def healthz(request: Request) -> Response:
        with Session(wb.engine) as session:
            return JSONResponse({"ok": True, "items": session.scalar(select(func.count(m.Item.id)))})

    def api_items(request: Request) -> Response:
        f = Filters.of(request)
        with Session(wb.engine) as session:
            total, page = wb.items(session, f)
            if f.error:
                return JSONResponse({"error": f.error}, status_code=400)
            return JSONResponse({"total": total, "items": [item_record(i) for i in page]})

    def api_stories(request: Request) -> Response:
        data = wb.stories(_period(request))
        return JSONResponse({"total": data.stories, "stories": [
            {"id": s.id, "title": s.title, "url": s.url, "source": s.source, "also": s.also, "topics": s.topics,
             "published": s.published.isoformat() if s.published else None, "entities": s.entities}
            for section in data.sections for s in section.stories]})

    def stories_page(request: Request) -> Response:
        period = _period(request)
        data = wb.stories(period)
        before = period.first - timedelta(days=7)
        previous = week(*before.isocalendar()[:2], "UTC")
        return wb.render(request, "stories.html", data=data, period=period, previous=previous)

    def items_page(request: Request) -> Response:
        f = Filters.of(request)
        with Session(wb.engine) as session:
            total, page = wb.items(session, f)
            return wb.render(request, "items.html", f=f, total=total, items=page,
                             pages=max(1, math.ceil(total / PAGE_SIZE)), topics=wb.rules.topics)

    def item_page(request: Request) -> Response:
        with Session(wb.engine) as session:
            item = session.get(m.Item, request.path_params["id"])
            if item is None:
                return wb.render(request, "missing.html", status=404, what="item")
            others = [] if item.story_id is None else list(session.scalars(
                select(m.Item).where(m.Item.story_id == item.story_id, m.Item.id != item.id).limit(50)))
            return wb.render(request, "item.html", item=item, others=others, verdicts=verdicts(session, item.id),
                             topics=wb.rules.topics)

    async def post_judgement(request: Request) -> Response:
        if "authorization" not in request.headers and not _csrf_ok(request):  # an API client: basic auth, checked
            return JSONResponse({"error": "missing or wrong CSRF token"}, status_code=403)
        try:
            payload = json.loads(await request.body())
            topic, relevant = payload["topic"], payload["relevant"]
            if not isinstance(topic, str) or not isinstance(relevant, bool):
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return JSONResponse({"error": 'expected {"topic": topic id, "relevant": true or false}'}, status_code=400)
        return await run_in_threadpool(store_judgement, request.path_params["id"], topic, relevant)

    def store_judgement(item_id: int, topic: str, relevant: bool) -> Response:
        with Session(wb.engine) as session, session.begin():
            if session.get(m.Item, item_id) is None:
                return JSONResponse({"error": "no such item"}, status_code=404)
            try:
                judge(session, item_id, topic, relevant, datetime.now(UTC))
            except UnknownTopic:
                return JSONResponse({"error": f"unknown topic {topic!r}"}, status_code=400)
        return JSONResponse({"ok": True, "item": item_id, "topic": topic, "relevant": relevant})

    def story_page(request: Request) -> Response:
        with Session(wb.engine) as session:
            members = list(session.scalars(select(m.Item).where(m.Item.story_id == request.path_params["id"])
                                           .order_by(func.coalesce(m.Item.published, m.Item.fetched), m.Item.id)))
            if not members:
                return wb.render(request, "missing.html", status=404, what="story")
            return wb.render(request, "story.html", story_id=request.path_params["id"], members=members)

    def sources_page(request: Request) -> Response:
        with Session(wb.engine) as session:
            feeds = [status_record(f, n) for f, n in feed_status(session, datetime.now(UTC))]
            alerts = statuses(session)
            daemons = workers(session, lease) if wb.engine.dialect.name == "postgresql" else []
        feeds.sort(key=lambda r: (not r["disabled"] and not r["failures"], -r["failures"], r["source"]))
        return wb.render(request, "sources.html", feeds=feeds, alerts=alerts, workers=daemons)

    def rules_page(request: Request) -> Response:
        topic, q = request.query_params.get("topic", ""), request.query_params.get("q", "").strip()
        with Session(wb.engine) as session:
            judged = _judged_items(session)
            current = {s.topic: s for s in evaluate(wb.rules.tagger(), judged).scores} if judged else {}
            trial, error = None, ""
            if q and topic in {t.id for t in wb.rules.topics}:
                try:
                    trial = wb.try_query(session, topic, q, judged)
                except (QueryError, RuleError) as e:
                    error = _query_error(e)
        return wb.render(request, "rules.html", topics=wb.rules.topics, current=current, judged=len(judged),
                         topic=topic, q=q, trial=trial, error=error)

    def digests_page(request: Request) -> Response:
        with Session(wb.engine) as session:
            digests = list(session.scalars(select(m.Digest).order_by(m.Digest.starts.desc())))
            return wb.render(request, "digests.html", digests=digests)

    def digest_as_sent(request: Request) -> Response:
        """The HTML part of a digest's stored message, with a policy of its own: its inline styles, no script."""
        with Session(wb.engine) as session:
            digest = session.get(m.Digest, request.path_params["id"])
            if digest is None:
                return wb.render(request, "missing.html", status=404, what="digest")
            message = email.message_from_bytes(digest.message, policy=email.policy.default)
        part = message.get_body(("html",))
        html = part.get_content() if part is not None else "<p>(no HTML part)</p>"
        return HTMLResponse(html, headers={"Content-Security-Policy": DIGEST_POLICY})

    def trends_page(request: Request) -> Response:
        try:
            n = min(52, max(MIN_HISTORY + 1, int(request.query_params.get("weeks", "12"))))
        except ValueError:
            n = 12
        weeks = weeks_until(_period(request), n)
        with Session(wb.engine) as session:
            topics = dict(session.execute(select(m.Topic.id, m.Topic.name)).all())
            order = {t.id: k for k, t in enumerate(wb.rules.topics)}
            topics = {t: topics[t] for t in sorted(topics, key=lambda t: (order.get(t, len(order)), t))}
            return wb.render(request, "trends.html", labels=[w.label for w in weeks],
                             topics=topic_series(session, weeks, topics), entities=entity_series(session, weeks))

    def topic_feed(request: Request) -> Response:
        topic = request.path_params["topic"]
        if topic not in {t.id for t in wb.rules.topics}:
            return Response("no such topic", status_code=404, media_type="text/plain")
        return feed_of(request, f"talentwatch: {topic}", Filters(tag=topic))

    def search_feed(request: Request) -> Response:
        f = Filters(q=request.query_params.get("q", "").strip())
        if not f.q:
            return Response("q: a query is needed", status_code=400, media_type="text/plain")
        return feed_of(request, f"talentwatch: {f.q}", f)

    def feed_of(request: Request, title: str, f: Filters) -> Response:
        with Session(wb.engine) as session:
            _, items = wb.items(session, f)
            if f.error:
                return Response(f.error, status_code=400, media_type="text/plain")
            base = f"{request.url.scheme}://{request.url.netloc}"
            return Response(atom(title, str(request.url), base, items), media_type="application/atom+xml")

    def favicon(request: Request) -> Response:
        return Response(status_code=204)  # none: browsers ask anyway

    routes = [
        Route("/healthz", healthz),
        Route("/favicon.ico", favicon),
        Route("/feeds/topic/{topic}.atom", topic_feed),
        Route("/feeds/search.atom", search_feed),
        Route("/", stories_page),
        Route("/items", items_page),
        Route("/items/{id:int}", item_page),
        Route("/stories/{id:int}", story_page),
        Route("/sources", sources_page),
        Route("/trends", trends_page),
        Route("/rules", rules_page),
        Route("/digests", digests_page),
        Route("/digests/{id:int}", digest_as_sent),
        Route("/api/items", api_items),
        Route("/api/stories", api_stories),
        Route("/api/items/{id:int}/judgements", post_judgement, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    return Starlette(routes=routes, middleware=[Middleware(_Guard, password=password)], lifespan=_indexing(engine))


def _indexing(engine: Engine) -> Any:
    """While the app runs, a thread indexes newly stored items every INDEX_EVERY seconds; and what was loaded before
    (modules, rules, templates: some 120,000 objects) is left out of the garbage collector's full passes, which
    otherwise stop a request for 50-60 ms every few searches (each builds a tagger, collected by those passes)."""
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        gc.collect()
        gc.freeze()
        stop = threading.Event()

        def run() -> None:
            while not stop.wait(INDEX_EVERY):
                try:
                    catch_up(engine)
                except Exception:  # a locked database: next time
                    logger.warning("search index: catching up failed", exc_info=True)

        thread = threading.Thread(target=run, name="talentwatch-index", daemon=True)
        thread.start()
        yield
        stop.set()
        thread.join(5)
        gc.unfreeze()
    return lifespan


def _period(request: Request) -> Period:
    """The week of ``?week=`` (YYYY-Www), default this week (UTC)."""
    try:
        year, number = parse_week(request.query_params.get("week", ""))
    except ValueError:
        year, number, _ = datetime.now(UTC).isocalendar()
    return week(year, number, "UTC")


def _query_error(e: Exception) -> str:
    """The parser's message for a bad ``q``, with its position."""
    if isinstance(e, RuleError):
        return f"q: {e.message} at position {e.position}"
    return f"q: {e}"


def _csrf_ok(request: Request) -> bool:
    cookie, header = request.cookies.get(CSRF_COOKIE, ""), request.headers.get("x-csrf-token", "")
    return bool(cookie) and hmac.compare_digest(cookie, header)


class _Guard(BaseHTTPMiddleware):
    """The password on every route but /healthz, /login and /static: a session cookie the login form sets (signed,
    SESSION_DAYS long), or HTTP basic auth (any user name) for API clients; and the security headers on every
    response. A browser without either is sent to the login form, an API client gets 401."""

    def __init__(self, app: Any, password: str | None) -> None:
        super().__init__(app)
        self.password = password

    async def dispatch(self, request: Request, call_next: RequestResponseEndpoint) -> Response:
        path = request.url.path
        if not self.password or path in ("/healthz", "/favicon.ico") or path.startswith("/static/"):
            response = await call_next(request)
        elif path == "/login":
            response = await self._login(request)
        elif self._authorized(request):
            response = await call_next(request)
        elif "text/html" in request.headers.get("accept", "") and request.method == "GET":
            response = RedirectResponse("/login?" + urlencode({"next": request.url.path + (
                "?" + request.url.query if request.url.query else "")}), status_code=303)
        else:
            response = Response("password required", status_code=401,
                                headers={"WWW-Authenticate": 'Basic realm="talentwatch"'})
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)  # a digest as sent has a policy of its own
        return response

    def _authorized(self, request: Request) -> bool:
        if self._valid_session(request.cookies.get(SESSION_COOKIE, "")):
            return True
        scheme, _, value = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            _, _, given = base64.b64decode(value).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return hmac.compare_digest(given.encode(), (self.password or "").encode())

    def _sign(self, expiry: str) -> str:
        key = hashlib.sha256(b"talentwatch session\0" + (self.password or "").encode()).digest()
        return hmac.new(key, expiry.encode(), hashlib.sha256).hexdigest()

    def _valid_session(self, cookie: str) -> bool:
        expiry, _, signature = cookie.partition(".")
        return (expiry.isdigit() and int(expiry) > time.time()
                and hmac.compare_digest(signature, self._sign(expiry)))

    async def _login(self, request: Request) -> Response:
        """GET: the form; POST: check the password (and the form's CSRF token), set the session, go on to
        ``next`` (a path of this site only: no open redirect)."""
        target = request.query_params.get("next", "/")
        if not target.startswith("/") or target.startswith("//") or "\\" in target:
            target = "/"
        token = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
        failed = False
        if request.method == "POST":
            form = parse_qs((await request.body()).decode("utf-8", "replace"))
            given, sent_token = form.get("password", [""])[0], form.get("csrf", [""])[0]
            if request.cookies.get(CSRF_COOKIE) and hmac.compare_digest(sent_token, request.cookies[CSRF_COOKIE]) \
                    and hmac.compare_digest(given.encode(), (self.password or "").encode()):
                expiry = str(int(time.time()) + SESSION_DAYS * 86400)
                response = RedirectResponse(target, status_code=303)
                response.set_cookie(SESSION_COOKIE, f"{expiry}.{self._sign(expiry)}", max_age=SESSION_DAYS * 86400,
                                    httponly=True, samesite="strict")
                return response
            failed = True
        html = LOGIN_PAGE.format(target=html_escape(target, quote=True), csrf=html_escape(token, quote=True),
                                 error='<p class="error" role="alert">Wrong password.</p>' if failed else "")
        response = HTMLResponse(html, status_code=401 if failed else 200)
        response.set_cookie(CSRF_COOKIE, token, samesite="strict")
        return response


LOGIN_PAGE = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>talentwatch: log in</title>
<link rel="stylesheet" href="/static/app.css"></head><body><main><h1>talentwatch</h1>{error}
<form method="post" action="/login?next={target}"><input type="hidden" name="csrf" value="{csrf}">
<label>Password <input type="password" name="password" autofocus autocomplete="current-password"></label>
<button>Log in</button></form></main></body></html>"""
