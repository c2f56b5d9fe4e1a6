"""Every configured KPI equals the same figure computed by its own plain SQL, on SQLite and PostgreSQL.

The poller builds rollups with SQLAlchemy expressions and ``data_sources.kpis`` combines snapshot
frames; the queries here are written by hand from each KPI's documented definition (windows are
whole buckets of local time, "now" is each entity's newest bucket within the latest horizon) and
share none of that code. Two instants are checked: the suite's Friday afternoon and a weekday
morning of the October 2026 floods, when gauges pass their alert levels, roads are slow and some
air stations are worse than "moderate", so that counts, maxima and comparisons are not all zero.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from config.datasets import Dataset, Kpi, load_datasets
from data_sources import aqi
from data_sources.admin_units import crosswalk
from data_sources.clock import LOCAL_TZ, to_local_naive
from data_sources.demo.generate import generate_warehouse
from data_sources.kpis import compute_kpi, kpi_by_entity, kpi_by_ward, positions
from data_sources.poller import DatasetPoller
from data_sources.snapshots import MemorySnapshotStore
from data_sources.warehouse import create_warehouse_engine
from tests.conftest import FIXED_NOW

FLOOD_MORNING = datetime(2026, 10, 14, 7, 50, tzinfo=LOCAL_TZ)
"""A Wednesday morning rush hour in the October 2026 floods of the demo (seed 20250101)."""
SCALE = 0.25
HISTORY_DAYS = 36
CATALOGUE = load_datasets()
OPEN_FEEDBACK = ("received", "assigned", "in_progress")


def floor(moment: datetime, seconds: int) -> datetime:
    """Start of the bucket of ``seconds`` holding ``moment``."""
    epoch = int((moment - datetime(1970, 1, 1)).total_seconds())
    return datetime(1970, 1, 1) + timedelta(seconds=epoch - epoch % seconds)


class Sql:
    """Plain SQL on the warehouse, with timestamps bound the way each dialect stores them."""

    def __init__(self, engine, now: datetime) -> None:
        self.engine = engine
        self.now = now
        self.sqlite = engine.dialect.name == "sqlite"

    def stamp(self, moment: datetime) -> Any:
        return f"{moment:%Y-%m-%d %H:%M:%S.%f}" if self.sqlite else moment

    def moment(self, value: Any) -> datetime:
        return datetime.fromisoformat(value) if isinstance(value, str) else value

    def rows(self, sql: str, **params: Any) -> list[tuple]:
        bound = {k: self.stamp(v) if isinstance(v, datetime) else v for k, v in params.items()}
        with self.engine.connect() as connection:
            return [tuple(row) for row in connection.execute(text(sql), bound)]

    def scalar(self, sql: str, **params: Any) -> Any:
        return self.rows(sql, **params)[0][0]

    def hour_of(self, column: str) -> str:
        """An expression naming the local hour of a timestamp column, the same text on both dialects."""
        if self.sqlite:
            return f"strftime('%Y-%m-%d %H', {column})"
        return f"to_char({column}, 'YYYY-MM-DD HH24')"

    def days_between(self, start: str, end: str) -> str:
        if self.sqlite:
            return f"(julianday({end}) - julianday({start}))"
        return f"(extract(epoch from ({end} - {start})) / 86400.0)"

    @property
    def midnight(self) -> datetime:
        return self.now.replace(hour=0, minute=0, second=0, microsecond=0)

    def since(self, window: str, bucket_seconds: int) -> datetime:
        """First bucket of a window, as the KPIs define it: 24h on the dataset's bucket, else hours."""
        span = {"24h": timedelta(hours=24), "7d": timedelta(days=7), "30d": timedelta(days=30)}[window]
        return floor(self.now - span, bucket_seconds if window == "24h" else 3600)

    def latest_rows(self, table: str, entity: str, bucket: int, horizon: int, aggregates: str, where: str = "1=1"):
        """Per entity, ``aggregates`` over the rows of its newest bucket that starts within the horizon."""
        earliest = self.now - timedelta(seconds=horizon)  # the first bucket starting at or after it counts
        if floor(earliest, bucket) != earliest:
            earliest = floor(earliest, bucket) + timedelta(seconds=bucket)
        newest = self.rows(
            f"SELECT {entity}, max(observed_at) FROM {table} WHERE observed_at >= :earliest AND observed_at <= :now "
            f"AND {where} GROUP BY {entity}",
            earliest=earliest,
            now=self.now,
        )
        result = {}
        for entity_id, latest in newest:
            start = floor(self.moment(latest), bucket)
            result[entity_id] = self.rows(
                f"SELECT {aggregates} FROM {table} WHERE {entity} = :entity AND observed_at >= :start "
                f"AND observed_at < :end AND {where}",
                entity=entity_id,
                start=start,
                end=start + timedelta(seconds=bucket),
            )[0]
        return result


