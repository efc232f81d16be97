"""One daemon per SQLite database: a lock that the operating system releases when its holder dies, even by kill -9:
an exclusive ``flock`` on ``<database file>.lock``, which records the holder's pid and host. On PostgreSQL several
daemons share the work (store/leases.py); what must run in one of them at a time (the digest job, creating the
schema) takes ``advisory_lock``, a PostgreSQL advisory lock, which dies with its connection. The keys of every
advisory lock the project takes are here.
"""

from __future__ import annotations

import fcntl
import os
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import Engine, text
from sqlalchemy.engine import make_url

DIGEST_JOB_KEY = 0x74770002  # "tw" + 2: the weekly digest job
SCHEMA_KEY = 0x74770003  # "tw" + 3: creating a new database's schema
SYNC_KEY = 0x74770004  # "tw" + 4: sync_config's transaction (pg_advisory_xact_lock)
ARCHIVE_KEY = 0x74770005  # "tw" + 5: `recrawl` asking the archives (one process at a time, for their rate limits)


class AlreadyRunning(Exception):
    """Another daemon holds the lock; the message names it (pid, host)."""


def holder_name() -> str:
    return f"talentwatch run pid={os.getpid()} host={socket.gethostname()}"


class DaemonLock:
    """The SQLite database's single daemon; on PostgreSQL it holds nothing (several daemons share the feeds)."""

    def __init__(self, database_url: str) -> None:
        self.url = make_url(database_url)
        self._fd: int | None = None

    def acquire(self) -> None:
        if self.url.get_backend_name() == "sqlite":
            self._acquire_file(Path(f"{self.url.database}.lock"))

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None

    def _acquire_file(self, path: Path) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise AlreadyRunning(f"a daemon is already running on this database ({holder}; lock {path}); "
                                 "several daemons need PostgreSQL ([database] url)") from None
        os.ftruncate(fd, 0)
        os.write(fd, holder_name().encode())
        self._fd = fd


@contextmanager
def advisory_lock(engine: Engine, key: int, wait: bool = False,
                  waiting: Callable[[], None] | None = None) -> Iterator[bool]:
    """PostgreSQL's advisory lock ``key``, held until the block ends (or the connection dies): yields whether this
    process has it (``wait``: waits for it, so always True; ``waiting`` is called first when another holds it).
    Always True on SQLite (one daemon)."""
    if engine.dialect.name != "postgresql":
        yield True
        return
    with engine.connect() as conn:
        mine = bool(conn.execute(text("select pg_try_advisory_lock(:k)"), {"k": key}).scalar())
        if not mine and wait:
            if waiting:
                waiting()
            conn.execute(text("select pg_advisory_lock(:k)"), {"k": key})
            mine = True
        conn.commit()
        try:
            yield mine
        finally:
            if mine:
                conn.execute(text("select pg_advisory_unlock(:k)"), {"k": key})
                conn.commit()
