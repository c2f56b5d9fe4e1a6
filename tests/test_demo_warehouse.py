"""The demo warehouse: generator and simulator on real SQLite files and a real PostgreSQL server."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from uuid import uuid4

import pytest
from sqlalchemy import create_engine, text

from data_sources.admin_units import current_units, legacy_units
from data_sources.clock import LOCAL_TZ, system_clock
from data_sources.demo import schema
from data_sources.demo.generate import DEFAULT_SEED, TRAFFIC_CADENCE, generate_warehouse
from data_sources.demo.simulate import Simulator, main, run

NOW = datetime(2025, 7, 15, 9, 30, tzinfo=LOCAL_TZ)
START = date(2025, 6, 5)
SCALE = 0.02
LOCAL_NOW = "2025-07-15 09:30:00.000000"
"""NOW as the warehouse stores it on SQLite: naive local time, the text SQLAlchemy writes."""
PG_SERVER = "postgresql+psycopg://postgres@127.0.0.1:5432"
DATED = {
    "traffic_readings": "observed_at",
    "health_occupancy": "observed_at",
    "env_air_readings": "observed_at",
    "env_river_levels": "observed_at",
    "traffic_incidents": "reported_at",
    "health_cases": "reported_at",
    "dossiers": "received_at",
    "feedback_reports": "created_at",
}
ENTITY_TABLES = ("ward_population", "traffic_segments", "health_facilities", "env_air_stations", "env_river_gauges")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, int]]:
    """One small generated warehouse, never modified by the tests."""
    path = tmp_path_factory.mktemp("demo") / "warehouse.db"
    counts = generate_warehouse(f"sqlite:///{path}", now=NOW, start=START, scale=SCALE)
    return path, counts


@pytest.fixture
def warehouse_copy(warehouse: tuple[Path, dict[str, int]], tmp_path: Path) -> Path:
    """A private copy of the generated warehouse for tests that change it."""
    copy = tmp_path / "copy.db"
    with closing(sqlite3.connect(warehouse[0])) as source, closing(sqlite3.connect(copy)) as target:
        source.backup(target)
    return copy


def contents(path: Path) -> dict[str, list[tuple]]:
    with closing(sqlite3.connect(path)) as conn:
        return {
            table.name: conn.execute(f"SELECT * FROM {table.name} ORDER BY 1").fetchall()
            for table in schema.metadata.sorted_tables
        }


def query(path: Path, sql: str) -> list[tuple]:
    with closing(sqlite3.connect(path)) as conn:
        return conn.execute(sql).fetchall()


def test_same_seed_and_same_instant_give_identical_tables(warehouse, tmp_path):
    path, counts = warehouse
    again = tmp_path / "again.db"
    same_instant_in_utc = NOW.astimezone(UTC)
    assert generate_warehouse(f"sqlite:///{again}", now=same_instant_in_utc, start=START, scale=SCALE) == counts
    assert contents(again) == contents(path)


def test_another_seed_gives_other_rows(warehouse, tmp_path):
    path, _counts = warehouse
    other = tmp_path / "other.db"
    generate_warehouse(f"sqlite:///{other}", now=NOW, start=START, scale=SCALE, seed=7, progress=True)
    assert contents(other)["feedback_reports"] != contents(path)["feedback_reports"]


def test_returned_counts_match_the_tables_and_every_table_has_rows(warehouse):
    path, counts = warehouse
    assert set(counts) == {table.name for table in schema.metadata.sorted_tables}
    for table, rows in counts.items():
        assert query(path, f"SELECT count(*) FROM {table}") == [(rows,)]
        assert rows > 0, table
    assert counts["ward_population"] == 40


def test_rows_before_july_2025_carry_only_legacy_codes_and_later_rows_only_current_codes(warehouse):
    path, _counts = warehouse
    current = set(current_units("46")["code"])
    legacy = set(legacy_units("46")["old_code"])
    for table, column in DATED.items():
        before = {c for (c,) in query(path, f"SELECT DISTINCT ward_code FROM {table} WHERE {column} < '2025-07-01'")}
        after = {c for (c,) in query(path, f"SELECT DISTINCT ward_code FROM {table} WHERE {column} >= '2025-07-01'")}
        assert before <= legacy, table
        assert after <= current, table
        if table in ("traffic_readings", "dossiers", "feedback_reports"):
            assert before and after and before - current, table
    for table in ENTITY_TABLES:
        assert {c for (c,) in query(path, f"SELECT ward_code FROM {table}")} <= current, table


def test_coded_columns_use_the_documented_vocabularies(warehouse):
    path, _counts = warehouse
    vocabularies = {
        ("feedback_reports", "category"): set(schema.FEEDBACK_CATEGORIES),
        ("feedback_reports", "status"): {*schema.OPEN_FEEDBACK_STATUSES, "resolved", "rejected"},
        ("feedback_reports", "channel"): {"app", "hotline", "web", "zalo"},
        ("dossiers", "status"): {"processing", "resolved", "returned"},
        ("dossiers", "channel"): {"online", "counter"},
        ("traffic_incidents", "kind"): {"accident", "flooding", "breakdown"},
        ("traffic_incidents", "status"): {"open", "cleared"},
        ("health_facilities", "kind"): {"hospital", "station"},
        ("health_cases", "disease"): {"dengue", "hand_foot_mouth", "influenza"},
    }
    for (table, column), allowed in vocabularies.items():
        assert {v for (v,) in query(path, f"SELECT DISTINCT {column} FROM {table}")} <= allowed, (table, column)


def test_timestamps_are_naive_local_time_up_to_now(warehouse):
    path, _counts = warehouse
    assert query(path, "SELECT max(observed_at) FROM traffic_readings") == [(LOCAL_NOW,)]
    for table in DATED:
        ((latest,),) = query(path, f"SELECT max(updated_at) FROM {table}")
        assert latest <= LOCAL_NOW, table


def test_population_is_synthetic_and_plausible_for_hue(warehouse):
    path, _counts = warehouse
    ((total, sources),) = query(path, "SELECT sum(population), group_concat(DISTINCT source) FROM ward_population")
    assert 1_000_000 < total < 1_400_000
    assert sources == "synthetic demo population (not official)"


def test_sqlite_warehouse_is_left_in_wal_mode(warehouse):
    path, _counts = warehouse
    assert query(path, "PRAGMA journal_mode") == [("wal",)]


def test_simulator_steps_add_feedback_and_change_existing_rows(warehouse_copy):
    before = query(warehouse_copy, "SELECT count(*) FROM feedback_reports")[0][0]
    simulator = Simulator(f"sqlite:///{warehouse_copy}", seed=DEFAULT_SEED, scale=SCALE)
    try:
        results = [simulator.step(NOW + timedelta(seconds=3 * i)) for i in range(1, 6)]
    finally:
        simulator.close()
    after = query(warehouse_copy, "SELECT count(*) FROM feedback_reports")[0][0]
    assert after - before == sum(r.get("feedback_reports", 0) for r in results) > 0
    assert all(r.get("feedback_reports_updated", 0) >= 1 for r in results)
    changed = query(
        warehouse_copy,
        f"SELECT status FROM feedback_reports WHERE created_at < '{LOCAL_NOW}' AND updated_at > '{LOCAL_NOW}'",
    )
    assert changed
    assert {status for (status,) in changed} <= {"assigned", "in_progress", "resolved", "rejected"}


def test_simulator_continues_sensor_series_where_the_generator_stopped(warehouse_copy):
    segments = query(warehouse_copy, "SELECT count(*) FROM traffic_segments")[0][0]
    simulator = Simulator(f"sqlite:///{warehouse_copy}", seed=DEFAULT_SEED, scale=SCALE)
    try:
        counts = simulator.step(NOW + timedelta(minutes=10, seconds=1))
    finally:
        simulator.close()
    assert counts["traffic_readings"] == (10 * 60 // TRAFFIC_CADENCE.fine_s) * segments
    new = query(
        warehouse_copy,
        f"SELECT observed_at, count(*) FROM traffic_readings WHERE observed_at > '{LOCAL_NOW}' GROUP BY 1",
    )
    expected_times = ["09:32", "09:34", "09:36", "09:38", "09:40"]  # every 2 minutes after 09:30:xx
    assert new == [(f"2025-07-15 {hhmm}:00.000000", segments) for hhmm in expected_times]
    river = query(warehouse_copy, f"SELECT count(*) FROM env_river_levels WHERE observed_at > '{LOCAL_NOW}'")
    assert river == [(0,)]  # gauges report every 15 minutes


def test_run_steps_the_simulator_on_the_given_clock(warehouse_copy):
    moments = iter([NOW + timedelta(seconds=3), NOW + timedelta(seconds=6)])
    before = query(warehouse_copy, "SELECT max(updated_at) FROM feedback_reports")[0][0]
    run(f"sqlite:///{warehouse_copy}", interval_seconds=0, seed=DEFAULT_SEED, steps=2, clock=lambda: next(moments))
    after = query(warehouse_copy, "SELECT max(updated_at) FROM feedback_reports")[0][0]
    assert before < after <= "2025-07-15 09:30:06.000000"


def test_command_line_simulator_runs_against_a_fresh_warehouse(tmp_path):
    path = tmp_path / "live.db"
    now = system_clock()
    generate_warehouse(f"sqlite:///{path}", now=now, start=(now - timedelta(days=3)).date(), scale=SCALE)
    before = query(path, "SELECT max(updated_at) FROM feedback_reports")[0][0]
    main(["--url", f"sqlite:///{path}", "--interval", "0", "--steps", "1", "--scale", str(SCALE)])
    assert query(path, "SELECT max(updated_at) FROM feedback_reports")[0][0] > before


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A uniquely named, freshly created PostgreSQL database, dropped afterwards."""
    name = f"ioc_test_{uuid4().hex[:8]}"
    admin = create_engine(f"{PG_SERVER}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{PG_SERVER}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.mark.postgres
def test_generator_and_simulator_work_on_postgresql(postgres_url, warehouse):
    _path, sqlite_counts = warehouse
    counts = generate_warehouse(postgres_url, now=NOW, start=START, scale=SCALE)
    assert counts == sqlite_counts
    engine = create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            for table, rows in counts.items():
                assert conn.scalar(text(f"SELECT count(*) FROM {table}")) == rows, table
        simulator = Simulator(postgres_url, seed=DEFAULT_SEED, scale=SCALE)
        try:
            step = simulator.step(NOW + timedelta(minutes=5, seconds=3))
        finally:
            simulator.close()
        with engine.connect() as conn:
            assert conn.scalar(text("SELECT count(*) FROM traffic_readings")) == (
                counts["traffic_readings"] + step["traffic_readings"]
            )
            latest = conn.scalar(text("SELECT max(updated_at) FROM feedback_reports"))
        assert latest == datetime(2025, 7, 15, 9, 35, 3)
    finally:
        engine.dispose()