def ratio(numerator, denominator, scale: float = 1.0):
    return None if not denominator else float(numerator) / float(denominator) * scale


def expected_figures(sql: Sql) -> dict[tuple[str, str], Any]:
    """Every KPI of the catalogue from hand-written SQL: value, or (value, entity/entities/baseline)."""
    now, midnight = sql.now, sql.midnight
    hour = floor(now, 3600)
    figures: dict[tuple[str, str], Any] = {}

    # --- traffic: readings every 2 minutes, 5-minute buckets, "now" = newest bucket within 15 minutes
    latest = sql.latest_rows(
        "traffic_readings",
        "segment_id",
        300,
        900,
        "sum(CASE WHEN avg_speed_kmh BETWEEN 0 AND 200 THEN avg_speed_kmh END), "
        "sum(CASE WHEN avg_speed_kmh IS NOT NULL THEN free_flow_kmh END)",
    )
    speed = sum(v[0] or 0 for v in latest.values())
    free = sum(v[1] or 0 for v in latest.values())
    figures["traffic_readings", "congestion_index"] = ratio(free, speed)
    congested = sorted(s for s, (sp, ff) in latest.items() if ff and sp is not None and sp / ff < 0.5)
    figures["traffic_readings", "segments_congested"] = (len(congested), tuple(congested))
    mean_speed = (
        "SELECT sum(CASE WHEN avg_speed_kmh BETWEEN 0 AND 200 THEN avg_speed_kmh END), "
        "count(CASE WHEN avg_speed_kmh BETWEEN 0 AND 200 THEN 1 END) FROM traffic_readings "
        "WHERE observed_at >= :start AND observed_at < :end"
    )
    current_hour = hour
    if not sql.scalar(
        "SELECT count(*) FROM traffic_readings WHERE observed_at >= :h AND observed_at <= :now", h=hour, now=now
    ):
        current_hour = hour - timedelta(hours=1)
    ((total, count),) = sql.rows(mean_speed, start=current_hour, end=current_hour + timedelta(hours=1))
    ((week_total, week_count),) = sql.rows(
        mean_speed, start=current_hour - timedelta(days=7), end=current_hour - timedelta(days=7, hours=-1)
    )
    figures["traffic_readings", "speed_vs_last_week"] = (ratio(total, count), ratio(week_total, week_count))
    figures["traffic_readings", "vehicles_today"] = float(
        sql.scalar(
            "SELECT coalesce(sum(CASE WHEN vehicle_count BETWEEN 0 AND 20000 THEN vehicle_count END), 0) "
            "FROM traffic_readings WHERE observed_at >= :midnight",
            midnight=midnight,
        )
    )
    figures["traffic_incidents", "open_incidents"] = float(
        sql.scalar("SELECT count(*) FROM traffic_incidents WHERE status = 'open'")
    )
    figures["traffic_incidents", "incidents_today"] = float(
        sql.scalar("SELECT count(*) FROM traffic_incidents WHERE reported_at >= :m", m=midnight)
    )
    figures["traffic_incidents", "incidents"] = float(
        sql.scalar("SELECT count(*) FROM traffic_incidents WHERE reported_at >= :s", s=sql.since("7d", 3600))
    )

    # --- health: hourly occupancy, "now" = newest hour within 6 hours
    latest = sql.latest_rows(
        "health_occupancy",
        "facility_id",
        3600,
        6 * 3600,
        "sum(CASE WHEN occupied_beds BETWEEN 0 AND 5000 THEN occupied_beds END), "
        "sum(CASE WHEN occupied_beds IS NOT NULL THEN beds END)",
    )
    occupied = sum(v[0] or 0 for v in latest.values())
    beds = sum(v[1] or 0 for v in latest.values())
    figures["health_occupancy", "occupancy"] = ratio(occupied, beds, 100)
    full = sorted(f for f, (o, b) in latest.items() if b and o is not None and o / b > 0.9)
    figures["health_occupancy", "facilities_above_90"] = (len(full), tuple(full))
    visits = (
        "SELECT coalesce(sum(CASE WHEN emergency_visits BETWEEN 0 AND 1000 THEN emergency_visits END), 0) "
        "FROM health_occupancy WHERE observed_at >= :start AND observed_at < :end"
    )
    today = float(sql.scalar(visits, start=midnight, end=hour + timedelta(hours=1)))
    previous = [
        float(sql.scalar(visits, start=midnight - timedelta(days=k), end=hour + timedelta(hours=1) - timedelta(days=k)))
        for k in range(1, 8)
    ]
    figures["health_occupancy", "emergency_vs_7d"] = (today, statistics.fmean(previous))
    figures["health_occupancy", "emergency_today"] = float(
        sql.scalar(visits, start=midnight, end=midnight + timedelta(days=1))
    )
    figures["health_cases", "cases_7d"] = float(
        sql.scalar("SELECT count(*) FROM health_cases WHERE reported_at >= :s", s=sql.since("7d", 3600))
    )

    # --- environment: VN_AQI per station from its last 12 hourly means, c1 = the hour of now
    valid = {"pm25": 1000, "pm10": 2000, "no2": 5000, "o3": 2000, "co": 200000, "so2": 5000}
    means = ", ".join(f"avg(CASE WHEN {p} BETWEEN 0 AND {high} THEN {p} END)" for p, high in valid.items())
    hourly = sql.rows(
        f"SELECT station_id, {sql.hour_of('observed_at')} AS hour, {means} FROM env_air_readings "
        "WHERE observed_at >= :start AND observed_at <= :now GROUP BY station_id, hour",
        start=hour - timedelta(hours=11),
        now=now,
    )
    by_station: dict[str, dict[str, tuple]] = {}
    for station, hour_text, *values in hourly:
        by_station.setdefault(station, {})[hour_text] = tuple(values)
    hours = [f"{hour - timedelta(hours=i):%Y-%m-%d %H}" for i in range(12)]
    station_aqi = {}
    for station, series in by_station.items():
        column = {p: [series.get(h, (None,) * 6)[i] for h in hours] for i, p in enumerate(valid)}
        result = aqi.hourly_aqi(
            {p: column[p][0] for p in ("no2", "o3", "co", "so2")}, {p: column[p] for p in ("pm25", "pm10")}
        )
        if result.aqi is not None:
            station_aqi[station] = result.aqi
    worst = min(station_aqi, key=lambda s: (-station_aqi[s], s)) if station_aqi else None
    figures["env_air", "aqi_max"] = (float(station_aqi[worst]) if worst else None, worst)
    poor = sorted(s for s, value in station_aqi.items() if value > 100)
    figures["env_air", "stations_above_moderate"] = (len(poor), tuple(poor))
    latest = sql.latest_rows(
        "env_air_readings",
        "station_id",
        3600,
        6 * 3600,
        "sum(CASE WHEN pm25 BETWEEN 0 AND 1000 THEN pm25 END), count(CASE WHEN pm25 BETWEEN 0 AND 1000 THEN 1 END)",
    )
    pm25 = {s: total / count for s, (total, count) in latest.items() if count}
    top = min(pm25, key=lambda s: (-pm25[s], s))
    figures["env_air", "pm25_max"] = (pm25[top], top)
    ((total, count),) = sql.rows(
        "SELECT sum(CASE WHEN pm25 BETWEEN 0 AND 1000 THEN pm25 END), "
        "count(CASE WHEN pm25 BETWEEN 0 AND 1000 THEN 1 END) FROM env_air_readings WHERE observed_at >= :s",
        s=sql.since("24h", 3600),
    )
    figures["env_air", "pm25_mean_24h"] = ratio(total, count)

    # --- rivers: 15-minute buckets, "now" = newest bucket within 45 minutes, own alert levels
    latest = sql.latest_rows(
        "env_river_levels",
        "gauge_id",
        900,
        2700,
        "max(CASE WHEN water_level_m BETWEEN -5 AND 30 THEN water_level_m END)",
    )
    levels = dict(sql.rows("SELECT gauge_id, alert_level_1 FROM env_river_gauges"))
    above = sorted(g for g, (level,) in latest.items() if level is not None and level >= levels[g])
    figures["env_river", "gauges_above_level1"] = (len(above), tuple(above))
    highest = min((g for g in latest if latest[g][0] is not None), key=lambda g: (-latest[g][0], g))
    figures["env_river", "level_max"] = (latest[highest][0], highest)
    figures["env_river", "rain_24h"] = float(
        sql.scalar(
            "SELECT coalesce(sum(CASE WHEN rainfall_mm BETWEEN 0 AND 500 THEN rainfall_mm END), 0) "
            "FROM env_river_levels WHERE observed_at >= :s",
            s=sql.since("24h", 900),
        )
    )

    # --- public services: ratios count dossiers received in the window, the median those resolved in it
    start = sql.since("30d", 3600)
    ((received, online, resolved, on_time),) = sql.rows(
        "SELECT count(*), count(CASE WHEN channel = 'online' THEN 1 END), "
        "count(CASE WHEN status = 'resolved' THEN 1 END), "
        "count(CASE WHEN status = 'resolved' AND resolved_at <= due_at THEN 1 END) "
        "FROM dossiers WHERE received_at >= :s",
        s=start,
    )
    figures["dossiers", "on_time_rate"] = ratio(on_time, resolved, 100)
    figures["dossiers", "overdue_now"] = float(
        sql.scalar("SELECT count(*) FROM dossiers WHERE status = 'processing' AND due_at < :now", now=now)
    )
    figures["dossiers", "online_rate"] = ratio(online, received, 100)
    figures["dossiers", "median_processing_days"] = median_days(
        sql, "dossiers", "received_at", "resolved_at", window_start=start
    )
    figures["dossiers", "received"] = float(received)

    # --- citizen feedback
    figures["feedback", "new_today"] = float(
        sql.scalar("SELECT count(*) FROM feedback_reports WHERE created_at >= :m", m=midnight)
    )
    open_list = ", ".join(f"'{s}'" for s in OPEN_FEEDBACK)
    figures["feedback", "open"] = float(
        sql.scalar(f"SELECT count(*) FROM feedback_reports WHERE status IN ({open_list})")
    )
    figures["feedback", "overdue"] = float(
        sql.scalar(
            f"SELECT count(*) FROM feedback_reports WHERE status IN ({open_list}) AND deadline_at < :now", now=now
        )
    )
    ((reports, closed, resolved, on_time, rating_sum, rating_count),) = sql.rows(
        "SELECT count(*), count(CASE WHEN status IN ('resolved', 'rejected') THEN 1 END), "
        "count(CASE WHEN status = 'resolved' THEN 1 END), "
        "count(CASE WHEN status = 'resolved' AND resolved_at <= deadline_at THEN 1 END), "
        "sum(CASE WHEN rating BETWEEN 1 AND 5 THEN rating END), count(CASE WHEN rating BETWEEN 1 AND 5 THEN 1 END) "
        "FROM feedback_reports WHERE created_at >= :s",
        s=start,
    )
    figures["feedback", "resolution_rate"] = ratio(closed, reports, 100)
    figures["feedback", "on_time_rate"] = ratio(on_time, resolved, 100)
    figures["feedback", "median_resolution_days"] = median_days(
        sql, "feedback_reports", "created_at", "resolved_at", window_start=start
    )
    figures["feedback", "satisfaction"] = ratio(rating_sum, rating_count)
    return figures


