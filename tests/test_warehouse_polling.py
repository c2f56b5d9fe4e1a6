"""Issue 3 against real SQLite and PostgreSQL warehouses: exact-once polling under out-of-order commits,
updates, late arrivals, killed connections, timeouts and restarts; retention tiers; bad rows reported."""

from __future__ import annotations

import os
import sqlite3
import threading
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import shapely
from apscheduler.events import EVENT_JOB_MAX_INSTANCES
from apscheduler.schedulers.background import BackgroundScheduler
from sqlalchemy import (
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    create_engine,
    delete,
    event,
    func,
    insert,
    select,
    text,
    update,
)

from config.datasets import load_datasets
from data_sources.admin_units import crosswalk, current_units
from data_sources.clock import to_local_naive
from data_sources.poller import DAY, DatasetPoller, to_epoch
from data_sources.quality import (
    LATE,
    MISSING_UNIT,
    OUTLINE_MARGIN_M,
    UNKNOWN_UNIT,
    QualityRules,
    province_rules,
    quality_by_ward,
    undated_check,
)
from data_sources.scheduler import STATUS_NAME, Poller
from data_sources.snapshots import MemorySnapshotStore
from data_sources.sql import DUPLICATES, OUTSIDE, Bounds
from data_sources.warehouse import create_warehouse_engine, statement_timeout
from tests.conftest import POSTGRES_ADMIN_URL
from tests.test_geo import shared_dir

HUE = crosswalk("46")
VY_DA = "19777"
OLD_CODE = "19750"  # Phường Tây Lộc before 2025, now part of Phú Xuân (19753)
HUE_BOUNDS = Bounds(15.9, 107.0, 16.8, 108.3)

DATASETS_TOML = """
[datasets.readings]
sector = "environment"
table = "readings"
key = "id"
event_time = "observed_at"
watermark = "updated_at"
unit = "ward_code"
entity = "sensor_id"
latitude = "lat"
longitude = "lon"
bucket = "5m"
poll_every = "1s"
expected_every = "1m"
late_window = "10m"
required = ["sensor_id", "value"]
natural_key = ["sensor_id", "observed_at"]
valid.value = { min = 0, max = 500 }
measures.readings = { agg = "count", column = "value" }
measures.value_sum = { agg = "sum", column = "value" }
"""

metadata = MetaData()
readings = Table(
    "readings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("sensor_id", String(16)),
    Column("ward_code", String(5)),
    Column("observed_at", DateTime),  # nullable, as in many warehouses: such rows are bad rows
    Column("value", Float),
    Column("lat", Float),
    Column("lon", Float),
    Column("updated_at", DateTime),
    Index("ix_readings_updated_at", "updated_at"),
    Index("ix_readings_observed_at", "observed_at"),
)


def reading(now: datetime, minutes_ago: float, *, sensor: str = "S1", value: float | None = 10.0, **extra) -> dict:
    """One reading observed ``minutes_ago`` before ``now`` and written then."""
    observed = now - timedelta(minutes=minutes_ago)
    row = {
        "sensor_id": sensor,
        "ward_code": VY_DA,
        "observed_at": observed,
        "value": value,
        "lat": 16.47,
        "lon": 107.6,
        "updated_at": observed,
    }
    return row | extra


@pytest.fixture
def catalogue(tmp_path):
    path = tmp_path / "datasets.toml"
    path.write_text(DATASETS_TOML, encoding="utf-8")
    return load_datasets(path)


@pytest.fixture
def warehouse(warehouse_url):
    """The readings table in an empty warehouse; yields (url, engine used by the test to write)."""
    engine = create_warehouse_engine(warehouse_url)
    metadata.create_all(engine)
    yield warehouse_url, engine
    engine.dispose()


@pytest.fixture
def poller(warehouse, catalogue, clock):
    """A poller with its own engine (as in the poller process) and a store; sleeps are recorded."""
    url, _ = warehouse
    engine = create_warehouse_engine(url)
    slept: list[float] = []
    dataset_poller = DatasetPoller(
        catalogue.get("readings"),
        engine,
        MemorySnapshotStore(),
        clock,
        QualityRules(bounds=HUE_BOUNDS, known_units=frozenset(HUE)),
        sleep=slept.append,
    )
    dataset_poller.slept = slept
    yield dataset_poller
    engine.dispose()


def write(engine, rows: list[dict]) -> None:
    with engine.begin() as connection:
        connection.execute(insert(readings), rows)


def sql_totals(engine) -> tuple[int, float]:
    """Readings and value sum straight from the warehouse, the way the KPIs should see them: valid
    values only, each (sensor, time) once (the lowest id), rows without an event time left out."""
    first = (
        select(func.min(readings.c.id))
        .where(readings.c.sensor_id.is_not(None), readings.c.observed_at.is_not(None))
        .group_by(readings.c.sensor_id, readings.c.observed_at)
    )
    valid = (readings.c.value >= 0) & (readings.c.value <= 500) & readings.c.value.not_in([-999.0, -9999.0])
    with engine.connect() as connection:
        count, total = connection.execute(
            select(func.count(readings.c.value), func.coalesce(func.sum(readings.c.value), 0)).where(
                readings.c.id.in_(first), valid
            )
        ).one()
    return int(count), float(total)


