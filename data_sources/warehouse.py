"""Engines for the province's warehouse and for the app's own databases.

SQLite gets WAL mode and a busy timeout so the simulator, the poller and the web process can work
on one file at once without "database is locked"; PostgreSQL gets a statement timeout.

A warehouse can go away under a running poller: a PostgreSQL restart kills every pooled connection
(``pool_pre_ping`` replaces them at checkout), and a SQLite file can be replaced by a restored or
re-exported copy (pooled connections would keep reading the old file, so a checkout compares the
file's identity with the one the connection opened and reconnects when it changed).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, create_engine, event, exc, text
from sqlalchemy.engine import make_url

SQLITE_BUSY_TIMEOUT_MS = 15_000
SQLITE_PROGRESS_STEPS = 10_000
"""SQLite virtual-machine steps between two checks of the statement deadline."""


def _file_identity(path: str) -> tuple[int, int] | None:
    try:
        stat = os.stat(path)
    except OSError:
        return None
    return stat.st_dev, stat.st_ino


def create_warehouse_engine(
    url: str, *, statement_timeout_ms: int = 30_000, busy_timeout_ms: int = SQLITE_BUSY_TIMEOUT_MS, **kwargs
) -> Engine:
    """An engine for ``url`` with the per-dialect settings this project relies on."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": busy_timeout_ms / 1000}, **kwargs)
        path = parsed.database if parsed.database and parsed.database != ":memory:" else None

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, record) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()
            if path:
                record.info["file_identity"] = _file_identity(path)

        @event.listens_for(engine, "checkout")
        def _same_file(_dbapi_connection, record, _proxy) -> None:
            if path and record.info.get("file_identity") != _file_identity(path):
                raise exc.DisconnectionError(f"{path} was replaced since this connection opened it")

        return engine
    if parsed.get_backend_name() == "postgresql":
        options = f"-c statement_timeout={int(statement_timeout_ms)}"
        return create_engine(url, connect_args={"options": options}, pool_pre_ping=True, **kwargs)
    return create_engine(url, pool_pre_ping=True, **kwargs)


@contextmanager
def statement_timeout(connection: Connection, seconds: float) -> Iterator[None]:
    """Cancel any statement on ``connection`` that runs longer than ``seconds`` inside the block.

    PostgreSQL: ``SET LOCAL statement_timeout`` (the server cancels it; ends with the transaction).
    SQLite: a progress handler interrupts a statement past its deadline. Others: the engine's own.
    """
    dialect = connection.dialect.name
    milliseconds = max(1, int(seconds * 1000))
    if dialect == "postgresql":
        connection.execute(text(f"SET LOCAL statement_timeout = {milliseconds}"))
        yield
        return
    if dialect != "sqlite":
        yield
        return
    raw = connection.connection.driver_connection
    deadline = [0.0]

    def over_time() -> int:
        return 1 if time.monotonic() > deadline[0] else 0

    listener_args = (connection, "before_cursor_execute")

    def arm(*_args) -> None:
        deadline[0] = time.monotonic() + milliseconds / 1000

    event.listen(*listener_args, arm)
    raw.set_progress_handler(over_time, SQLITE_PROGRESS_STEPS)
    try:
        yield
    finally:
        raw.set_progress_handler(None, 0)
        event.remove(*listener_args, arm)
