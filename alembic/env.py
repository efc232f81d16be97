"""Alembic environment: the URL comes from talentwatch's config, the metadata from ``store.models``."""

from __future__ import annotations

from logging.config import fileConfig

from alembic import context

from store.db import make_engine
from store.models import Base

config = context.config
if config.config_file_name and config.attributes.get("engine") is None:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def _engine():
    engine = config.attributes.get("engine")
    if engine is not None:
        return engine
    from talentwatch.config import load_config

    return make_engine(config.get_main_option("sqlalchemy.url") or load_config().database_url)


def _ours(obj, name, type_, reflected, compare_to) -> bool:  # noqa: ANN001
    """The search index (revision 0006: an FTS5 table and its shadow tables, a trigram index) is not in the
    models: it is kept by the database, never by SQLAlchemy."""
    return not (name or "").startswith(("item_search", "ix_items_search"))


def run_migrations_online() -> None:
    engine = _engine()
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            compare_type=True,
            render_as_batch=connection.dialect.name == "sqlite",
            include_object=_ours,
        )
        context.run_migrations()


if context.is_offline_mode():
    raise SystemExit("offline mode is not supported: run against a database")
run_migrations_online()