def median_days(sql: Sql, table: str, start: str, end: str, *, window_start: datetime, where: str = "1=1") -> Any:
    """Median of end - start (days) of the resolved records that ended in the window (started within 120 days)."""
    values = [
        float(v)
        for (v,) in sql.rows(
            f"SELECT {sql.days_between(start, end)} FROM {table} WHERE status = 'resolved' AND {end} >= :s "
            f"AND {end} <= :now AND {start} >= :lookback AND {where}",
            s=window_start,
            now=sql.now,
            lookback=sql.now - timedelta(days=120),
        )
    ]
    return statistics.median(values) if values else None


def shown_figure(dataset: Dataset, kpi: Kpi, snapshot, now: datetime, wards=None) -> Any:
    """What the dashboard computes, in the shape ``expected_figures`` uses for this kind."""
    figure = compute_kpi(dataset, kpi, snapshot, now, crosswalk("46"), wards=wards)
    if kpi.kind == "entity_count":
        return (figure.value, figure.entities)
    if kpi.kind in ("entity_max", "latest_max"):
        return (figure.value, figure.entity)
    if kpi.kind == "versus":
        return (figure.value, figure.baseline)
    return figure.value


def approx(value: Any) -> Any:
    if isinstance(value, tuple):
        return tuple(approx(v) for v in value)
    if isinstance(value, float | int) and not isinstance(value, bool):
        return pytest.approx(float(value), rel=1e-9, abs=1e-9)
    return value


