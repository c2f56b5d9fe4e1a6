"""KPI values per alert subject equal the dashboards' figures; the 7-day preview replays the lifecycle."""

from __future__ import annotations

import shutil
from dataclasses import replace
from datetime import datetime, timedelta

import pandas as pd
import pytest
from sqlalchemy import update

from config.datasets import load_datasets
from data_sources.admin_units import REFORM_EPOCH, Crosswalk, current_units
from data_sources.admin_units import crosswalk as unit_crosswalk
from data_sources.alerts.model import HOURLY_ENTITY_WINDOWS, Rule, Threshold
from data_sources.alerts.values import (
    HOUR,
    HOURLY_ENTITY,
    KNOWN_KINDS,
    SubjectValues,
    is_stale,
    observations,
    preview,
)
from data_sources.clock import from_local_naive
from data_sources.demo import schema
from data_sources.kpis import compute_kpi, kpi_by_entity
from data_sources.poller import BUCKET, ENTITY, bucket_start, to_epoch
from data_sources.scheduler import Poller
from data_sources.snapshots import MemorySnapshotStore, Snapshot
from data_sources.warehouse import create_warehouse_engine
from tests.conftest import FIXED_NOW


@pytest.fixture(scope="module")
def polled(seeded_warehouse):
    """Every dataset of the seeded warehouse polled once at FIXED_NOW."""
    catalogue = load_datasets()
    store = MemorySnapshotStore()
    Poller(catalogue, create_warehouse_engine(seeded_warehouse), store, lambda: FIXED_NOW).poll_all()
    wards = list(current_units("46")["code"])
    return catalogue, store, unit_crosswalk("46"), wards


def only_entity(snapshot: Snapshot, entity: str) -> Snapshot:
    frames = {
        name: frame.loc[frame[ENTITY] == entity] if ENTITY in frame else frame
        for name, frame in snapshot.frames.items()
    }
    return replace(snapshot, frames=frames)


def assert_values_equal_compute_kpi(dataset, snapshot, now, crosswalk, wards, kpis=None) -> int:
    """Every ward's, entity's and the province's value of each KPI equals ``compute_kpi`` over that ward,
    that entity's rows or the whole province; returns how many non-zero figures were compared."""
    values = SubjectValues(dataset, snapshot, now, crosswalk, wards)
    checked = 0
    for kpi in kpis or dataset.kpis:
        by_ward = values.by_ward(kpi)
        for ward in wards:
            expected = compute_kpi(dataset, kpi, snapshot, now, crosswalk, wards=frozenset([ward])).value
            assert by_ward[ward] == pytest.approx(expected, nan_ok=True), (dataset.id, kpi.id, ward)
            checked += expected is not None and expected != 0
        province = compute_kpi(dataset, kpi, snapshot, now, crosswalk).value
        assert values.province(kpi) == pytest.approx(province, rel=1e-12, nan_ok=True), (dataset.id, kpi.id)
        if dataset.entity is None or kpi.kind not in KNOWN_KINDS:
            continue
        per_entity_rollup = kpi.kind in ("sum", "ratio", "mean") and kpi.window in HOURLY_ENTITY_WINDOWS
        by_rollup = kpi_by_entity(dataset, kpi, snapshot, now, crosswalk) if per_entity_rollup else None
        for entity, value in values.by_entity(kpi).items():
            if by_rollup is not None:  # what the dashboards show per entity (e.g. per procedure)
                expected = by_rollup.get(entity, 0.0 if kpi.kind == "sum" else None)
            else:
                expected = compute_kpi(dataset, kpi, only_entity(snapshot, entity), now, crosswalk).value
            assert value == pytest.approx(expected, nan_ok=True), (dataset.id, kpi.id, entity)
            checked += expected is not None and expected != 0
    return checked


