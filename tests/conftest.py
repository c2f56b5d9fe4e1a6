"""Shared fixtures: an injectable clock, real PostgreSQL databases per test, warehouses on both dialects."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime

import pytest
from sqlalchemy import create_engine, text

from data_sources.clock import LOCAL_TZ, SteppingClock

POSTGRES_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
FIXED_NOW = datetime(2026, 11, 20, 15, 30, tzinfo=LOCAL_TZ)
"""The test suite's "now": a Friday afternoon in Huế."""


@pytest.fixture
def clock() -> SteppingClock:
    """A clock that stands at FIXED_NOW until a test advances it."""
    return SteppingClock(FIXED_NOW)


def create_postgres_database() -> tuple[str, str]:
    """Create a uniquely named database; returns (name, URL)."""
    name = f"ioc_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return name, f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}"


def drop_postgres_database(name: str) -> None:
    """Drop a database made by create_postgres_database, closing its connections."""
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    name, url = create_postgres_database()
    try:
        yield url
    finally:
        drop_postgres_database(name)


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def warehouse_url(request, tmp_path) -> Iterator[str]:
    """An empty warehouse database, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'warehouse.db'}"
        return
    name, url = create_postgres_database()
    try:
        yield url
    finally:
        drop_postgres_database(name)


SEED_SCALE = 0.02
SEED_DAYS = 40


@pytest.fixture(scope="session")
def seeded_warehouse(tmp_path_factory) -> str:
    """A small demo warehouse (SQLite file), made once per test process and only read by tests."""
    from datetime import timedelta

    from data_sources.demo.generate import generate_warehouse

    path = tmp_path_factory.mktemp("seeded") / "warehouse.db"
    url = f"sqlite:///{path}"
    generate_warehouse(url, now=FIXED_NOW, scale=SEED_SCALE, start=(FIXED_NOW - timedelta(days=SEED_DAYS)).date())
    return url


def fast_datasets_file(folder, poll_every: str = "2s"):
    """A copy of config/datasets.toml with every dataset polled every ``poll_every``."""
    import re
    from pathlib import Path

    source = Path(__file__).resolve().parent.parent / "config" / "datasets.toml"
    target = Path(folder) / "datasets.toml"
    target.write_text(
        re.sub(r'poll_every = "[^"]+"', f'poll_every = "{poll_every}"', source.read_text("utf-8")), "utf-8"
    )
    return target