def snapshot_totals(poller, frame: str = "daily") -> tuple[int, float]:
    data = poller.store.get("readings").frame(frame)
    return int(data["readings"].sum()), float(data["value_sum"].sum())


def is_postgres(engine) -> bool:
    return engine.dialect.name == "postgresql"


class TestExactlyOnce:
    def test_rows_with_equal_timestamps_committed_out_of_order_are_counted_once(self, warehouse, poller, clock):
        _, engine = warehouse
        now = to_local_naive(clock())
        stamp = now - timedelta(minutes=1)
        early = reading(now, 1, sensor="A", value=1.0, updated_at=stamp)
        later = reading(now, 1, sensor="B", value=2.0, updated_at=stamp)
        if is_postgres(engine):
            # A takes its id first but commits after B, with the same updated_at: a real out-of-order commit
            slow = engine.connect()
            slow_transaction = slow.begin()
            slow.execute(insert(readings), [early])
            write(engine, [later])
            assert poller.poll().error is None
            assert snapshot_totals(poller) == (1, 2.0)
            slow_transaction.commit()
            slow.close()
        else:  # SQLite has one writer at a time: the later-committed row is simply written second
            write(engine, [later])
            assert poller.poll().error is None
            write(engine, [early])
        clock.advance(seconds=5)
        assert poller.poll().error is None
        clock.advance(seconds=5)
        assert poller.poll().error is None  # the late window re-reads both: still once each
        assert snapshot_totals(poller) == sql_totals(engine) == (2, 3.0)

    def test_a_row_changed_via_updated_at_days_later_recomputes_its_hourly_bucket(self, warehouse, poller, clock):
        _, engine = warehouse
        now = to_local_naive(clock())
        old = reading(now, 10 * 24 * 60, value=40.0)
        write(engine, [old, reading(now, 5, value=7.0)])
        poller.poll()
        clock.advance(minutes=1)
        with engine.begin() as connection:
            connection.execute(
                update(readings)
                .where(readings.c.observed_at == old["observed_at"])
                .values(value=44.0, updated_at=now + timedelta(minutes=1))
            )
        result = poller.poll()
        assert result.error is None and result.late_rows == 0
        hourly = poller.store.get("readings").frame("hourly")
        hour = to_epoch(old["observed_at"]) // 3600 * 3600
        assert hourly.loc[hourly["bucket"] == hour, "value_sum"].sum() == 44.0
        assert snapshot_totals(poller) == sql_totals(engine) == (2, 51.0)

    def test_rows_arriving_after_the_late_window_are_reported_and_counted_once(self, warehouse, poller, clock):
        _, engine = warehouse
        now = to_local_naive(clock())
        write(engine, [reading(now, 2, value=5.0)])
        poller.poll()
        # a back-filled reading written with its original, three-hour-old updated_at: far behind the window
        write(engine, [reading(now, 180, sensor="S9", value=8.0)])
        clock.advance(seconds=10)
        result = poller.poll()
        assert result.error is None
        assert result.late_rows == 1
        meta = poller.store.get("readings").meta["quality"]
        late = meta["late_arrivals"]
        assert late["total"] == 1 and late["by_unit"] == {VY_DA: 1}
        assert [e["unit"] for e in late["examples"]] == [VY_DA]
        assert snapshot_totals(poller) == sql_totals(engine) == (2, 13.0)  # counted too
        clock.advance(seconds=10)
        again = poller.poll()
        assert again.late_rows == 0
        assert snapshot_totals(poller) == (2, 13.0)
        wards = quality_by_ward(
            poller.store.get("readings").frame("daily"), meta["checks"], HUE, late_by_unit=late["by_unit"]
        )
        assert wards.loc[wards["ward"] == VY_DA, LATE].sum() == 1


class TestRetention:
    def test_history_moves_to_coarser_tiers_with_age_and_totals_stay_equal_to_sql(self, warehouse, poller, clock):
        _, engine = warehouse
        now = to_local_naive(clock())
        write(engine, [reading(now, m, value=float(m)) for m in (3, 61, 6 * 60)])
        poller.poll()
        recent = poller.store.get("readings").frame("recent")
        assert len(recent) == 3
        clock.advance(days=3)
        poller.poll()
        snapshot = poller.store.get("readings")
        assert snapshot.frame("recent").empty, "5-minute buckets are kept 48 hours"
        assert snapshot.frame("hourly")["readings"].sum() == 3
        assert snapshot.meta["retention"] == {"recent_hours": 48, "hourly_days": 35, "daily_days": None}
        clock.advance(days=40)
        write(engine, [reading(to_local_naive(clock()), 1, value=1.0)])
        poller.poll()
        snapshot = poller.store.get("readings")
        hourly = snapshot.frame("hourly")
        assert hourly["bucket"].min() >= to_epoch(to_local_naive(clock())) - 36 * DAY, "hourly buckets 35 days"
        assert snapshot_totals(poller) == sql_totals(engine) == (4, 3.0 + 61 + 360 + 1)

    def test_an_update_to_a_row_older_than_35_days_recomputes_its_day(self, warehouse, poller, clock):
        _, engine = warehouse
        now = to_local_naive(clock())
        old = reading(now, 50 * 24 * 60, value=3.0)
        write(engine, [old, reading(now, 50 * 24 * 60 - 30, value=4.0)])
        poller.poll()
        with engine.begin() as connection:
            connection.execute(
                update(readings)
                .where(readings.c.value == 3.0)
                .values(value=30.0, updated_at=now + timedelta(seconds=5))
            )
        clock.advance(seconds=10)
        assert poller.poll().error is None
        daily = poller.store.get("readings").frame("daily")
        day = to_epoch(old["observed_at"]) // DAY * DAY
        assert daily.loc[daily["bucket"] == day, "value_sum"].sum() == 34.0
        assert snapshot_totals(poller) == sql_totals(engine)


