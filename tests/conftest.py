"""Shared fixtures: a loopback feed server, a talentwatch home with its config, the CLI as a subprocess,
and scratch PostgreSQL databases.

Tests that need a service a newcomer may lack skip with the reason; with TALENTWATCH_REQUIRE_SERVICES=1
(set by .ci/run) such a skip is a failure instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

sys.path.insert(0, str(Path(__file__).parent))
from feedserver import FeedServer  # noqa: E402

REPO = Path(__file__).resolve().parent.parent
SHARED = REPO.parent / "shared"
CORPUS = SHARED / "corpus"
PG_ADMIN_URL = os.environ.get("TALENTWATCH_TEST_PG", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")


def need(condition: bool, reason: str) -> None:
    """Skip unless ``condition``; under TALENTWATCH_REQUIRE_SERVICES=1 fail instead."""
    if condition:
        return
    if os.environ.get("TALENTWATCH_REQUIRE_SERVICES") == "1":
        pytest.fail(f"required service missing: {reason}")
    pytest.skip(reason)


def need_corpus() -> Path:
    if not CORPUS.is_dir():
        pytest.skip(f"the shared corpus is absent ({CORPUS})")
    return CORPUS


@pytest.fixture
def feed_server() -> Iterator[FeedServer]:
    server = FeedServer().start()
    yield server
    server.stop()


@dataclass
class Result:
    code: int
    out: str
    err: str

    def json_lines(self) -> list[dict]:
        return [json.loads(line) for line in self.out.splitlines() if line.strip()]


@dataclass
class Home:
    """A talentwatch home folder with a talentwatch.toml; ``run`` runs the CLI in a subprocess."""

    path: Path
    database_url: str

    @property
    def config(self) -> Path:
        return self.path / "talentwatch.toml"

    def write_config(self, sources: list[tuple[str, list[str]]] | None = None, extra: str = "",
                     topics: str | None = None, timeout: str = "3s") -> None:
        """Write talentwatch.toml (and sources.toml, topics.toml); ``extra`` lines end up in [crawl]."""
        lines = [f'[database]\nurl = "{self.database_url}"\n', f'[crawl]\ntimeout = "{timeout}"']
        if sources is not None:
            (self.path / "sources.toml").write_text("".join(
                f'[[source]]\nid = "{sid}"\nfeeds = {json.dumps(urls)}\n\n' for sid, urls in sources))
            lines.append('sources = "sources.toml"')
        if topics is not None:
            (self.path / "topics.toml").write_text(topics)
            lines.append('topics = "topics.toml"')
        self.config.write_text("\n".join(lines) + "\n" + extra)

    def run(self, *args: str, env: dict[str, str] | None = None, timeout: float = 300) -> Result:
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("TALENTWATCH_")}
        full_env = {**inherited, "TALENTWATCH_HOME": str(self.path), **(env or {})}
        proc = subprocess.run([sys.executable, "-m", "talentwatch", "--config", str(self.config), *args],
                              capture_output=True, text=True, env=full_env, timeout=timeout, cwd=self.path)
        return Result(proc.returncode, proc.stdout, proc.stderr)

    def sql(self, query: str, **params: object) -> list[tuple]:
        engine = create_engine(self.database_url)
        try:
            with engine.connect() as conn:
                return [tuple(r) for r in conn.execute(text(query), params)]
        finally:
            engine.dispose()


def web_page(home: Home, path: str, lease: float = 120.0) -> str:
    """A page of the workbench (web/app.py) on the home's database, through Starlette's test client."""
    from starlette.testclient import TestClient

    from store.db import open_database
    from talentwatch.config import DEFAULTS_DIR
    from web.app import create_app

    engine = open_database(home.database_url)
    try:
        with TestClient(create_app(engine, DEFAULTS_DIR / "topics.toml", lease=lease)) as client:
            return client.get(path).text
    finally:
        engine.dispose()


def write_labelled(tmp_path: Path, *lines: object) -> Path:
    """tmp_path/items.jsonl for `rules test`: each line a labelled item (a dict) or raw text."""
    path = tmp_path / "items.jsonl"
    path.write_text("\n".join(line if isinstance(line, str) else json.dumps(line, ensure_ascii=False)
                              for line in lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def home(tmp_path: Path) -> Home:
    return Home(tmp_path, f"sqlite:///{tmp_path / 'talentwatch.db'}")


def pg_available() -> bool:
    try:
        engine = create_engine(PG_ADMIN_URL)
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:
        return False


@contextmanager
def scratch_database(prefix: str = "tw_test") -> Iterator[str]:
    """The URL of a new PostgreSQL database, dropped afterwards."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = create_engine(PG_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A scratch PostgreSQL database, dropped afterwards."""
    need(pg_available(), f"PostgreSQL is not reachable at {PG_ADMIN_URL}")
    with scratch_database() as url:
        yield url


@pytest.fixture
def pg_home(tmp_path: Path, pg_url: str) -> Home:
    return Home(tmp_path, pg_url)
