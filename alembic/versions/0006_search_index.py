"""search index

The index that narrows a query's candidates (store/search.py): on SQLite an FTS5 table with the trigram tokenizer
over items' title, summary and text, filled in bulk after the items are stored (``item_search_state`` says how far:
store.search.catch_up; triggers keep indexed rows right when items change); on PostgreSQL a pg_trgm GIN index on
the lower-cased concatenation of the three (the extension is created if missing: pg_trgm is a trusted extension).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07
"""
from __future__ import annotations

from alembic import op

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None

EXPRESSION = "lower(coalesce(title, '') || ' ' || coalesce(summary, '') || ' ' || coalesce(text, ''))"
SQLITE = [
    "CREATE VIRTUAL TABLE item_search USING fts5(title, summary, text, content='items', content_rowid='id', "
    "tokenize='trigram', detail='none', columnsize=0)",
    # items up to indexed_until are in the index; later ones are added in bulk by store.search.catch_up
    "CREATE TABLE item_search_state (id INTEGER PRIMARY KEY CHECK (id = 1), indexed_until INTEGER NOT NULL)",
    "INSERT INTO item_search_state (id, indexed_until) VALUES (1, 0)",
    "CREATE TRIGGER items_search_delete AFTER DELETE ON items "
    "WHEN old.id <= (SELECT indexed_until FROM item_search_state) BEGIN "
    "INSERT INTO item_search(item_search, rowid, title, summary, text) "
    "VALUES ('delete', old.id, old.title, old.summary, old.text); END",
    "CREATE TRIGGER items_search_update AFTER UPDATE OF title, summary, text ON items "
    "WHEN old.id <= (SELECT indexed_until FROM item_search_state) BEGIN "
    "INSERT INTO item_search(item_search, rowid, title, summary, text) "
    "VALUES ('delete', old.id, old.title, old.summary, old.text); "
    "INSERT INTO item_search(rowid, title, summary, text) VALUES (new.id, new.title, new.summary, new.text); END",
]


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for statement in SQLITE:
            op.execute(statement)
    elif dialect == "postgresql":
        op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
        op.execute(f"CREATE INDEX ix_items_search ON items USING gin (({EXPRESSION}) gin_trgm_ops)")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for trigger in ("items_search_delete", "items_search_update"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS item_search")
        op.execute("DROP TABLE IF EXISTS item_search_state")
    elif dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_items_search")
