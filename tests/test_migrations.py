"""Migrations: upgrade to head on an empty SQLite file and on PostgreSQL; no drift between models and revisions."""

from __future__ import annotations

from pathlib import Path

import pytest
from alembic import command
from conftest import Home
from sqlalchemy import inspect, text

from store.db import DatabaseOutdated, alembic_config, current_revision, head_revision, make_engine, open_database

TABLES = {"sources", "feeds", "items", "topics", "entities", "tags", "item_entities", "alembic_version",
          "story_keys", "term_counts", "digests", "judgements", "alert_messages", "alert_stories",
          "workers"}


def check_upgrade_and_drift(url: str) -> None:
    engine = make_engine(url)
    try:
        assert current_revision(engine) is None
        command.upgrade(alembic_config(engine), "head")
        assert current_revision(engine) == head_revision(engine)
        names = set(inspect(engine).get_table_names())
        assert {n for n in names if not n.startswith("item_search")} == TABLES
        command.check(alembic_config(engine))  # raises if the models and the revisions differ
    finally:
        engine.dispose()


def test_upgrade_and_check_on_sqlite(tmp_path: Path) -> None:
    check_upgrade_and_drift(f"sqlite:///{tmp_path / 'new.db'}")


def test_upgrade_and_check_on_postgresql(pg_url: str) -> None:
    check_upgrade_and_drift(pg_url)


def test_new_database_is_created_at_head(tmp_path: Path) -> None:
    engine = open_database(f"sqlite:///{tmp_path / 'sub' / 'fresh.db'}")
    assert current_revision(engine) == head_revision(engine)
    engine.dispose()


def test_outdated_database_is_refused_until_db_upgrade(home: Home) -> None:
    engine = make_engine(home.database_url)
    with engine.begin() as conn:  # a database from before the first revision: tables, no version
        conn.execute(text("create table legacy (id integer primary key)"))
    engine.dispose()
    with pytest.raises(DatabaseOutdated, match="db upgrade"):
        open_database(home.database_url)
    home.write_config()
    result = home.run("items")
    assert result.code == 2 and "talentwatch db upgrade" in result.err
    result = home.run("db", "upgrade")
    assert result.code == 0, result.err
    assert home.run("items", "--format", "json").code == 0
