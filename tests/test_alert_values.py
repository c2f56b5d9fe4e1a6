"""KPI values per alert subject equal the dashboards' figures; the 7-day preview replays the lifecycle."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pandas as pd
import pytest

from config.datasets import load_datasets
from data_sources.admin_units import crosswalk as unit_crosswalk
from data_sources.admin_units import current_units
from data_sources.alerts.model import Rule, Threshold
from data_sources.alerts.values import HOUR, SubjectValues, is_stale, observations, preview
from data_sources.kpis import compute_kpi, kpi_by_entity
from data_sources.poller import BUCKET, ENTITY, to_epoch
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


class TestValuesEqualTheDashboards:
    def test_every_kpi_per_ward_equals_compute_kpi(self, polled):
        catalogue, store, crosswalk, wards = polled
        checked = 0
        for dataset in catalogue:
            snapshot = store.get(dataset.id)
            values = SubjectValues(dataset, snapshot, FIXED_NOW, crosswalk, wards)
            for kpi in dataset.kpis:
                by_ward = values.by_ward(kpi)
                for ward in wards:
                    expected = compute_kpi(dataset, kpi, snapshot, FIXED_NOW, crosswalk, wards=frozenset([ward])).value
                    assert by_ward[ward] == pytest.approx(expected, nan_ok=True), (dataset.id, kpi.id, ward)
                    checked += expected is not None and expected != 0
                province = compute_kpi(dataset, kpi, snapshot, FIXED_NOW, crosswalk).value
                assert values.province(kpi) == pytest.approx(province, rel=1e-12, nan_ok=True), (dataset.id, kpi.id)
        assert checked > 100, "the comparison saw real, non-zero figures"

    def test_every_entity_kpi_per_entity_equals_compute_kpi_on_that_entitys_rows(self, polled):
        catalogue, store, crosswalk, wards = polled
        checked = 0
        for dataset in catalogue:
            if dataset.entity is None:
                continue
            snapshot = store.get(dataset.id)
            values = SubjectValues(dataset, snapshot, FIXED_NOW, crosswalk, wards)
            for kpi in dataset.kpis:
                per_entity_rollup = dataset.by_entity and kpi.kind in ("sum", "ratio", "mean")
                by_rollup = kpi_by_entity(dataset, kpi, snapshot, FIXED_NOW, crosswalk) if per_entity_rollup else None
                for entity, value in values.by_entity(kpi).items():
                    if by_rollup is not None:  # what the dashboards show per entity (e.g. per procedure)
                        expected = by_rollup.get(entity, 0.0 if kpi.kind == "sum" else None)
                    else:
                        expected = compute_kpi(dataset, kpi, only_entity(snapshot, entity), FIXED_NOW, crosswalk).value
                    assert value == pytest.approx(expected, nan_ok=True), (dataset.id, kpi.id, entity)
                    checked += 1
        assert checked > 20

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