@pytest.fixture(params=[FIXED_NOW, FLOOD_MORNING], ids=["friday_afternoon", "flood_morning"])
def polled(request, warehouse_url) -> Callable:
    """A demo warehouse generated up to the instant, and every dataset polled once at it."""
    now = request.param
    generate_warehouse(warehouse_url, now=now, scale=SCALE, start=(now - timedelta(days=HISTORY_DAYS)).date())
    engine = create_warehouse_engine(warehouse_url)
    store = MemorySnapshotStore()
    for dataset in CATALOGUE:
        result = DatasetPoller(dataset, engine, store, lambda: now).poll()
        assert result.error is None, result.error
    yield engine, store, to_local_naive(now)
    engine.dispose()


def test_every_kpi_equals_its_own_sql(polled):
    engine, store, now = polled
    expected = expected_figures(Sql(engine, now))
    shown = {
        (dataset.id, kpi.id): shown_figure(dataset, kpi, store.get(dataset.id), now)
        for dataset in CATALOGUE
        for kpi in dataset.kpis
    }
    assert set(shown) == set(expected), "a KPI of the catalogue has no SQL of its own here"
    mismatched = {key: (shown[key], expected[key]) for key in shown if shown[key] != approx(expected[key])}
    assert not mismatched
    # not vacuous: the demo carries data for every sector at both instants
    for key in (
        ("traffic_readings", "speed_vs_last_week"),
        ("health_occupancy", "emergency_vs_7d"),
        ("health_occupancy", "facilities_above_90"),
        ("env_air", "aqi_max"),
        ("dossiers", "overdue_now"),
        ("dossiers", "median_processing_days"),
        ("feedback", "open"),
        ("feedback", "overdue"),
        ("feedback", "median_resolution_days"),
        ("health_cases", "cases_7d"),
    ):
        value = expected[key][0] if isinstance(expected[key], tuple) else expected[key]
        assert value, key
    if now == to_local_naive(FLOOD_MORNING):
        for key in (
            ("env_river", "gauges_above_level1"),
            ("env_air", "stations_above_moderate"),
            ("traffic_readings", "segments_congested"),
            ("traffic_incidents", "incidents"),
        ):
            assert expected[key][0] if isinstance(expected[key], tuple) else expected[key], key


