"""Engines for the province's warehouse and for the app's own databases.

SQLite gets WAL mode and a busy timeout so the simulator, the poller and the web process can work
on one file at once without "database is locked"; PostgreSQL gets a statement timeout.
"""

from __future__ import annotations

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url

SQLITE_BUSY_TIMEOUT_MS = 15_000


def create_warehouse_engine(url: str, *, statement_timeout_ms: int = 30_000, **kwargs) -> Engine:
    """An engine for ``url`` with the per-dialect settings this project relies on."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(url, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection, _record) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.close()

        return engine
    if parsed.get_backend_name() == "postgresql":
        options = f"-c statement_timeout={int(statement_timeout_ms)}"
        return create_engine(url, connect_args={"options": options}, pool_pre_ping=True, **kwargs)
    return create_engine(url, pool_pre_ping=True, **kwargs)
