"""Engine setup and the schema's life cycle: a new database is created at head, an old one is only migrated by
``talentwatch db upgrade``."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config as AlembicConfig
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Engine, create_engine, event, inspect
from sqlalchemy.engine import make_url

from store.lock import SCHEMA_KEY, advisory_lock


class DatabaseOutdated(Exception):
    """The database is behind the latest revision: run `talentwatch db upgrade`."""


def migrations_dir() -> str:
    """The Alembic script folder: the repo's ``alembic/``, installed as ``talentwatch_migrations``."""
    spec = importlib.util.find_spec("talentwatch_migrations")
    if spec and spec.submodule_search_locations:
        return list(spec.submodule_search_locations)[0]
    return str(Path(__file__).resolve().parent.parent / "alembic")


def make_engine(url: str) -> Engine:
    """An engine for SQLite (a file, created with its folder; WAL; foreign keys on) or PostgreSQL."""
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        return create_engine(url, pool_pre_ping=True)
    if parsed.database and parsed.database != ":memory:":
        Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    busy = {} if "timeout" in parsed.query else {"timeout": 30}  # seconds to wait on a lock; ?timeout= in the URL
    engine = create_engine(url, connect_args=busy)
    event.listen(engine, "connect", _sqlite_pragmas)
    return engine


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()


def alembic_config(engine: Engine) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", migrations_dir())
    cfg.attributes["engine"] = engine
    return cfg


def head_revision(engine: Engine) -> str | None:
    return ScriptDirectory.from_config(alembic_config(engine)).get_current_head()


def current_revision(engine: Engine) -> str | None:
    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def upgrade(engine: Engine) -> tuple[str | None, str | None]:
    """Migrate to the latest revision; returns (before, after)."""
    before = current_revision(engine)
    command.upgrade(alembic_config(engine), "head")
    return before, current_revision(engine)


def open_database(url: str) -> Engine:
    """Open the database: create a new one at head; refuse one that is behind (DatabaseOutdated). On PostgreSQL,
    where several daemons may start at once, one creates the schema while the others wait."""
    engine = make_engine(url)
    with advisory_lock(engine, SCHEMA_KEY, wait=True):
        return _opened(engine)


def _opened(engine: Engine) -> Engine:
    current = current_revision(engine)
    if current is None and not inspect(engine).get_table_names():
        upgrade(engine)
    elif current != head_revision(engine):
        engine.dispose()
        raise DatabaseOutdated(
            f"the database is at revision {current or 'none'}, the latest is {head_revision(engine)}:"
            " run `talentwatch db upgrade`"
        )
    return engine