def ward_with_most(sql: Sql, table: str) -> tuple[str, list[str]]:
    """The current ward with most rows in ``table`` and every (old and new) code mapping onto it."""
    codes = crosswalk("46")
    counts: dict[str, int] = {}
    for code, count in sql.rows(f"SELECT ward_code, count(*) FROM {table} GROUP BY ward_code"):
        counts[codes[code]] = counts.get(codes[code], 0) + count
    ward = max(counts, key=lambda w: (counts[w], w))
    return ward, sorted(code for code, target in codes.items() if target == ward)


def test_breakdowns_by_ward_procedure_and_position_equal_sql(polled):
    engine, store, now = polled
    sql = Sql(engine, now)
    check_ward_figures(sql, store, now)
    check_dossiers_by_procedure(sql, store, now)
    check_positions(sql, store, now)


def check_ward_figures(sql: Sql, store, now: datetime) -> None:
    """A ward's figures count the rows of all its codes, old and new."""
    ward, codes = ward_with_most(sql, "feedback_reports")
    in_ward = "ward_code IN (" + ", ".join(f"'{c}'" for c in codes) + ")"
    feedback = CATALOGUE.get("feedback")
    snapshot = store.get("feedback")
    shown = kpi_by_ward(feedback, feedback.kpi("overdue"), snapshot, now, crosswalk("46"), [ward])
    overdue = sql.scalar(
        "SELECT count(*) FROM feedback_reports WHERE status IN ('received', 'assigned', 'in_progress') "
        f"AND deadline_at < :now AND {in_ward}",
        now=now,
    )
    assert shown[ward] == overdue
    median = shown_figure(feedback, feedback.kpi("median_resolution_days"), snapshot, now, frozenset([ward]))
    assert median == approx(
        median_days(
            sql, "feedback_reports", "created_at", "resolved_at", window_start=sql.since("30d", 3600), where=in_ward
        )
    )
    seven_days = compute_kpi(
        feedback, feedback.kpi("median_resolution_days"), snapshot, now, crosswalk("46"), window="7d"
    ).value
    assert seven_days == approx(
        median_days(sql, "feedback_reports", "created_at", "resolved_at", window_start=sql.since("7d", 3600))
    )