class TestDeletes:
    def test_rows_deleted_inside_the_late_window_leave_the_figures_at_the_next_poll(self, warehouse, poller, clock):
        _, engine = warehouse
        now = to_local_naive(clock())
        # two 5-minute buckets: 15:25 (S1, S2) and 15:20 (S7, S8)
        write(engine, [reading(now, m, sensor=f"S{m}", value=float(m)) for m in (1, 2, 7, 8)])
        assert poller.poll().error is None
        with engine.begin() as connection:  # part of one bucket, all of the other; the newest row stays
            connection.execute(delete(readings).where(readings.c.sensor_id.in_(["S2", "S7", "S8"])))
        clock.advance(seconds=10)
        result = poller.poll()
        assert result.error is None and result.reset is None and result.reconciled_days is None
        assert snapshot_totals(poller) == sql_totals(engine) == (1, 1.0)
        assert snapshot_totals(poller, "recent") == (1, 1.0), "the emptied bucket is gone from the recent tier too"

    def test_rows_deleted_from_older_history_are_reconciled_every_interval_and_counted_once(
        self, warehouse, poller, clock
    ):
        _, engine = warehouse
        now = to_local_naive(clock())
        ages = {"fine": 3 * 60, "hourly": 3 * 24 * 60, "daily": 50 * 24 * 60}  # minutes: all beyond the late window
        rows = [reading(now, 1, sensor="NEW", value=1.0)]
        for tier, minutes in ages.items():
            rows += [reading(now, minutes + i, sensor=f"{tier}{i}", value=10.0) for i in range(3)]
        write(engine, rows)
        first = poller.poll()
        assert first.error is None and first.reconciled_days == 0, "a first poll reads everything"
        assert first.next_reconcile_at == first.started_at + timedelta(hours=1)
        with engine.begin() as connection:
            connection.execute(delete(readings).where(readings.c.sensor_id.in_(["fine0", "hourly1", "hourly2"])))
            connection.execute(delete(readings).where(readings.c.sensor_id.like("daily%")))  # a whole day
        clock.advance(seconds=10)
        quiet = poller.poll()
        assert quiet.error is None and quiet.reconciled_days is None
        assert snapshot_totals(poller) == (10, 91.0), "deleted history is not seen by the late window"
        clock.advance(hours=1)
        write(engine, [reading(to_local_naive(clock()), 1, sensor="LATER", value=2.0)])
        reconciled = poller.poll()
        assert reconciled.error is None and reconciled.reconciled_days == 3
        assert reconciled.last_reconcile_at == reconciled.started_at
        assert snapshot_totals(poller) == sql_totals(engine) == (5, 33.0)
        daily = poller.store.get("readings").frame("daily")
        gone = to_epoch(now - timedelta(minutes=ages["daily"])) // DAY * DAY
        assert not (daily["bucket"] == gone).any(), "the emptied day is gone"
        clock.advance(seconds=10)
        after = poller.poll()
        assert after.reconciled_days is None
        assert snapshot_totals(poller) == sql_totals(engine) == (5, 33.0), "nothing counted twice"
        for tier in ("recent", "hourly"):
            published = poller.store.get("readings").frame(tier)
            assert published["readings"].sum() == poller.rollup_frames()[tier]["readings"].sum()

    def test_the_reconcile_interval_is_the_datasets_reconcile_every(self, tmp_path):
        text = DATASETS_TOML + 'reconcile_every = "6h"\n'
        path = tmp_path / "datasets.toml"
        path.write_text(text, encoding="utf-8")
        assert load_datasets(path).get("readings").reconcile_seconds == 6 * 3600