class TestValuesEqualTheDashboards:
    def test_every_kpi_per_ward_entity_and_province_equals_compute_kpi(self, polled):
        catalogue, store, crosswalk, wards = polled
        checked = sum(
            assert_values_equal_compute_kpi(dataset, store.get(dataset.id), FIXED_NOW, crosswalk, wards)
            for dataset in catalogue
        )
        assert checked > 120, "the comparison saw real, non-zero figures"

    def test_entities_are_those_of_the_reference_table_and_those_with_rows_that_count(self, polled):
        catalogue, store, crosswalk, wards = polled
        dataset = catalogue.get("env_air")
        snapshot = store.get("env_air")
        stations = set(snapshot.frame("entities")["entity"])
        recent = snapshot.frame("recent")
        stray = recent.iloc[[-1]].assign(entity="mobile-1")  # a station missing from the reference table
        moved = replace(snapshot, frames={**snapshot.frames, "recent": pd.concat([recent, stray])})
        values = SubjectValues(dataset, moved, FIXED_NOW, crosswalk, wards)
        assert set(values.by_entity(dataset.kpi("pm25_mean_24h"))) == stations | {"mobile-1"}
        assert values.by_entity(dataset.kpi("pm25_max"))["mobile-1"] is not None

    def test_entity_attributes_become_each_gauges_thresholds(self, polled):
        catalogue, store, crosswalk, wards = polled
        dataset = catalogue.get("env_river")
        snapshot = store.get(dataset.id)
        values = SubjectValues(dataset, snapshot, FIXED_NOW, crosswalk, wards)
        rule = Rule(
            "Báo động II",
            "env_river",
            "level_max",
            "each_entity",
            ">=",
            Threshold(attribute="alert_level_2"),
            Threshold(attribute="alert_level_3"),
        )
        seen = observations(rule, dataset.kpi("level_max"), values, stale=False)
        entities = snapshot.frame("entities").set_index("entity")
        assert len(seen) == len(entities) > 0
        for subject, observation in seen.items():
            gauge = subject.removeprefix("entity:")
            assert observation.warning == entities.at[gauge, "alert_level_2"]
            assert observation.critical == entities.at[gauge, "alert_level_3"]
            assert values.entity_ward(gauge) in wards


class TestStaleness:
    def test_stale_after_two_poll_intervals_without_a_poll(self, polled):
        catalogue, store, _, _ = polled
        dataset = catalogue.get("feedback")
        snapshot = store.get("feedback")
        assert not is_stale(dataset, snapshot, FIXED_NOW)
        assert not is_stale(dataset, snapshot, FIXED_NOW + timedelta(seconds=2 * dataset.poll_seconds))
        assert is_stale(dataset, snapshot, FIXED_NOW + timedelta(seconds=2 * dataset.poll_seconds + 1))
        assert is_stale(dataset, None, FIXED_NOW)