def check_dossiers_by_procedure(sql: Sql, store, now: datetime) -> None:
    """On-time rate and overdue dossiers per procedure."""
    dossiers = CATALOGUE.get("dossiers")
    snapshot = store.get("dossiers")
    rate = kpi_by_entity(dossiers, dossiers.kpi("on_time_rate"), snapshot, now, crosswalk("46"))
    overdue = kpi_by_entity(dossiers, dossiers.kpi("overdue_now"), snapshot, now, crosswalk("46"))
    rows = sql.rows(
        "SELECT procedure_code, count(CASE WHEN status = 'resolved' AND resolved_at <= due_at THEN 1 END), "
        "count(CASE WHEN status = 'resolved' THEN 1 END) FROM dossiers WHERE received_at >= :s GROUP BY procedure_code",
        s=sql.since("30d", 3600),
    )
    assert len(rows) > 5
    assert {code: ratio(a, b, 100) for code, a, b in rows if b} == approx(rate.dropna().to_dict())
    late = dict(
        sql.rows(
            "SELECT procedure_code, count(*) FROM dossiers WHERE status = 'processing' AND due_at < :now "
            "GROUP BY procedure_code",
            now=now,
        )
    )
    assert {code: float(n) for code, n in late.items()} == overdue[overdue > 0].to_dict()


def check_positions(sql: Sql, store, now: datetime) -> None:
    """Open reports and the last week's incidents, with their coordinates."""
    shown = positions(store.get("feedback"), now, crosswalk("46"))
    rows = sql.rows(
        "SELECT id, lat, lon, category FROM feedback_reports WHERE status IN ('received', 'assigned', 'in_progress') "
        "ORDER BY id"
    )
    assert [tuple(r) for r in shown[["key", "lat", "lon", "category"]].itertuples(index=False)] == rows
    incidents = positions(store.get("traffic_incidents"), now, crosswalk("46"), window="7d")
    ids = [
        i
        for (i,) in sql.rows(
            "SELECT id FROM traffic_incidents WHERE reported_at >= :s ORDER BY id", s=now - timedelta(days=7)
        )
    ]
    assert list(incidents["key"]) == ids