def test_published_parts_always_equal_the_pollers_rollups(warehouse, poller, clock):
    """History frames are stored in parts re-encoded only when a poll changed them: after inserts,
    updates, late arrivals and tier moves, the frames readers get equal the poller's own."""
    from pandas.testing import assert_frame_equal

    _, engine = warehouse
    steps = [
        lambda now: write(engine, [reading(now, m, sensor=f"S{m}", value=float(m)) for m in (2, 70, 200)]),
        lambda now: write(engine, [reading(now, 1, sensor="B"), reading(now, 60 * 30, sensor="OLD")]),
        lambda now: write(engine, [reading(now, 90, sensor="LATE", value=3.0)]),
        lambda now: None,
    ]
    for hours, step in zip((0, 1, 5, 50), steps, strict=True):
        clock.advance(hours=hours)
        step(to_local_naive(clock()))
        clock.advance(seconds=5)
        assert poller.poll().error is None
        snapshot = poller.store.get("readings")
        for name, mine in poller.rollup_frames().items():
            keys = ["bucket", "unit"] + (["entity"] if "entity" in mine else [])
            published = snapshot.frame(name).sort_values(keys).reset_index(drop=True)
            assert_frame_equal(published, mine.sort_values(keys).reset_index(drop=True), check_dtype=False)


def test_a_first_poll_reads_history_in_day_aligned_slices():
    from data_sources.poller import chunked

    assert chunked(0, 3 * DAY, DAY) == [(0, DAY), (DAY, 2 * DAY), (2 * DAY, 3 * DAY)]
    assert chunked(3600, DAY + 60, DAY) == [(3600, DAY), (DAY, DAY + 60)]
    assert chunked(DAY, DAY, DAY) == [(DAY, DAY)]


class TestHistory:
    def test_any_range_is_served_from_the_tiers_with_old_codes_kept_or_mapped(self, warehouse, poller, clock):
        from data_sources.tiers import history

        _, engine = warehouse
        now = to_local_naive(clock())
        rows = [reading(now, 60 * 24 * 20, value=1.0, ward_code=OLD_CODE)]  # 20 days ago, a pre-2025 code
        rows += [reading(now, 60 * 24 * 60, value=2.0)]  # 60 days ago: daily tier
        rows += [reading(now, m, value=4.0) for m in (3, 30)]  # recent
        write(engine, rows)
        poller.poll()
        dataset, snapshot = poller.dataset, poller.store.get("readings")
        everything = history(dataset, snapshot, now - timedelta(days=90), now + timedelta(minutes=1))
        assert everything["value_sum"].sum() == sql_totals(engine)[1] == 11.0
        assert sorted(everything["bucket_seconds"].unique()) == [300, 3600, 86400]
        assert set(everything["unit"]) == {OLD_CODE, VY_DA}, "the pre-merger view keeps raw codes"
        current = history(dataset, snapshot, now - timedelta(days=90), now, crosswalk=HUE)
        assert set(current["unit"]) == {HUE[OLD_CODE], VY_DA}
        last_hour = history(dataset, snapshot, now - timedelta(hours=1), now)
        assert last_hour["readings"].sum() == 2 and set(last_hour["bucket_seconds"]) == {300}