def hourly_snapshot(dataset_id: str, ward: str, values: list[float], measure: str) -> Snapshot:
    """An hourly frame holding one value per hour for ``ward``, ending with the hour of FIXED_NOW."""
    end = (to_epoch(FIXED_NOW) // HOUR) * HOUR
    buckets = [end - HOUR * (len(values) - 1 - i) for i in range(len(values))]
    frame = pd.DataFrame({BUCKET: buckets, "unit": pd.Series([ward] * len(values), dtype="string"), measure: values})
    return Snapshot(dataset_id, 1, FIXED_NOW, meta={"polled_at": FIXED_NOW.isoformat()}, frames={"hourly": frame})


class TestPreview:
    def test_replays_hold_and_hysteresis_hour_by_hour(self, polled):
        catalogue, _, crosswalk, wards = polled
        dataset = catalogue.get("env_river")
        levels = [1.0] * 150 + [3.2, 3.4, 4.1, 4.5, 3.0, 2.95, 2.0] + [1.0] * 11
        snapshot = hourly_snapshot("env_river", "19753", levels, "level_max")
        rule = Rule(
            "Mực nước",
            "env_river",
            "level_max",
            "ward",
            ">=",
            Threshold(3.0),
            Threshold(4.0),
            ward="19753",
            hold_minutes=60,
            clear_margin=0.1,
        )
        result = preview(rule, dataset, dataset.kpi("level_max"), snapshot, FIXED_NOW, crosswalk, wards)
        assert len(result.times) == 7 * 24 and result.times[-1] > FIXED_NOW - timedelta(hours=1)
        assert result.series["ward:19753"] == levels[-168:]
        [episode] = result.episodes
        first_breach = result.times[150]
        assert episode.fired_at == first_breach + timedelta(hours=1), "held one hour before firing"
        assert episode.severity == "critical" and episode.peak == 4.5
        assert episode.resolved_at == result.times[156], "3.0 and 2.95 are within the 0.1 margin"

    def test_a_windowed_kpi_at_each_hour_equals_compute_kpi_at_that_hour(self, polled):
        catalogue, store, crosswalk, wards = polled
        dataset = catalogue.get("health_cases")
        kpi = dataset.kpi("cases_7d")
        snapshot = store.get("health_cases")
        rule = Rule("Ca bệnh", dataset.id, kpi.id, "province", ">", Threshold(0.5), None)
        result = preview(rule, dataset, kpi, snapshot, FIXED_NOW, crosswalk, wards)
        hourly = snapshot.frame("hourly")
        for index in (0, 50, 120, 167):
            moment = result.times[index]
            cut = replace(snapshot, frames={"hourly": hourly.loc[hourly[BUCKET] < to_epoch(moment) + 1]})
            expected = compute_kpi(dataset, kpi, cut, moment, crosswalk).value
            assert result.series["province"][index] == pytest.approx(expected)
        assert sum(result.series["province"]) > 0, "the seeded warehouse has cases in the window"
        assert "window_partial" not in result.notes, "7 days back plus a 7-day window fit in the 35 hourly days"

    def test_a_30_day_window_replayed_7_days_back_says_its_first_hours_read_short(self, polled):
        catalogue, store, crosswalk, wards = polled
        dataset = catalogue.get("dossiers")
        rule = Rule("Đúng hạn", dataset.id, "on_time_rate", "province", "<", Threshold(90), None)
        result = preview(rule, dataset, dataset.kpi("on_time_rate"), store.get("dossiers"), FIXED_NOW, crosswalk, wards)
        assert "window_partial" in result.notes and len(result.times) == 7 * 24

    def test_current_counts_have_no_history_and_say_so(self, polled):
        catalogue, store, crosswalk, wards = polled
        dataset = catalogue.get("feedback")
        rule = Rule("Tồn đọng", "feedback", "open", "each_ward", ">", Threshold(0), None)
        result = preview(rule, dataset, dataset.kpi("open"), store.get("feedback"), FIXED_NOW, crosswalk, wards)
        assert result.notes == ("no_history",)
        assert len(result.times) == 1
        assert {e.subject for e in result.episodes} == {
            s for s, v in result.series.items() if v[0] is not None and v[0] > 0
        }


KIM_LONG = "TV01"
FLOOD_LEVEL = 3.8
"""Above Kim Long's flood alert level III (3.5 m); the seeded data stays below every gauge's level II."""


@pytest.fixture(scope="module")
def flood_five_days_ago(seeded_warehouse, tmp_path_factory):
    """A copy of the seeded warehouse in which Kim Long stood above its flood level III for one hour,
    five days before FIXED_NOW, polled once at FIXED_NOW like the poller does: (catalogue, snapshot, hour)."""
    path = tmp_path_factory.mktemp("flood") / "warehouse.db"
    shutil.copy(seeded_warehouse.removeprefix("sqlite:///"), path)
    engine = create_warehouse_engine(f"sqlite:///{path}")
    hour = (to_epoch(FIXED_NOW - timedelta(days=5)) // HOUR) * HOUR
    start = bucket_start(hour)
    levels = schema.env_river_levels
    inside = (
        levels.c.gauge_id == KIM_LONG,
        levels.c.observed_at >= start,
        levels.c.observed_at < start + timedelta(hours=1),
    )
    with engine.begin() as connection:
        changed = connection.execute(update(levels).where(*inside).values(water_level_m=FLOOD_LEVEL)).rowcount
        assert changed >= 1, "the seeded warehouse has Kim Long readings five days ago"
    catalogue = load_datasets()
    store = MemorySnapshotStore()
    Poller(catalogue, engine, store, lambda: FIXED_NOW).poll_all()
    engine.dispose()
    return catalogue, store.get("env_river"), hour


class TestPerEntityPreview:
    def rule(self) -> Rule:
        return Rule(
            "Lũ theo báo động của từng trạm",
            "env_river",
            "level_max",
            "each_entity",
            ">=",
            Threshold(attribute="alert_level_2"),
            Threshold(attribute="alert_level_3"),
        )

    def test_replays_seven_days_per_gauge_and_finds_a_flood_five_days_ago(self, flood_five_days_ago, polled):
        catalogue, snapshot, hour = flood_five_days_ago
        _, _, crosswalk, wards = polled
        dataset = catalogue.get("env_river")
        assert dataset.by_entity
        recent = snapshot.frame("recent")
        assert snapshot.meta["tiers"]["recent_from"] > hour and not (recent[BUCKET] < hour + HOUR).any(), (
            "the crossing is older than the 48-hour fine tier: only the hourly tier holds it"
        )
        result = preview(self.rule(), dataset, dataset.kpi("level_max"), snapshot, FIXED_NOW, crosswalk, wards)
        assert len(result.times) == 7 * 24 and "entity_48h" not in result.notes
        assert set(result.series) == {f"entity:{g}" for g in ("TV01", "TV02", "TV03", "TV04", "TV05")}
        [episode] = result.episodes
        end_of_hour = from_local_naive(bucket_start(hour + HOUR - 1))
        assert (episode.subject, episode.severity, episode.peak) == (f"entity:{KIM_LONG}", "critical", FLOOD_LEVEL)
        assert episode.fired_at == end_of_hour and episode.resolved_at == end_of_hour + timedelta(hours=1)
        assert timedelta(days=4, hours=23) < FIXED_NOW - episode.fired_at <= timedelta(days=5)
        assert result.critical[f"entity:{KIM_LONG}"] == 3.5 and result.warning[f"entity:{KIM_LONG}"] == 2.0

    def test_without_the_per_entity_rollup_only_48_hours_replay_and_the_preview_says_why(
        self, flood_five_days_ago, polled
    ):
        catalogue, snapshot, _ = flood_five_days_ago
        _, _, crosswalk, wards = polled
        dataset = catalogue.get("env_river")
        older = replace(snapshot, frames={k: v for k, v in snapshot.frames.items() if k != HOURLY_ENTITY})
        result = preview(self.rule(), dataset, dataset.kpi("level_max"), older, FIXED_NOW, crosswalk, wards)
        assert len(result.times) == 48 and "entity_48h" in result.notes
        assert result.episodes == []

    def test_a_7_day_kpi_per_entity_replays_from_the_per_entity_rollup(self, polled):
        catalogue, store, crosswalk, wards = polled
        dataset = catalogue.get("dossiers")
        kpi = dataset.kpi("received")
        snapshot = store.get("dossiers")
        rule = Rule("Hồ sơ theo thủ tục", "dossiers", "received", "each_entity", ">", Threshold(1e9), None)
        result = preview(rule, dataset, kpi, snapshot, FIXED_NOW, crosswalk, wards)
        assert len(result.times) == 7 * 24
        now_values = SubjectValues(dataset, snapshot, FIXED_NOW, crosswalk, wards).by_entity(kpi)
        for subject, series in result.series.items():
            assert series[-1] == pytest.approx(now_values[subject.removeprefix("entity:")]), subject
        assert sum(v for series in result.series.values() for v in series if v) > 0


def frame_of(rows: list[tuple], columns: list[str]) -> pd.DataFrame:
    """A snapshot frame from row tuples, unit and entity as pandas strings (as the poller publishes them)."""
    frame = pd.DataFrame(rows, columns=columns)
    for name in ("unit", "entity"):
        if name in frame:
            frame[name] = frame[name].astype("string")
    return frame


class TestAwkwardRows:
    """Hand-made frames with the rows that differ between one grouped pass and ``compute_kpi`` per ward
    when done carelessly: NaN measures, rows past the "now" horizon, rows without an entity, unknown
    unit codes, zero denominators, even and odd counts of durations, codes read by date around 2025."""

    NOW_EPOCH = to_epoch(FIXED_NOW)

    def test_latest_values_skip_nan_old_and_unplaced_rows(self, polled):
        catalogue, _, crosswalk, wards = polled
        river = catalogue.get("env_river")  # latest_max of one measure (max); horizon 3 x 900 s
        now = self.NOW_EPOCH - self.NOW_EPOCH % 900
        rows = [
            (now - 900, "19753", "G1", 2.0),
            (now - 1800, "19753", "G1", 5.0),  # older than G1's newest bucket: does not count
            (now - 900, "19753", "G2", float("nan")),  # G2's newest value is missing: no value
            (now - 1800, "19753", "G2", 3.0),
            (now - 3600, "19774", "G3", 9.0),  # past the horizon
            (now, "19774", "G4", 1.0),
            (now, "19774", "G4", 1.5),
            (now, "19777", "G5", float("nan")),  # a ward whose only gauge has no value
            (now, "99999", "G6", 8.0),  # unknown unit code
            (now, "19753", None, 7.0),  # no entity
            (now - 900, "19750", "G7", 4.0),  # a pre-2025 code of 19753
        ]
        recent = frame_of(rows, [BUCKET, "unit", ENTITY, "level_max"])
        snapshot = Snapshot("env_river", 1, FIXED_NOW, frames={"recent": recent})
        assert_values_equal_compute_kpi(river, snapshot, FIXED_NOW, crosswalk, wards, [river.kpi("level_max")])
        values = SubjectValues(river, snapshot, FIXED_NOW, crosswalk, wards)
        assert values.by_ward(river.kpi("level_max"))["19753"] == 4.0
        assert values.by_ward(river.kpi("level_max"))["19777"] is None

    def test_latest_ratios_with_zero_counts(self, polled):
        catalogue, _, crosswalk, wards = polled
        air = catalogue.get("env_air")  # latest_max of a ratio (pm25_sum / pm25_count), mean over 24h
        hour = self.NOW_EPOCH - self.NOW_EPOCH % 3600
        rows = [
            (hour, "19753", "S1", 30.0, 2.0),
            (hour, "19753", "S2", 5.0, 0.0),  # no valid reading: no value
            (hour - 3600, "19774", "S3", 10.0, 1.0),
            (hour, "19774", "S3", 0.0, 0.0),
            (hour - 7200, "19777", "S4", float("nan"), 1.0),
        ]
        recent = frame_of(rows, [BUCKET, "unit", ENTITY, "pm25_sum", "pm25_count"])
        snapshot = Snapshot("env_air", 1, FIXED_NOW, frames={"recent": recent})
        kpis = [air.kpi("pm25_max"), air.kpi("pm25_mean_24h")]
        assert assert_values_equal_compute_kpi(air, snapshot, FIXED_NOW, crosswalk, wards, kpis) > 3
        traffic = catalogue.get("traffic_readings")  # latest_ratio: free-flow over speed sums
        five = self.NOW_EPOCH - self.NOW_EPOCH % 300
        rows = [
            (five, "19753", "R1", 40.0, 20.0),
            (five - 300, "19753", "R2", 50.0, 50.0),
            (five, "19774", "R3", 10.0, 0.0),  # zero denominator: no value
            (five, "19777", "R4", float("nan"), 10.0),
        ]
        recent = frame_of(rows, [BUCKET, "unit", ENTITY, "free_flow_sum", "speed_sum"])
        snapshot = Snapshot("traffic_readings", 1, FIXED_NOW, frames={"recent": recent})
        congestion = [traffic.kpi("congestion_index")]
        assert assert_values_equal_compute_kpi(traffic, snapshot, FIXED_NOW, crosswalk, wards, congestion) > 2

    def test_medians_are_exact_for_even_and_odd_counts(self, polled):
        catalogue, _, crosswalk, wards = polled
        feedback = catalogue.get("feedback")
        day = 86400
        rows = [
            ("19753", "resolution", self.NOW_EPOCH - day, 1.0),
            ("19753", "resolution", self.NOW_EPOCH - 2 * day, 4.0),
            ("19753", "resolution", self.NOW_EPOCH - 3 * day, 2.5),
            ("19774", "resolution", self.NOW_EPOCH - day, 3.0),
            ("19774", "resolution", self.NOW_EPOCH - day, 1.0),
            ("19774", "resolution", self.NOW_EPOCH - day, 2.0),  # odd count: 2
            ("19774", "resolution", self.NOW_EPOCH - 40 * day, 99.0),  # before the 30-day window
            ("19774", "resolution", self.NOW_EPOCH + 60, 99.0),  # ends after now
            ("19774", "other", self.NOW_EPOCH - day, 99.0),  # another duration
            ("19756", "resolution", self.NOW_EPOCH - day, 7.0),  # a pre-2025 code of 19753: even count, 3.25
            ("99999", "resolution", self.NOW_EPOCH - day, 99.0),
        ]
        durations = frame_of(rows, ["unit", "duration", "end", "value"])
        snapshot = Snapshot("feedback", 1, FIXED_NOW, frames={"durations": durations})
        median = [feedback.kpi("median_resolution_days")]
        assert assert_values_equal_compute_kpi(feedback, snapshot, FIXED_NOW, crosswalk, wards, median) == 2
        values = SubjectValues(feedback, snapshot, FIXED_NOW, crosswalk, wards)
        assert values.by_ward(median[0])["19753"] == 3.25 and values.by_ward(median[0])["19774"] == 2.0
        assert values.province(median[0]) == 2.5

    def test_codes_that_changed_meaning_in_2025_are_read_by_date(self, polled):
        catalogue, _, crosswalk, wards = polled
        feedback = catalogue.get("feedback")
        dated = Crosswalk(dict(crosswalk), {"19774": "19753"})  # 19774 meant 19753 before 1 July 2025
        now = from_local_naive(datetime(2025, 7, 1, 10, 0))
        before, after = REFORM_EPOCH - 4 * HOUR, REFORM_EPOCH + 8 * HOUR
        hourly = frame_of(
            [
                (before, "19774", 5.0, 4.0),
                (after, "19774", 3.0, float("nan")),
                (after, "19753", 2.0, 2.0),
                (before, "19777", 1.0, 0.0),
            ],
            [BUCKET, "unit", "reports", "closed"],
        )
        recent = hourly.loc[hourly[BUCKET] >= to_epoch(now) - 2 * 86400]
        snapshot = Snapshot("feedback", 1, now, frames={"hourly": hourly, "recent": recent})
        kpis = [feedback.kpi("new_today"), feedback.kpi("resolution_rate")]
        assert assert_values_equal_compute_kpi(feedback, snapshot, now, dated, wards, kpis) == 3
        values = SubjectValues(feedback, snapshot, now, dated, wards)
        assert values.by_ward(feedback.kpi("resolution_rate"))["19753"] == pytest.approx(6 / 7 * 100)
