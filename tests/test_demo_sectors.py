"""The demo carries every sector: points on the map inside their ward, live changes from the simulator
for every sector, and excursions that take an air station past "moderate" and a gauge past its level I
(and back) through the real poller and KPI code."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import pytest
import shapely

from config.datasets import load_datasets
from data_sources.admin_units import crosswalk, current_units
from data_sources.demo.generate import generate_warehouse
from data_sources.demo.simulate import Simulator, excursion_targets
from data_sources.geo import approximate_wards
from data_sources.kpis import compute_kpi
from data_sources.poller import DatasetPoller
from data_sources.snapshots import MemorySnapshotStore
from data_sources.warehouse import create_warehouse_engine
from tests.conftest import FIXED_NOW

POINT_TABLES = (
    "traffic_segments",
    "health_facilities",
    "env_air_stations",
    "env_river_gauges",
    "traffic_incidents",
    "feedback_reports",
)
SECTOR_TABLES = {
    "traffic": ("traffic_readings", "traffic_incidents"),
    "health": ("health_occupancy", "health_cases"),
    "environment": ("env_air_readings", "env_river_levels"),
    "public_services": ("dossiers",),
    "feedback": ("feedback_reports",),
}


@pytest.fixture(scope="module")
def small_warehouse(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sectors") / "warehouse.db"
    generate_warehouse(f"sqlite:///{path}", now=FIXED_NOW, scale=0.05, start=(FIXED_NOW - timedelta(days=20)).date())
    return path


@pytest.fixture
def warehouse_copy(small_warehouse, tmp_path) -> str:
    copy = tmp_path / "copy.db"
    with closing(sqlite3.connect(small_warehouse)) as source, closing(sqlite3.connect(copy)) as target:
        source.backup(target)
    return f"sqlite:///{copy}"


def test_every_point_lies_inside_its_wards_area_on_the_map(small_warehouse):
    shapes = approximate_wards(current_units("46")).set_index("code")["geometry"]
    codes = crosswalk("46")
    with closing(sqlite3.connect(small_warehouse)) as conn:
        for table in POINT_TABLES:
            rows = conn.execute(f"SELECT ward_code, lat, lon FROM {table}").fetchall()
            assert rows, table
            polygons = shapes.loc[[codes[code] for code, _, _ in rows]].to_numpy()
            inside = shapely.contains_xy(polygons, [r[2] for r in rows], [r[1] for r in rows])
            assert inside.all(), (table, [rows[i] for i in range(len(rows)) if not inside[i]][:5])


def test_simulator_changes_every_sector_within_two_hours(warehouse_copy):
    simulator = Simulator(warehouse_copy, scale=1.0, excursion_every=None)
    written: dict[str, int] = {}
    try:
        for minutes in range(5, 125, 5):
            for table, count in simulator.step(FIXED_NOW + timedelta(minutes=minutes)).items():
                written[table.removesuffix("_updated")] = written.get(table.removesuffix("_updated"), 0) + count
    finally:
        simulator.close()
    for sector, tables in SECTOR_TABLES.items():
        for table in tables:
            assert written.get(table), (sector, table, written)


def kpi_figure(pollers, dataset_id: str, kpi_id: str, now):
    poller = pollers[dataset_id]
    assert poller.poll().error is None
    snapshot = poller.store.get(dataset_id)
    return compute_kpi(poller.dataset, poller.dataset.kpi(kpi_id), snapshot, now, crosswalk("46"))


def test_excursions_cross_thresholds_and_fall_back(warehouse_copy):
    catalogue = load_datasets()
    engine = create_warehouse_engine(warehouse_copy)
    clock_now = [FIXED_NOW]
    pollers = {
        name: DatasetPoller(catalogue.get(name), engine, MemorySnapshotStore(), lambda: clock_now[0])
        for name in ("env_air", "env_river")
    }
    simulator = Simulator(warehouse_copy, excursion_every=600)
    try:
        stations = simulator.world.air_stations["station_id"].tolist()
        gauges = simulator.world.gauges["gauge_id"].tolist()
        before = {
            "air": kpi_figure(pollers, "env_air", "stations_above_moderate", FIXED_NOW),
            "river": kpi_figure(pollers, "env_river", "gauges_above_level1", FIXED_NOW),
        }
        during = FIXED_NOW + timedelta(seconds=3)  # 15:30:03, first half of a 10-minute period
        station, gauge = excursion_targets(during, 600, stations, gauges)
        assert station and gauge
        assert station not in before["air"].entities and gauge not in before["river"].entities

        clock_now[0] = during
        assert simulator.step(during).get("excursion_updates")
        air = kpi_figure(pollers, "env_air", "stations_above_moderate", during)
        river = kpi_figure(pollers, "env_river", "gauges_above_level1", during)
        assert station in air.entities and gauge in river.entities
        worst = kpi_figure(pollers, "env_air", "aqi_max", during)
        assert worst.entity == station and 150 < worst.value <= 200  # "Xấu"

        after = FIXED_NOW + timedelta(minutes=6)  # second half: readings restored
        clock_now[0] = after
        assert simulator.step(after).get("excursion_updates")
        assert station not in kpi_figure(pollers, "env_air", "stations_above_moderate", after).entities
        assert gauge not in kpi_figure(pollers, "env_river", "gauges_above_level1", after).entities
    finally:
        simulator.close()
        engine.dispose()


def test_excursion_targets_take_turns_and_rest_half_of_each_period():
    stations, gauges = ["A", "B", "C"], ["X", "Y"]
    firsts = [excursion_targets(FIXED_NOW + timedelta(minutes=10 * k), 600, stations, gauges) for k in range(6)]
    assert {s for s, _ in firsts} == set(stations) and {g for _, g in firsts} == set(gauges)
    assert excursion_targets(FIXED_NOW + timedelta(minutes=5), 600, stations, gauges) == (None, None)
    assert excursion_targets(FIXED_NOW + timedelta(minutes=4, seconds=59), 600, stations, gauges)[0] is not None