class TestBadRows:
    def test_each_kind_of_bad_row_is_counted_per_ward_listed_with_an_example_and_kept_out_of_figures(
        self, warehouse, poller, clock
    ):
        _, engine = warehouse
        now = to_local_naive(clock())
        write(
            engine,
            [
                reading(now, 1, sensor="OK", value=10.0),
                reading(now, 2, sensor="NULL", value=None),  # completeness
                reading(now, 3, sensor="SENT", value=-999.0),  # sentinel
                reading(now, 4, sensor="HIGH", value=900.0),  # out of range
                reading(now, 5, sensor="AWAY", value=11.0, lat=10.8, lon=106.7),  # Sài Gòn, not Huế
                reading(now, 6, sensor="CODE", value=12.0, ward_code="99999"),  # no such unit
                reading(now, 7, sensor="NOWARD", value=13.0, ward_code=None),  # missing ward code
                reading(now, 8, sensor="OLD", value=14.0, ward_code=OLD_CODE),  # pre-2025 code: fine
                reading(now, 9, sensor="DUP", value=15.0),
                reading(now, 9, sensor="DUP", value=15.0),  # the same reading twice
            ],
        )
        poller.poll()
        write(engine, [reading(now, 240, sensor="LATE", value=16.0)])  # after the late window
        clock.advance(seconds=10)
        assert poller.poll().late_rows == 1
        snapshot = poller.store.get("readings")
        quality = snapshot.meta["quality"]
        wards = quality_by_ward(
            snapshot.frame("daily"), quality["checks"], HUE, late_by_unit=quality["late_arrivals"]["by_unit"]
        )
        vy_da = wards.loc[wards["ward"] == VY_DA].iloc[0]
        assert vy_da["_missing_value"] == 1
        assert vy_da["_sentinel_value"] == 1
        assert vy_da["_invalid_value"] == 1
        assert vy_da[OUTSIDE] == 1
        assert vy_da[DUPLICATES] == 1
        assert vy_da[LATE] == 1
        assert wards.loc[wards["ward"] == "99999", UNKNOWN_UNIT].sum() == 1
        assert wards.loc[wards["unit_status"] == "missing", MISSING_UNIT].sum() == 1
        assert wards.loc[wards["ward"] == HUE[OLD_CODE], UNKNOWN_UNIT].sum() == 0, "old codes are not errors"
        examples = quality["examples"]
        by_sensor = {
            "_missing_value": None,
            "_sentinel_value": -999.0,
            "_invalid_value": 900.0,
            OUTSIDE: "10.8, 106.7",
            DUPLICATES: f"DUP, {(now - timedelta(minutes=9)).isoformat()}",
            UNKNOWN_UNIT: "99999",
            MISSING_UNIT: None,
        }
        for check, value in by_sensor.items():
            assert check in examples, f"no example for {check}"
            assert examples[check][0]["value"] == value, check
        assert quality["late_arrivals"]["examples"][0]["event_time"].startswith(str((now - timedelta(hours=4)).date()))
        # every figure leaves the bad values out: sum of valid, de-duplicated values only
        count, total = snapshot_totals(poller)
        assert (count, total) == sql_totals(engine)
        assert total == 10 + 11 + 12 + 13 + 14 + 15 + 16

    def test_rows_without_event_time_watermark_or_ward_code_are_bad_rows_per_ward_and_in_no_figure(
        self, warehouse, poller, clock
    ):
        _, engine = warehouse
        now = to_local_naive(clock())
        write(
            engine,
            [
                reading(now, 1, sensor="OK", value=10.0),
                reading(now, 2, sensor="NOTIME", value=20.0, observed_at=None),
                reading(now, 3, sensor="NOWATERMARK", value=30.0, updated_at=None),
                reading(now, 4, sensor="NOWARD", value=40.0, ward_code=None),
            ],
        )
        assert poller.poll().error is None
        # the next poll: one more undated row (in the late window, pre-2025 code) and one more row
        # without a watermark (only the late-arrival probe by key can see it)
        write(
            engine,
            [
                reading(now, 0.5, sensor="NOTIME2", value=50.0, observed_at=None, ward_code=OLD_CODE),
                reading(now, 0.5, sensor="NOWATERMARK2", value=60.0, updated_at=None),
            ],
        )
        clock.advance(seconds=10)
        result = poller.poll()
        assert result.error is None and result.late_rows == 1, "the NULL-watermark row is a late arrival"
        snapshot = poller.store.get("readings")
        quality = snapshot.meta["quality"]
        undated = undated_check(poller.dataset)
        assert undated == "_missing_observed_at" and quality["checks"][undated]["dimension"] == "completeness"
        assert quality["undated"]["total"] == 2
        wards = quality_by_ward(
            snapshot.frame("daily"),
            quality["checks"],
            HUE,
            late_by_unit=quality["late_arrivals"]["by_unit"],
            totals_by_unit={undated: quality["undated"]["by_unit"]},
        )
        vy_da = wards.loc[wards["ward"] == VY_DA].iloc[0]
        assert vy_da[undated] == 1
        assert wards.loc[wards["ward"] == HUE[OLD_CODE], undated].sum() == 1, "old code mapped to its ward"
        assert vy_da["_missing_updated_at"] == 2
        assert wards.loc[wards["unit_status"] == "missing", MISSING_UNIT].sum() == 1
        examples = quality["examples"]
        assert {e["event_time"] for e in examples[undated]} == {None}
        assert len(examples[undated]) == 2
        assert [e["column"] for e in examples["_missing_updated_at"]] == ["updated_at", "updated_at"]
        assert examples[MISSING_UNIT][0]["unit"] is None
        # undated rows are in no figure; the others count (their values are valid)
        assert snapshot_totals(poller) == sql_totals(engine) == (4, 10.0 + 30 + 40 + 60)
        # an undated row corrected inside the late window leaves the bad rows and enters the figures
        with engine.begin() as connection:
            connection.execute(
                update(readings)
                .where(readings.c.sensor_id == "NOTIME2")
                .values(observed_at=now - timedelta(minutes=1), updated_at=now + timedelta(seconds=5))
            )
        clock.advance(seconds=10)
        assert poller.poll().error is None
        quality = poller.store.get("readings").meta["quality"]
        assert quality["undated"]["by_unit"] == {VY_DA: 1}
        assert [e["value"] for e in quality["examples"][undated]] == [None]
        assert snapshot_totals(poller) == sql_totals(engine) == (5, 10.0 + 30 + 40 + 50 + 60)


@pytest.fixture(scope="module")
def hue_rules(tmp_path_factory) -> QualityRules:
    """Huế's rules with its real outline: the union of the official ward boundaries in ../shared."""
    folder = shared_dir() / "data" / "boundaries" / "46_hue" / "wards"
    if not folder.is_dir():
        pytest.fail(f"official ward boundaries not found at {folder}; set IOC_SHARED_DIR to the shared folder")
    cache = tmp_path_factory.mktemp("boundary-cache")
    return province_rules(current_units("46"), folder, frozenset(HUE), cache_dir=cache)


