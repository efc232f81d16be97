"""One daemon per database: a lock that the operating system releases when its holder dies, even by kill -9.

SQLite: an exclusive ``flock`` on ``<database file>.lock``, which records the holder's pid and host.
PostgreSQL: a session advisory lock held on a dedicated connection whose application_name names the holder.
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path

from sqlalchemy import Connection, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

ADVISORY_KEY = 0x74770001  # "tw" + 1: talentwatch's daemon


class AlreadyRunning(Exception):
    """Another daemon holds the lock; the message names it (pid, host)."""


def holder_name() -> str:
    return f"talentwatch run pid={os.getpid()} host={socket.gethostname()}"


class DaemonLock:
    def __init__(self, database_url: str) -> None:
        self.url = make_url(database_url)
        self._fd: int | None = None
        self._conn: Connection | None = None

    def acquire(self) -> None:
        if self.url.get_backend_name() == "sqlite":
            self._acquire_file(Path(f"{self.url.database}.lock"))
        else:
            self._acquire_advisory()

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor releases the flock
            self._fd = None
        if self._conn is not None:
            self._conn.close()
            self._conn.engine.dispose()
            self._conn = None

    def _acquire_file(self, path: Path) -> None:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 200).decode("utf-8", "replace").strip() or "another process"
            os.close(fd)
            raise AlreadyRunning(f"a daemon is already running on this database ({holder}; lock {path})") from None
        os.ftruncate(fd, 0)
        os.write(fd, holder_name().encode())
        self._fd = fd

    def _acquire_advisory(self) -> None:
        engine = create_engine(self.url, poolclass=NullPool, connect_args={"application_name": holder_name()[:63]})
        conn = engine.connect()
        if conn.execute(text("select pg_try_advisory_lock(:k)"), {"k": ADVISORY_KEY}).scalar():
            conn.commit()
            self._conn = conn
            return
        holder = conn.execute(text(
            "select a.application_name from pg_locks l join pg_stat_activity a on a.pid = l.pid"
            " where l.locktype = 'advisory' and l.objid = :k and l.granted"), {"k": ADVISORY_KEY}).scalar()
        conn.close()
        engine.dispose()
        raise AlreadyRunning(f"a daemon is already running on this database ({holder or 'another process'})")
