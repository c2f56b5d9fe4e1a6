"""The sector KPI kinds as pure functions over hand-made snapshot frames (no warehouse)."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pandas as pd
import pytest

from config.datasets import Kpi, load_datasets
from data_sources import aqi
from data_sources.kpis import (
    alert_level,
    compute_kpi,
    congestion_class,
    entity_values,
    kpi_by_entity,
    positions,
    station_aqi,
)
from data_sources.poller import to_epoch
from data_sources.snapshots import Snapshot

NOW = datetime(2026, 11, 20, 15, 30)  # naive local time
HOUR = 3600
CATALOGUE = load_datasets()
WARD_A, WARD_B = "19753", "19774"  # two current wards of Huế
CROSSWALK = {WARD_A: WARD_A, WARD_B: WARD_B, "OLD_A": WARD_A}


def snapshot(dataset_id: str, **frames: pd.DataFrame) -> Snapshot:
    return Snapshot(dataset_id, 1, NOW, {}, frames)


def epoch(moment: datetime) -> int:
    return to_epoch(moment)


class TestVersus:
    dataset = CATALOGUE.get("traffic_readings")
    kpi = dataset.kpi("speed_vs_last_week")

    def hourly(self, rows: list[tuple[datetime, str, float, float]]) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "bucket": [epoch(t) for t, *_ in rows],
                "unit": [u for _, u, _, _ in rows],
                "speed_sum": [s for *_, s, _ in rows],
                "readings": [n for *_, n in rows],
            }
        )

    def test_mean_speed_of_this_hour_against_the_same_hour_a_week_ago(self):
        hour = NOW.replace(minute=0)
        frame = self.hourly(
            [
                (hour, WARD_A, 300.0, 10.0),
                (hour, "OLD_A", 100.0, 10.0),
                (hour - timedelta(days=7), WARD_A, 500.0, 20.0),
                (hour - timedelta(days=7, hours=1), WARD_A, 999.0, 1.0),
            ]
        )
        figure = compute_kpi(self.dataset, self.kpi, snapshot("traffic_readings", hourly=frame), NOW, CROSSWALK)
        assert figure.value == pytest.approx(20.0)
        assert figure.baseline == pytest.approx(25.0)
        assert figure.change == pytest.approx(-20.0)

    def test_an_hour_without_rows_yet_compares_the_previous_hour(self):
        previous = NOW.replace(minute=0) - timedelta(hours=1)
        frame = self.hourly([(previous, WARD_A, 40.0, 1.0), (previous - timedelta(days=7), WARD_A, 50.0, 1.0)])
        figure = compute_kpi(self.dataset, self.kpi, snapshot("traffic_readings", hourly=frame), NOW, CROSSWALK)
        assert (figure.value, figure.baseline) == (40.0, 50.0)

    def test_today_so_far_against_the_mean_of_the_same_span_on_the_seven_days_before(self):
        dataset = CATALOGUE.get("health_occupancy")
        kpi = dataset.kpi("emergency_vs_7d")
        midnight = NOW.replace(hour=0, minute=0)
        rows = [(midnight + timedelta(hours=h), 10.0) for h in range(16)]  # 00:00 .. 15:00 today
        rows += [(midnight - timedelta(days=1) + timedelta(hours=h), 7.0) for h in range(24)]  # yesterday, whole day
        rows += [(midnight - timedelta(days=3, hours=-2), 70.0)]  # one earlier day, 02:00
        frame = pd.DataFrame({"bucket": [epoch(t) for t, _ in rows], "unit": WARD_A, "emergency": [v for _, v in rows]})
        figure = compute_kpi(dataset, kpi, snapshot("health_occupancy", hourly=frame), NOW, CROSSWALK)
        assert figure.value == 160.0
        assert figure.baseline == pytest.approx((16 * 7.0 + 70.0) / 7)  # days without visits count as 0

    def test_no_data_gives_no_figure_and_no_exception(self):
        figure = compute_kpi(self.dataset, self.kpi, snapshot("traffic_readings"), NOW, CROSSWALK)
        assert figure.value is None and figure.baseline is None and figure.change is None


class TestEntities:
    river = CATALOGUE.get("env_river")

    def recent(self, rows: list[tuple[datetime, str, str, float]]) -> pd.DataFrame:
        return pd.DataFrame(
            {
                "bucket": [epoch(t) for t, *_ in rows],
                "unit": [u for _, u, _, _ in rows],
                "entity": [e for _, _, e, _ in rows],
                "level_max": [v for *_, v in rows],
            }
        )

    def gauges(self) -> Snapshot:
        latest = NOW.replace(minute=30)
        recent = self.recent(
            [
                (latest, WARD_A, "G1", 1.2),  # above its level I of 1.0
                (latest - timedelta(minutes=15), WARD_A, "G1", 0.5),
                (latest, WARD_B, "G2", 1.4),  # below its own level I of 1.5
                (latest - timedelta(minutes=15), WARD_B, "G2", 9.0),  # older bucket: not "now"
                (latest - timedelta(hours=2), WARD_B, "G3", 9.0),  # stale gauge
            ]
        )
        entities = pd.DataFrame(
            {
                "entity": ["G1", "G2", "G3"],
                "name": ["Kim Long", "Phú Ốc", "A Lưới"],
                "lat": [16.4, 16.5, 16.2],
                "lon": [107.5, 107.4, 107.2],
                "alert_level_1": [1.0, 1.5, 2.0],
                "alert_level_2": [2.0, 3.0, 3.0],
                "alert_level_3": [3.0, 4.5, 4.0],
            }
        )
        return snapshot("env_river", recent=recent, entities=entities)

    def test_counts_entities_above_their_own_attribute_in_their_newest_recent_bucket(self):
        figure = compute_kpi(self.river, self.river.kpi("gauges_above_level1"), self.gauges(), NOW, CROSSWALK)
        assert figure.value == 1.0 and figure.entities == ("G1",)

    def test_ward_filter_applies_to_entities(self):
        kpi = self.river.kpi("gauges_above_level1")
        figure = compute_kpi(self.river, kpi, self.gauges(), NOW, CROSSWALK, wards=frozenset([WARD_B]))
        assert figure.value == 0.0

    def test_values_carry_the_reference_columns_for_markers(self):
        values = entity_values(self.river, self.river.kpi("gauges_above_level1"), self.gauges(), NOW, CROSSWALK)
        assert list(values["entity"]) == ["G1", "G2"]
        assert list(values["name"]) == ["Kim Long", "Phú Ốc"]
        levels = [
            alert_level(v, (a, b, c))
            for v, a, b, c in values[["value", "alert_level_1", "alert_level_2", "alert_level_3"]].itertuples(
                index=False
            )
        ]
        assert levels == [1, 0]

    def test_entity_max_reports_the_entity_and_breaks_ties_by_id(self):
        kpi = Kpi("top", "entity_max", ("level_max",))
        snap = self.gauges()
        recent = snap.frames["recent"]
        recent.loc[recent["entity"] == "G2", "level_max"] = 1.2
        figure = compute_kpi(self.river, kpi, snap, NOW, CROSSWALK)
        assert (figure.value, figure.entity) == (1.2, "G1")

    def test_threshold_operators(self):
        kpi = replace(self.river.kpi("gauges_above_level1"), op="lt", threshold=1.3)
        assert compute_kpi(self.river, kpi, self.gauges(), NOW, CROSSWALK).entities == ("G1",)
        kpi = replace(kpi, op="le", threshold=1.4)
        assert compute_kpi(self.river, kpi, self.gauges(), NOW, CROSSWALK).entities == ("G1", "G2")


class TestStationAqi:
    air = CATALOGUE.get("env_air")

    def frame(self, hours: dict[int, float], station: str = "KK01", no2: float | None = None) -> pd.DataFrame:
        hour = NOW.replace(minute=0)
        rows = []
        for back, pm25 in hours.items():
            row = {"bucket": epoch(hour - timedelta(hours=back)), "unit": WARD_A, "entity": station}
            for total, count in self.air.aqi.values():
                row[total], row[count] = 0.0, 0.0
            row["pm25_sum"], row["pm25_count"] = pm25 * 2, 2.0
            if no2 is not None and back == 0:
                row["no2_sum"], row["no2_count"] = no2, 1.0
            rows.append(row)
        return pd.DataFrame(rows)

    def test_nowcast_of_the_twelve_hourly_means_with_the_current_hour_first(self):
        series = [20.6, 19.6, 22.4, 20.3, 16.5, 19.0, 16.5, 19.5, 23.5, 20.5, 24.7, 26.9]  # 1459's example
        snap = snapshot("env_air", recent=self.frame(dict(enumerate(series)) | {12: 400.0}, no2=118.7))
        result = station_aqi(self.air, snap, NOW, CROSSWALK)
        assert result.to_dict("records") == [
            {
                "entity": "KK01",
                "ward": WARD_A,
                "value": 59.0,
                "dominant": "no2",
                "category": "moderate",
                "colour": "#ffff00",
            }
        ]

    def test_a_station_without_two_of_its_three_latest_hours_has_no_index(self):
        snap = snapshot("env_air", recent=self.frame({2: 30.0, 3: 30.0, 4: 30.0}))
        assert station_aqi(self.air, snap, NOW, CROSSWALK).empty
        figure = compute_kpi(self.air, self.air.kpi("aqi_max"), snap, NOW, CROSSWALK)
        assert figure.value is None

    def test_worst_station_and_stations_above_moderate(self):
        frames = pd.concat(
            [self.frame({0: 60.0, 1: 60.0}, "KK01"), self.frame({0: 20.0, 1: 20.0}, "KK02")], ignore_index=True
        )
        snap = snapshot("env_air", recent=frames)
        worst = compute_kpi(self.air, self.air.kpi("aqi_max"), snap, NOW, CROSSWALK)
        assert (worst.value, worst.entity) == (aqi.round_index(aqi.sub_index("pm25", 60.0)), "KK01")
        above = compute_kpi(self.air, self.air.kpi("stations_above_moderate"), snap, NOW, CROSSWALK)
        assert above.entities == ("KK01",)


class TestMedian:
    feedback = CATALOGUE.get("feedback")
    kpi = feedback.kpi("median_resolution_days")

    def durations(self, rows: list[tuple[str, datetime, float]]) -> Snapshot:
        frame = pd.DataFrame(
            {
                "unit": [u for u, _, _ in rows],
                "duration": "resolution",
                "end": [epoch(t) for _, t, _ in rows],
                "value": [v for *_, v in rows],
            }
        )
        return snapshot("feedback", durations=frame)

    def test_exact_median_of_the_records_that_ended_in_the_window(self):
        snap = self.durations(
            [
                (WARD_A, NOW - timedelta(days=1), 1.0),
                (WARD_A, NOW - timedelta(days=2), 4.0),
                (WARD_B, NOW - timedelta(days=3), 2.0),
                ("OLD_A", NOW - timedelta(days=6), 10.0),
                (WARD_A, NOW - timedelta(days=20), 100.0),
            ]
        )
        assert compute_kpi(self.feedback, self.kpi, snap, NOW, CROSSWALK, window="7d").value == 3.0
        assert compute_kpi(self.feedback, self.kpi, snap, NOW, CROSSWALK).value == 4.0
        ward_a = compute_kpi(self.feedback, self.kpi, snap, NOW, CROSSWALK, wards=frozenset([WARD_A]), window="7d")
        assert ward_a.value == 4.0

    def test_no_records_no_median(self):
        snap = self.durations([(WARD_A, NOW - timedelta(days=40), 1.0)])
        assert compute_kpi(self.feedback, self.kpi, snap, NOW, CROSSWALK).value is None


class TestBreakdownsAndHelpers:
    def test_per_entity_ratio_and_state(self):
        dossiers = CATALOGUE.get("dossiers")
        hourly_entity = pd.DataFrame(
            {
                "bucket": [epoch(NOW - timedelta(days=d)) // HOUR * HOUR for d in (1, 2, 40)],
                "unit": [WARD_A, WARD_B, WARD_A],
                "entity": ["HT-01", "HT-01", "HT-01"],
                "on_time": [9.0, 1.0, 50.0],
                "resolved": [10.0, 10.0, 50.0],
            }
        )
        state = pd.DataFrame({"unit": [WARD_A, WARD_B], "entity": ["HT-01", "DD-02"], "overdue": [2.0, 5.0]})
        snap = snapshot("dossiers", hourly_entity=hourly_entity, state=state)
        rate = kpi_by_entity(dossiers, dossiers.kpi("on_time_rate"), snap, NOW, CROSSWALK)
        assert rate.to_dict() == {"HT-01": pytest.approx(50.0)}
        overdue = kpi_by_entity(dossiers, dossiers.kpi("overdue_now"), snap, NOW, CROSSWALK, wards=frozenset([WARD_B]))
        assert overdue.to_dict() == {"DD-02": 5.0}
        with pytest.raises(ValueError, match="median_processing_days"):
            kpi_by_entity(dossiers, dossiers.kpi("median_processing_days"), snap, NOW, CROSSWALK)

    def test_positions_filtered_by_ward_and_window(self):
        frame = pd.DataFrame(
            {
                "key": [1, 2, 3],
                "unit": [WARD_A, "OLD_A", WARD_B],
                "time": [epoch(NOW - timedelta(hours=2)), epoch(NOW - timedelta(days=3)), epoch(NOW)],
                "lat": [16.4, 16.5, 16.6],
                "lon": [107.5, 107.6, 107.7],
            }
        )
        snap = snapshot("traffic_incidents", positions=frame)
        assert list(positions(snap, NOW, CROSSWALK, window="24h")["key"]) == [1, 3]
        assert list(positions(snap, NOW, CROSSWALK, wards=frozenset([WARD_A]))["key"]) == [1, 2]

    @pytest.mark.parametrize(
        ("share", "label"), [(0.3, "congested"), (0.49, "congested"), (0.5, "slow"), (0.75, "free"), (None, None)]
    )
    def test_congestion_classes_follow_the_congestion_definition(self, share, label):
        assert congestion_class(share) == label

    def test_alert_levels(self):
        assert [alert_level(v, (1.0, 2.0, 3.5)) for v in (0.2, 1.0, 2.5, 4.0, None)] == [0, 1, 2, 3, 0]