POINTS = {  # (lat, lon): all but the last inside Huế's bounding box
    "VYDA": (16.47, 107.6),  # Phường Vỹ Dạ
    "ALUOI": (16.2, 107.25),  # the mountains by Laos, still Huế
    "SEA": (16.6, 107.9),  # the East Sea off Thuận An
    "DANANG": (16.06, 108.2),  # Đà Nẵng, across the Hải Vân pass
    "QUANGTRI": (16.72, 107.1),  # Quảng Trị, the neighbour to the north-west
    "SAIGON": (10.8, 106.7),  # far outside the box
}


class TestProvinceOutline:
    def test_the_outline_is_the_ward_union_widened_by_the_stated_margin(self, hue_rules):
        area = hue_rules.area
        assert area is not None and area.margin_m == OUTLINE_MARGIN_M == 200
        assert hue_rules.bounds == area.bounds, "the box (the SQL pre-filter) is the widened outline's"
        inside = {name: not area.outside([lat], [lon])[0] for name, (lat, lon) in POINTS.items()}
        assert inside == {
            "VYDA": True,
            "ALUOI": True,
            "SEA": False,
            "DANANG": False,
            "QUANGTRI": False,
            "SAIGON": False,
        }
        assert all(area.bounds.contains(*POINTS[n]) for n in ("SEA", "DANANG", "QUANGTRI")), "the box lets them pass"
        # the easternmost point of the widened outline, moved back west by the margin, then east again:
        # 100 m beyond the ward edge is inside the margin, 400 m is not
        coordinates = shapely.get_coordinates(area.outline)
        lon, lat = coordinates[coordinates[:, 0].argmax()]
        assert lon == area.bounds.east
        metre = 1 / 107_000  # a metre in degrees of longitude at 16° north
        edge = lon - OUTLINE_MARGIN_M * metre
        assert not area.outside([lat], [edge + 100 * metre])[0]
        assert area.outside([lat], [edge + 400 * metre])[0]

    def test_points_in_the_box_but_outside_the_outline_are_bad_rows_listed_and_still_count_for_their_ward(
        self, warehouse, catalogue, clock, hue_rules
    ):
        url, engine = warehouse
        poller = DatasetPoller(
            catalogue.get("readings"), create_warehouse_engine(url), MemorySnapshotStore(), clock, hue_rules
        )
        now = to_local_naive(clock())
        rows = [
            reading(now, 1 + i, sensor=name, value=1.0, lat=lat, lon=lon)
            for i, (name, (lat, lon)) in enumerate(POINTS.items())
        ]
        write(engine, rows)
        assert poller.poll().error is None
        write(engine, [reading(now, 0.5, sensor="SEA2", value=1.0, lat=16.61, lon=107.91)])  # the next poll
        clock.advance(seconds=10)
        assert poller.poll().error is None
        snapshot = poller.store.get("readings")
        quality = snapshot.meta["quality"]
        for frame in ("recent", "hourly", "daily"):
            wards = quality_by_ward(snapshot.frame(frame), quality["checks"], HUE)
            assert wards.loc[wards["ward"] == VY_DA, OUTSIDE].sum() == 5, frame
        shown = {example["value"] for example in quality["examples"][OUTSIDE]}
        assert shown == {"16.61, 107.91", "16.6, 107.9", "16.06, 108.2", "16.72, 107.1", "10.8, 106.7"}
        assert snapshot_totals(poller) == sql_totals(engine) == (7, 7.0), "the ward code places a row, not its point"
        poller.engine.dispose()


class TestFailures:
    @pytest.mark.postgres
    @pytest.mark.parametrize("warehouse_url", ["postgresql"], indirect=True)
    def test_a_connection_killed_mid_poll_is_retried_with_nothing_lost_or_counted_twice(self, warehouse, poller, clock):
        _, engine = warehouse
        now = to_local_naive(clock())
        write(engine, [reading(now, m, sensor=f"S{m}", value=1.0) for m in range(1, 30)])
        poller.poll()
        write(engine, [reading(now, 0.5, sensor=f"N{i}", value=2.0) for i in range(10)])
        kills = terminate_before(poller.engine, "row_number", times=1)
        clock.advance(seconds=10)
        result = poller.poll()
        assert kills.done == 1, "the backend was terminated between the poll's statements"
        assert result.error is None and result.attempts == 2
        assert poller.slept == [0.5]
        assert snapshot_totals(poller) == sql_totals(engine) == (39, 49.0)

    @pytest.mark.postgres
    @pytest.mark.parametrize("warehouse_url", ["postgresql"], indirect=True)
    def test_a_poll_killed_on_every_attempt_changes_nothing_and_the_next_poll_catches_up(
        self, warehouse, poller, clock
    ):
        _, engine = warehouse
        now = to_local_naive(clock())
        write(engine, [reading(now, 3, value=1.0)])
        poller.poll()
        before = poller.store.version("readings")
        write(engine, [reading(now, 1, sensor="B", value=2.0)])
        kills = terminate_before(poller.engine, "row_number", times=3)
        clock.advance(seconds=10)
        failed = poller.poll()
        assert failed.error is not None and failed.attempts == 3
        assert "terminat" in failed.error or "closed" in failed.error
        assert poller.slept == [0.5, 1.0], "exponential backoff between attempts"
        assert poller.store.version("readings") == before
        assert kills.done == 3
        clock.advance(seconds=10)
        assert poller.poll().error is None
        assert snapshot_totals(poller) == sql_totals(engine) == (2, 3.0)

    @pytest.mark.postgres
    @pytest.mark.parametrize("warehouse_url", ["postgresql"], indirect=True)
    def test_the_statement_timeout_cancels_a_blocked_poll(self, warehouse, poller, clock):
        _, engine = warehouse
        now = to_local_naive(clock())
        write(engine, [reading(now, 1, value=1.0)])
        poller.dataset = replace(poller.dataset, statement_timeout_seconds=0.3)
        poller.retries = 0
        with engine.connect() as blocker:
            blocker.execute(text("LOCK TABLE readings IN ACCESS EXCLUSIVE MODE"))
            result = poller.poll()
            blocker.rollback()
        assert result.error is not None and "statement timeout" in result.error
        clock.advance(seconds=10)
        assert poller.poll().error is None
        assert snapshot_totals(poller) == sql_totals(engine) == (1, 1.0)

    def test_the_sqlite_statement_timeout_interrupts_a_runaway_statement(self, tmp_path):
        engine = create_warehouse_engine(f"sqlite:///{tmp_path / 'w.db'}")
        endless = text("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c")
        with engine.connect() as connection:
            with statement_timeout(connection, 0.05), pytest.raises(Exception, match="interrupted"):
                connection.execute(endless)
            assert connection.execute(text("SELECT 1")).scalar() == 1, "the connection stays usable"
        engine.dispose()


