"""The poller against real SQLite and PostgreSQL warehouses: incremental, exact-once, never crashing."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, insert, select, text, update

from config.datasets import load_datasets
from data_sources.admin_units import crosswalk
from data_sources.clock import to_local_naive
from data_sources.demo.schema import OPEN_FEEDBACK_STATUSES, feedback_reports, metadata
from data_sources.kpis import compute_kpi
from data_sources.poller import DatasetPoller
from data_sources.snapshots import MemorySnapshotStore
from data_sources.warehouse import create_warehouse_engine

HUE = crosswalk("46")
VY_DA = "19777"
OLD_CODE = "19750"  # Phường Tây Lộc before 2025, now part of Phú Xuân (19753)


def feedback_row(now: datetime, hours_ago: float, *, ward: str = VY_DA, status: str = "received", **extra) -> dict:
    """One feedback report created ``hours_ago`` before ``now`` (naive local)."""
    created = now - timedelta(hours=hours_ago)
    row = {
        "ward_code": ward,
        "category": "traffic",
        "title": "Đèn tín hiệu hỏng",
        "status": status,
        "created_at": created,
        "deadline_at": created + timedelta(days=3),
        "resolved_at": None,
        "rating": None,
        "updated_at": created,
        "lat": None,
        "lon": None,
    }
    row.update(extra)
    return row


@pytest.fixture
def feedback(warehouse_url, clock):
    """An empty feedback table in the warehouse, a poller over it, and its store."""
    engine = create_warehouse_engine(warehouse_url)
    metadata.create_all(engine, tables=[feedback_reports])
    dataset = load_datasets().get("feedback")
    store = MemorySnapshotStore()
    poller = DatasetPoller(dataset, engine, store, clock)
    yield engine, dataset, store, poller
    engine.dispose()


def sql_open_count(engine, wards: set[str] | None = None) -> int:
    """Open reports counted directly in the warehouse."""
    statement = select(func.count()).where(feedback_reports.c.status.in_(OPEN_FEEDBACK_STATUSES))
    if wards is not None:
        statement = statement.where(feedback_reports.c.ward_code.in_(sorted(wards)))
    with engine.connect() as connection:
        return connection.execute(statement).scalar()


def figure(store, dataset, clock, kpi_id: str, **kwargs) -> float | None:
    """A KPI as the dashboards compute it from the latest snapshot."""
    snapshot = store.get(dataset.id)
    return compute_kpi(dataset, dataset.kpi(kpi_id), snapshot, clock(), HUE, **kwargs).value


class TestIncrementalPolling:
    def test_first_poll_reads_every_row_and_open_count_matches_sql(self, feedback, clock):
        engine, dataset, store, poller = feedback
        now = to_local_naive(clock())
        rows = [feedback_row(now, h) for h in (1, 2, 3)] + [feedback_row(now, 5, status="resolved")]
        with engine.begin() as connection:
            connection.execute(insert(feedback_reports), rows)
        result = poller.poll()
        assert result.error is None
        assert result.rows_read == 4
        assert figure(store, dataset, clock, "open") == sql_open_count(engine) == 3

    def test_status_change_via_updated_at_is_counted_once(self, feedback, clock):
        engine, dataset, store, poller = feedback
        now = to_local_naive(clock())
        with engine.begin() as connection:
            connection.execute(insert(feedback_reports), [feedback_row(now, h) for h in (1, 2, 30)])
        poller.poll()
        clock.advance(minutes=1)
        with engine.begin() as connection:
            connection.execute(
                update(feedback_reports)
                .where(feedback_reports.c.id == 3)
                .values(status="resolved", resolved_at=now, updated_at=now + timedelta(minutes=1))
            )
        poller.poll()
        clock.advance(minutes=1)
        poller.poll()  # the late window re-reads the same rows: nothing may be counted twice
        assert figure(store, dataset, clock, "open") == sql_open_count(engine) == 2
        assert figure(store, dataset, clock, "resolution_rate", window="7d") == pytest.approx(100 / 3)
        daily = store.get("feedback").frame("daily")
        assert daily["reports"].sum() == 3

    def test_rows_committed_late_with_an_equal_timestamp_are_picked_up(self, feedback, clock):
        engine, dataset, store, poller = feedback
        now = to_local_naive(clock())
        stamp = now - timedelta(minutes=2)
        with engine.begin() as connection:
            connection.execute(insert(feedback_reports), [feedback_row(now, 0.5, updated_at=stamp)])
        poller.poll()
        with engine.begin() as connection:  # same updated_at as the watermark, committed after the poll
            connection.execute(insert(feedback_reports), [feedback_row(now, 0.4, updated_at=stamp)])
        clock.advance(seconds=10)
        result = poller.poll()
        assert result.error is None
        assert figure(store, dataset, clock, "new_today") == 2

    def test_a_poll_with_nothing_new_rereads_only_the_late_window_and_counts_nothing_twice(self, feedback, clock):
        engine, dataset, store, poller = feedback
        now = to_local_naive(clock())
        with engine.begin() as connection:
            connection.execute(insert(feedback_reports), [feedback_row(now, 40), feedback_row(now, 50)])
        first = poller.poll()
        clock.advance(minutes=30)
        second = poller.poll()
        assert second.error is None
        assert second.window_rows == 1  # the newest row, inside watermark - late_window; not the older one
        assert second.rows_read == 0  # the window holds what it held last poll: nothing to recompute
        assert second.version == first.version + 1
        assert figure(store, dataset, clock, "open") == 2
        assert store.get("feedback").frame("daily")["reports"].sum() == 2


class TestBadRows:
    def test_sentinels_and_unknown_codes_are_counted_not_averaged(self, feedback, clock):
        engine, dataset, store, poller = feedback
        now = to_local_naive(clock())
        rows = [
            feedback_row(now, 3, status="resolved", rating=5, resolved_at=now),
            feedback_row(now, 4, status="resolved", rating=-999, resolved_at=now),
            feedback_row(now, 5, ward="99999"),
        ]
        with engine.begin() as connection:
            connection.execute(insert(feedback_reports), rows)
        poller.poll()
        assert figure(store, dataset, clock, "satisfaction") == 5.0
        assert figure(store, dataset, clock, "open") == 0  # the report with code 99999 is not a ward's
        daily = store.get("feedback").frame("daily")
        assert daily["_sentinel_rating"].sum() == 1  # -999 is "no value", not out of range
        assert daily["_invalid_rating"].sum() == 0
        assert set(daily.loc[daily["_rows"] > 0, "unit"]) == {VY_DA, "99999"}

    def test_old_ward_codes_count_under_the_new_ward(self, feedback, clock):
        engine, dataset, store, poller = feedback
        now = to_local_naive(clock())
        with engine.begin() as connection:
            connection.execute(insert(feedback_reports), [feedback_row(now, 2, ward=OLD_CODE)])
        poller.poll()
        assert figure(store, dataset, clock, "open", wards=frozenset({HUE[OLD_CODE]})) == 1
        assert HUE[OLD_CODE] == "19753"


class TestFailures:
    def test_a_failed_poll_is_recorded_and_the_next_one_recovers(self, feedback, clock):
        engine, dataset, store, poller = feedback
        now = to_local_naive(clock())
        with engine.begin() as connection:
            connection.execute(insert(feedback_reports), [feedback_row(now, 1)])
        poller.poll()
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE feedback_reports RENAME TO feedback_reports_moved"))
        failed = poller.poll()
        assert failed.error is not None and failed.version is None
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE feedback_reports_moved RENAME TO feedback_reports"))
            connection.execute(insert(feedback_reports), [feedback_row(now, 0.5)])
        clock.advance(seconds=10)
        recovered = poller.poll()
        assert recovered.error is None
        assert figure(store, dataset, clock, "open") == sql_open_count(engine) == 2


class TestAfterPollHooks:
    def test_hooks_run_after_each_successful_poll_and_a_failing_hook_does_not_stop_polling(self, feedback, clock):
        from data_sources.scheduler import Poller

        engine, _, store, _ = feedback
        seen: list[tuple[str, int | None]] = []

        def broken(dataset_id, result):
            raise RuntimeError("webhook down")

        full = load_datasets()
        catalogue = replace(full, datasets=(full.get("feedback"),))
        poller = Poller(catalogue, engine, store, clock, after_poll=(broken, lambda d, r: seen.append((d, r.version))))
        first = poller.poll("feedback")
        assert first.error is None and seen == [("feedback", first.version)]
        with engine.begin() as connection:
            connection.execute(text("ALTER TABLE feedback_reports RENAME TO feedback_reports_moved"))
        clock.advance(seconds=10)
        assert poller.poll("feedback").error is not None
        assert len(seen) == 1, "no hook after a failed poll"