class Terminator:
    """Terminates the poller's PostgreSQL backend just before statements containing ``marker``."""

    def __init__(self, engine, marker: str, times: int) -> None:
        self.engine, self.marker, self.left, self.done = engine, marker, times, 0
        self.admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
        event.listen(engine, "before_cursor_execute", self)

    def __call__(self, connection, _cursor, statement, *_args) -> None:
        if self.left and self.marker in statement:
            self.left -= 1
            pid = connection.connection.driver_connection.info.backend_pid
            with self.admin.connect() as admin:
                assert admin.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid}).scalar()
            self.done += 1
            if not self.left:
                self.admin.dispose()


def terminate_before(engine, marker: str, *, times: int) -> Terminator:
    return Terminator(engine, marker, times)


def terminate_all_backends(database: str) -> int:
    """What a server restart does to a database's sessions: every one of them is gone."""
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        killed = connection.execute(
            text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = :name AND pid <> pg_backend_pid()"
            ),
            {"name": database},
        ).scalar()
    admin.dispose()
    return killed


def rename_database(old: str, new: str) -> None:
    terminate_all_backends(old)
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'ALTER DATABASE "{old}" RENAME TO "{new}"'))
    admin.dispose()


def replace_sqlite_file(path: Path, rows: list[dict], *, keep_only_first: int | None = None) -> None:
    """Swap the warehouse file for a copy (a restore or a re-export), the way a file-based warehouse
    restarts: the new file is moved in place and the old one's WAL sidecars are removed. The poller's
    pooled connection still has the old file open; it must notice and reconnect."""
    copy = path.with_name("replacement.db")
    source = sqlite3.connect(path)
    target = sqlite3.connect(copy)
    source.backup(target)
    source.close()
    if keep_only_first is not None:
        target.execute("DELETE FROM readings WHERE id > ?", (keep_only_first,))
    for row in rows:
        target.execute(
            "INSERT INTO readings (sensor_id, ward_code, observed_at, value, lat, lon, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [row[c] if not isinstance(row[c], datetime) else row[c].isoformat(" ") for c in readings.c.keys()[1:]],
        )
    target.commit()
    target.execute("PRAGMA journal_mode=DELETE")
    target.close()
    os.replace(copy, path)
    for sidecar in ("-wal", "-shm"):  # the old file's WAL must not be replayed onto the new one
        Path(f"{path}{sidecar}").unlink(missing_ok=True)


class TestWarehouseRestart:
    def test_a_restart_between_polls_loses_nothing_and_counts_nothing_twice(self, warehouse, poller, clock):
        url, engine = warehouse
        now = to_local_naive(clock())
        write(engine, [reading(now, m, sensor=f"S{m}", value=1.0) for m in range(1, 6)])
        assert poller.poll().error is None
        new_rows = [reading(now, 0.2, sensor=f"N{i}", value=2.0) for i in range(3)]
        if is_postgres(engine):
            write(engine, new_rows)
            assert terminate_all_backends(engine.url.database) >= 1, "the poller's pooled connection was killed"
        else:
            engine.dispose()  # every writer closes, then the file is swapped for a restarted copy
            replace_sqlite_file(Path(engine.url.database), new_rows)
        clock.advance(seconds=10)
        result = poller.poll()
        assert result.error is None
        assert snapshot_totals(poller) == sql_totals(engine) == (8, 11.0)

    @pytest.mark.postgres
    @pytest.mark.parametrize("warehouse_url", ["postgresql"], indirect=True)
    def test_a_warehouse_that_is_down_backs_off_and_comes_back_exactly(self, warehouse, catalogue, clock):
        """The shared PostgreSQL server cannot be restarted here: the test database is renamed away
        (every session terminated, new connections refused) and renamed back."""
        url, engine = warehouse
        name = engine.url.database
        poller_engine = create_warehouse_engine(url)
        poller = Poller(catalogue, poller_engine, MemorySnapshotStore(), clock)
        poller.pollers["readings"].sleep = lambda _s: None
        now = to_local_naive(clock())
        write(engine, [reading(now, 2, value=1.0)])
        assert poller.poll("readings").error is None
        engine.dispose()
        rename_database(name, f"{name}_down")
        try:
            clock.advance(seconds=1)
            failed = poller.poll("readings")
            assert failed.error is not None and failed.attempts == 3
            assert poller.poll("readings") is None, "backing off: no attempt before the next interval"
            clock.advance(seconds=1)
            assert poller.poll("readings").error is not None
            status = poller.store.get_status(STATUS_NAME)["datasets"]["readings"]
            assert status["consecutive_failures"] == 2
            assert datetime.fromisoformat(status["next_run"]) == clock() + timedelta(seconds=2)
        finally:
            rename_database(f"{name}_down", name)
        write(engine, [reading(now, 1, sensor="B", value=2.0)])
        clock.advance(seconds=2)
        assert poller.poll("readings").error is None
        assert snapshot_totals(poller.pollers["readings"]) == sql_totals(engine) == (2, 3.0)
        poller_engine.dispose()

    @pytest.mark.parametrize("warehouse_url", ["sqlite"], indirect=True)
    def test_a_sqlite_warehouse_restored_from_an_older_copy_is_re_aggregated(self, warehouse, poller, clock):
        _, engine = warehouse
        now = to_local_naive(clock())
        write(engine, [reading(now, m, sensor=f"S{m}", value=float(m)) for m in range(5, 0, -1)])
        poller.poll()
        engine.dispose()
        replace_sqlite_file(Path(engine.url.database), [], keep_only_first=2)  # a backup without the newest rows
        clock.advance(seconds=10)
        result = poller.poll()
        assert result.error is None and result.reset and "went back" in result.reset
        assert snapshot_totals(poller) == sql_totals(engine) == (2, 9.0)


class TestScheduling:
    def test_a_dataset_still_polling_is_not_started_again_and_missed_runs_coalesce(self, warehouse, catalogue):
        url, _ = warehouse
        engine = create_warehouse_engine(url)
        release = threading.Event()
        running = []
        peak = []

        def slow_hook(_dataset, _result):
            running.append(1)
            peak.append(len(running))
            release.wait(10)
            running.pop()

        poller = Poller(catalogue, engine, MemorySnapshotStore(), after_poll=(slow_hook,))
        scheduler = BackgroundScheduler()
        skipped = threading.Event()
        scheduler.add_listener(lambda _event: skipped.set(), EVENT_JOB_MAX_INSTANCES)
        poller.schedule(scheduler)
        job = scheduler.get_job("poll:readings")
        assert job.coalesce is True and job.max_instances == 1
        scheduler.start()
        try:
            assert skipped.wait(15), "the next run was skipped while the first still ran"
        finally:
            release.set()
            scheduler.shutdown(wait=True)
            engine.dispose()
        assert max(peak) == 1, "never two polls of one dataset at once"

    def test_backoff_doubles_after_each_failed_poll_and_resets_after_success(self, tmp_path, catalogue, clock):
        url = f"sqlite:///{tmp_path / 'empty.db'}"
        engine = create_warehouse_engine(url)
        poller = Poller(catalogue, engine, MemorySnapshotStore(), clock)
        assert poller.poll("readings").error is not None  # no table yet
        assert poller.backoff_seconds("readings") == 1
        clock.advance(seconds=1)
        assert poller.poll("readings").error is not None
        assert poller.backoff_seconds("readings") == 2
        clock.advance(seconds=1)
        assert poller.poll("readings") is None
        metadata.create_all(engine)
        clock.advance(seconds=1)
        assert poller.poll("readings").error is None
        assert poller.backoff_seconds("readings") == 0
        engine.dispose()


def test_late_arrival_counts_survive_a_poller_restart(warehouse, catalogue, clock):
    url, engine = warehouse
    store = MemorySnapshotStore()
    now = to_local_naive(clock())
    write(engine, [reading(now, 1)])
    engines = [create_warehouse_engine(url), create_warehouse_engine(url)]
    first = Poller(catalogue, engines[0], store, clock)
    first.poll("readings")
    write(engine, [reading(now, 300, sensor="LATE")])
    clock.advance(seconds=5)
    assert first.poll("readings").late_rows == 1
    restarted = Poller(catalogue, engines[1], store, clock)
    clock.advance(seconds=5)
    restarted.poll("readings")
    assert store.get("readings").meta["quality"]["late_arrivals"]["total"] == 1
    assert store.get_status(STATUS_NAME)["datasets"]["readings"]["late_total"] == 1
    for opened in engines:
        opened.dispose()
