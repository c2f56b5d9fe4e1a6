"""Sector pages (issue 4): view state, figures equal SQL, maps, drill-down, CSV export, forged requests.

Pure tests first (URL state, navigation steps, filters, colour scales), then the app through
Flask's test client over a copy of the seeded demo warehouse (with a few open incidents added so
every marker layer has something to draw), polled once with the map-points hook.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, insert, select

from config.datasets import load_datasets
from dashboards.sectors import (
    DEFAULT_WINDOW,
    SECTOR_PAGES,
    ViewState,
    parse_view_state,
)
from data_sources.admin_units import crosswalk as unit_crosswalk
from data_sources.admin_units import current_units
from data_sources.clock import to_local_naive
from data_sources.demo.schema import (
    OPEN_FEEDBACK_STATUSES,
    dossiers,
    env_river_levels,
    feedback_reports,
    health_cases,
    traffic_incidents,
)
from data_sources.points import PointsPublisher
from data_sources.records import RecordsError
from data_sources.scheduler import Poller
from data_sources.snapshots import SQLiteSnapshotStore
from data_sources.users import audit_table, create_user
from data_sources.ward_frames import WardFramesPublisher
from data_sources.warehouse import create_warehouse_engine
from layouts.i18n import format_number
from tests.conftest import FIXED_NOW
from tests.test_web import (
    LEAGUE_OUTPUTS,
    MAP_OUTPUTS,
    PASSWORD,
    RECORDS_OUTPUTS,
    callback,
    login,
    make_settings,
    records_request,
    tile_values,
)

NOW = to_local_naive(FIXED_NOW)
TODAY = NOW.date()
WARDS = frozenset({"19753", "19789", "20014"})


# --- pure: the URL is the view ---------------------------------------------------------------------
class TestViewState:
    def test_custom_range_ward_dataset_and_record_round_trip_through_the_url(self):
        state = ViewState(
            window="custom",
            start=date(2026, 11, 1),
            end=date(2026, 11, 10),
            ward="19753",
            records="traffic_readings",
            record="42",
        )
        parsed = parse_view_state(
            state.query(), WARDS, today=TODAY, records_datasets=("traffic_incidents", "traffic_readings")
        )
        assert parsed == state
        assert (
            state.query() == "?window=custom&from=2026-11-01&to=2026-11-10&ward=19753&data=traffic_readings&record=42"
        )

    @pytest.mark.parametrize(
        "search",
        [
            "?window=custom&from=2026-11-10&to=2026-11-01",  # reversed
            "?window=custom&from=2026-11-01&to=2026-11-21",  # ends after today
            "?window=custom&from=2024-01-01&to=2026-11-20",  # longer than a year
            "?window=custom&from=2026-11-01",  # one end missing
            "?window=custom&from=yesterday&to=today",  # not dates
            "?window=90d",  # unknown window
        ],
    )
    def test_a_malformed_range_falls_back_to_the_default_window(self, search):
        state = parse_view_state(search, WARDS, today=TODAY)
        assert (state.window, state.start, state.end) == (DEFAULT_WINDOW, None, None)

    def test_unknown_ward_foreign_dataset_and_odd_record_keys_are_dropped(self):
        state = parse_view_state(
            "?window=7d&ward=99999&data=feedback&record=1", WARDS, today=TODAY, records_datasets=("dossiers",)
        )
        assert (state.ward, state.records, state.record) == (None, None, None)
        odd = parse_view_state("?ward=19753&record=1;drop table", WARDS, today=TODAY)
        assert odd.ward == "19753" and odd.record is None

    def test_leaving_a_ward_closes_its_record(self):
        state = ViewState(ward="19753", record="7")
        assert state.with_(ward="19789").record is None
        assert state.with_(window="30d").record == "7"

    def test_custom_bounds_are_whole_local_days(self):
        state = ViewState(window="custom", start=date(2026, 11, 1), end=date(2026, 11, 10))
        assert state.local_bounds(NOW) == (datetime(2026, 11, 1), datetime(2026, 11, 11))
        assert ViewState(window="24h").local_bounds(NOW) == (NOW - timedelta(days=1), None)


class TestNavigationSteps:
    def step(self, state, trigger, **given):
        from dashboards.pages import next_view

        values = dict(
            window=None,
            start_date=None,
            end_date=None,
            ward=None,
            map_ward=None,
            league_cell=None,
            record_cell=None,
            records_dataset=None,
            crumb_clicks=0,
            today=TODAY,
            records_datasets=("traffic_incidents", "traffic_readings"),
        )
        return next_view(state, trigger, **(values | given))

    def test_choosing_custom_starts_with_the_last_seven_days_ending_today(self):
        state = self.step(ViewState(), "window-select", window="custom")
        assert (state.window, state.start, state.end) == ("custom", TODAY - timedelta(days=6), TODAY)
        later = self.step(state, "date-range", start_date="2026-11-02", end_date="2026-11-05T00:00:00")
        assert (later.start, later.end) == (date(2026, 11, 2), date(2026, 11, 5))
        assert self.step(state, "date-range", start_date="2026-11-02", end_date="2026-12-01") == state

    def test_province_to_ward_to_record_and_back_up_the_breadcrumb(self):
        province = ViewState(window="30d")
        ward = self.step(province, "league-table", league_cell={"row": 3, "column": 0, "row_id": "19753"})
        assert ward.ward == "19753"
        record = self.step(ward, "records-table", record_cell={"row": 0, "column": 1, "row_id": 42})
        assert record.record == "42"
        assert self.step(record, {"type": "breadcrumb", "level": "ward"}, crumb_clicks=1) == ward
        assert self.step(record, {"type": "breadcrumb", "level": "province"}, crumb_clicks=1) == province
        assert self.step(record, {"type": "breadcrumb", "level": "province"}, crumb_clicks=0) == record

    def test_map_click_on_another_ward_closes_the_open_record(self):
        state = ViewState(ward="19753", record="5")
        assert self.step(state, "ward-map", map_ward="19789") == ViewState(ward="19789")
        assert self.step(state, "ward-map", map_ward="19753") == state

    def test_a_row_click_without_a_ward_and_the_default_dataset_leave_no_trace_in_the_url(self):
        assert self.step(ViewState(), "records-table", record_cell={"row_id": 1}) == ViewState()
        other = self.step(ViewState(ward="19753"), "records-dataset", records_dataset="traffic_readings")
        assert other.records == "traffic_readings"
        assert self.step(other, "records-dataset", records_dataset="traffic_incidents").records is None


# --- pure: filters and colour scales ---------------------------------------------------------------
class TestGridFilters:
    def test_filter_row_expressions_become_column_filters(self):
        from dashboards.cards.records import parse_filter_query

        filters = parse_filter_query('{rating} >= 4 && {title} scontains "đèn chiếu sáng"', "vi")
        assert [(f.column, f.op, f.value) for f in filters] == [
            ("rating", "ge", "4"),
            ("title", "contains", "đèn chiếu sáng"),
        ]

    def test_coded_columns_are_searched_by_their_translated_label(self):
        from dashboards.cards.records import parse_filter_query

        (status,) = parse_filter_query("{status} icontains đã giải", "vi")
        assert status.op == "in" and set(status.value) == {"resolved", "cleared"}
        (english,) = parse_filter_query("{status} contains progress", "en")
        assert english.value == ("in_progress",)

    def test_unreadable_filters_and_searches_on_masked_personal_data_are_refused(self):
        from dashboards.cards.records import parse_filter_query
        from data_sources.records import ColumnFilter, check_filters

        with pytest.raises(RecordsError, match="cannot read"):
            parse_filter_query("{rating} ~ 4", "vi")
        dataset = load_datasets().get("feedback")
        with pytest.raises(RecordsError, match="personal data"):
            check_filters(dataset, (ColumnFilter("citizen_phone", "contains", "0905"),), unmasked=False)
        check_filters(dataset, (ColumnFilter("citizen_phone", "contains", "0905"),), unmasked=True)
        with pytest.raises(RecordsError, match="not a column"):
            check_filters(dataset, (ColumnFilter("password", "eq", "x"),), unmasked=True)


class TestColourScales:
    def test_stations_take_the_band_and_official_colour_of_their_vn_aqi(self):
        from dashboards.cards.map_layers import aqi_colours

        rows = pd.DataFrame({"value": [50, 51, 100, 101, 150, 151, 200, 201, 300, 301, np.nan]})
        bands = aqi_colours(rows)
        assert [c.key if c else None for c in bands] == [
            "aqi.good",
            "aqi.moderate",
            "aqi.moderate",
            "aqi.poor",
            "aqi.poor",
            "aqi.bad",
            "aqi.bad",
            "aqi.very_bad",
            "aqi.very_bad",
            "aqi.hazardous",
            None,
        ]
        assert [bands[0].colour, bands[5].colour] == ["#00e400", "#ff0000"], "Table 1 colours of the decision"

    def test_gauges_take_the_highest_of_their_own_alert_levels(self):
        from dashboards.cards.map_layers import flood_colours

        levels = {"alert_level_1": 2.0, "alert_level_2": 3.0, "alert_level_3": 4.0}
        rows = pd.DataFrame([{"value": v, **levels} for v in (1.9, 2.0, 3.5, 4.2, np.nan)])
        assert [c.key if c else None for c in flood_colours(rows)] == [
            "flood.normal",
            "flood.level1",
            "flood.level2",
            "flood.level3",
            None,
        ]

    def test_colour_functions_are_injectable_by_key(self, monkeypatch):
        from dashboards.cards import map_layers

        everything_red = map_layers.Category("aqi.bad", "#ff0000")
        monkeypatch.setitem(map_layers.COLOURS, "aqi", lambda rows: [everything_red] * len(rows))
        assert map_layers.COLOURS["aqi"](pd.DataFrame({"value": [1.0, 2.0]})) == [everything_red] * 2

    def test_an_empty_series_says_so_in_words(self):
        from dashboards.cards.series import build_series_figure

        figure = build_series_figure(
            pd.DataFrame({"time": [NOW], "a": [0.0]}), {"a": "A"}, "Không có phản ánh nào tại X trong 24 giờ qua"
        )
        assert figure["layout"]["annotations"][0]["text"] == "Không có phản ánh nào tại X trong 24 giờ qua"
        assert not figure["data"]


# --- the app over a warehouse copy -----------------------------------------------------------------
OPEN_INCIDENTS = (("19753", 16.4637, 107.5909, "accident"), ("19789", 16.4550, 107.5700, "flooding"))


@pytest.fixture(scope="module")
def sectors_app(seeded_warehouse, tmp_path_factory):
    """The app over a copy of the seeded warehouse plus two open incidents, polled once with the poller's
    after-poll hooks (ward frames and figures computed ahead, map points), as in production."""
    from app import create_app
    from dashboards.context import get_context

    folder = tmp_path_factory.mktemp("sectors")
    source = Path(seeded_warehouse.removeprefix("sqlite:///"))
    shutil.copy(source, folder / "warehouse.db")
    warehouse_url = f"sqlite:///{folder / 'warehouse.db'}"
    warehouse = create_warehouse_engine(warehouse_url)
    with warehouse.begin() as connection:
        for ward, lat, lon, kind in OPEN_INCIDENTS:
            connection.execute(
                insert(traffic_incidents).values(
                    kind=kind,
                    ward_code=ward,
                    lat=lat,
                    lon=lon,
                    description="Kiểm thử",
                    status="open",
                    reported_at=NOW - timedelta(hours=2),
                    reporter_name="Nguyễn Văn Thử",
                    reporter_phone="0905123456",
                    updated_at=NOW - timedelta(hours=2),
                )
            )
    settings = replace(make_settings(folder, warehouse_url), unmasked_roles=("operator",))
    store = SQLiteSnapshotStore(folder / "snapshots.db")
    catalogue = load_datasets(settings.datasets_file)
    figures = WardFramesPublisher(
        catalogue, store, unit_crosswalk("46"), list(current_units("46")["code"]), lambda: FIXED_NOW
    )
    hooks = (*figures.hooks(), PointsPublisher(catalogue, warehouse, store, lambda: FIXED_NOW))
    Poller(catalogue, warehouse, store, lambda: FIXED_NOW, after_poll=hooks).poll_all()
    app = create_app(settings, store=store, clock=lambda: FIXED_NOW)
    context = get_context()
    app_db = create_warehouse_engine(settings.app_db_url)
    create_user(app_db, "leader", PASSWORD, "leader")
    create_user(app_db, "leader_en", PASSWORD, "leader", language="en")
    create_user(app_db, "operator", PASSWORD, "operator")
    create_user(app_db, "ward_head", PASSWORD, "department_head", sectors=("feedback", "traffic"), wards=("19753",))
    create_user(app_db, "traffic_head", PASSWORD, "department_head", sectors=("traffic",))
    return {"app": app, "context": context, "warehouse": warehouse, "app_db": app_db}


@pytest.fixture(autouse=True)
def own_context(request):
    """Each web test runs against this module's app context, whatever other modules created since."""
    if "sectors_app" not in request.fixturenames:
        yield
        return
    from dashboards.context import set_context

    set_context(request.getfixturevalue("sectors_app")["context"])
    yield


def card_inputs(path: str, search: str):
    return [("snapshot-versions", "data", {}), ("url", "search", search)], [("url", "pathname", path)]


def kpis(client, path, search):
    inputs, state = card_inputs(path, search)
    return callback(client, [("kpi-row", "children")], inputs, state)


def ward_map(client, path, search, drawn=None, changed=()):
    inputs, state = card_inputs(path, search)
    return callback(client, MAP_OUTPUTS, inputs, state + [("map-drawn", "data", drawn)], changed=changed)


def league(client, path, search):
    inputs, state = card_inputs(path, search)
    return callback(client, LEAGUE_OUTPUTS, inputs, state)


def series(client, path, search):
    inputs, state = card_inputs(path, search)
    return callback(client, [("series-graph", "figure")], inputs, state)


def detail(client, path, search):
    return callback(client, [("record-detail", "children")], [("url", "search", search)], [("url", "pathname", path)])


def page(client, path, search):
    return callback(
        client,
        [("page-content", "children"), ("nav", "children")],
        [("url", "pathname", path)],
        [("url", "search", search)],
    )


def count(engine, table, *conditions) -> int:
    with engine.connect() as connection:
        return connection.execute(select(func.count()).select_from(table).where(*conditions)).scalar()


def hour_floor(moment: datetime) -> datetime:
    return moment.replace(minute=0, second=0, microsecond=0)


class TestEverySectorPage:
    @pytest.mark.parametrize("sector_page", SECTOR_PAGES, ids=lambda p: p.sector)
    @pytest.mark.parametrize(
        "search", ["?window=24h", "?window=30d&ward=19753", "?window=custom&from=2026-11-01&to=2026-11-10&ward=19789"]
    )
    def test_every_card_answers_for_every_window(self, sectors_app, sector_page, search):
        client = login(sectors_app["app"], "leader")
        assert page(client, sector_page.path, search).status_code == 200
        tiles = kpis(client, sector_page.path, search)
        assert tiles.status_code == 200 and len(tile_values(tiles)) == len(sector_page.kpis)
        assert series(client, sector_page.path, search).status_code == 200
        drawn = ward_map(client, sector_page.path, search)
        assert drawn.status_code == 200
        assert len(drawn.json["response"]["ward-map"]["figure"]["data"]) == 3 + len(sector_page.markers)
        table = league(client, sector_page.path, search)
        assert len(table.json["response"]["league-table"]["data"]) == 40
        assert records_request(client, sector_page.path, search).status_code == 200

    def test_the_menu_and_the_overview_link_all_five_sectors(self, sectors_app):
        client = login(sectors_app["app"], "leader")
        nav = json.dumps(page(client, "/", "").json["response"]["nav"])
        tiles = json.dumps(callback(client, [("overview-tiles", "children")], [("snapshot-versions", "data", {})]).json)
        for sector_page in SECTOR_PAGES:
            assert f'"href": "{sector_page.path}"' in nav
            assert f'"href": "{sector_page.path}"' in tiles

    def test_every_panel_carries_its_own_freshness_label(self, sectors_app):
        client = login(sectors_app["app"], "leader")
        layout = json.dumps(page(client, "/health", "?window=7d").json)
        panels = {"kpis", "series", "map", "league", "records"}
        for panel in panels:
            assert f'"panel": "{panel}"' in layout
        assert '"datasets": "health_cases,health_occupancy"' in layout  # the league ages both its datasets


class TestFiguresEqualSql:
    """Every tile is compared with separate SQL on the warehouse (the data helper adds the full set)."""

    def test_traffic_open_incidents_and_incidents_today(self, sectors_app):
        warehouse = sectors_app["warehouse"]
        midnight = NOW.replace(hour=0, minute=0, second=0, microsecond=0)
        shown = tile_values(kpis(login(sectors_app["app"], "leader"), "/traffic", "?window=7d"))
        assert shown["open_incidents"] == format_number(
            count(warehouse, traffic_incidents, traffic_incidents.c.status == "open"), "vi"
        )
        today = count(warehouse, traffic_incidents, traffic_incidents.c.reported_at >= midnight)
        assert today >= 2 and shown["incidents_today"] == format_number(today, "vi")

    def test_health_cases_keep_their_seven_days_whatever_the_range(self, sectors_app):
        start = hour_floor(NOW - timedelta(days=7))
        cases = count(sectors_app["warehouse"], health_cases, health_cases.c.reported_at >= start)
        client = login(sectors_app["app"], "leader")
        for search in ("?window=24h", "?window=30d"):
            assert tile_values(kpis(client, "/health", search))["cases_7d"] == format_number(cases, "vi")

    def test_environment_rain_in_24_hours(self, sectors_app):
        table = env_river_levels
        day_ago = NOW - timedelta(days=1)  # the river gauges' rollup buckets are 15 minutes
        start = day_ago.replace(minute=day_ago.minute - day_ago.minute % 15, second=0, microsecond=0)
        with sectors_app["warehouse"].connect() as connection:
            rain = connection.execute(
                select(func.sum(table.c.rainfall_mm)).where(
                    table.c.observed_at >= start, table.c.rainfall_mm >= 0, table.c.rainfall_mm <= 500
                )
            ).scalar()
        shown = tile_values(kpis(login(sectors_app["app"], "leader"), "/environment", "?window=7d"))
        assert shown["rain_24h"] == format_number(rain, "vi", 1)

    def test_public_services_overdue_now_and_online_rate_over_30_days(self, sectors_app):
        warehouse = sectors_app["warehouse"]
        overdue = count(warehouse, dossiers, dossiers.c.status == "processing", dossiers.c.due_at < NOW)
        start = hour_floor(NOW - timedelta(days=30))
        received = count(warehouse, dossiers, dossiers.c.received_at >= start)
        online = count(warehouse, dossiers, dossiers.c.received_at >= start, dossiers.c.channel == "online")
        shown = tile_values(kpis(login(sectors_app["app"], "leader"), "/public-services", "?window=30d"))
        assert shown["overdue_now"] == format_number(overdue, "vi")
        assert shown["online_rate"] == format_number(online / received * 100, "vi", 1)

    def test_feedback_resolution_rate_over_a_custom_range_of_local_days(self, sectors_app):
        table = feedback_reports
        days = [table.c.created_at >= datetime(2026, 11, 1), table.c.created_at < datetime(2026, 11, 11)]
        reports = count(sectors_app["warehouse"], table, *days)
        closed = count(sectors_app["warehouse"], table, *days, table.c.status.in_(("resolved", "rejected")))
        shown = tile_values(
            kpis(login(sectors_app["app"], "leader"), "/feedback", "?window=custom&from=2026-11-01&to=2026-11-10")
        )
        assert reports > 0 and shown["resolution_rate"] == format_number(closed / reports * 100, "vi", 1)

    def test_league_table_and_map_show_each_wards_overdue_reports(self, sectors_app):
        table = feedback_reports
        with sectors_app["warehouse"].connect() as connection:
            rows = connection.execute(
                select(table.c.ward_code, func.count())
                .where(table.c.status.in_(OPEN_FEEDBACK_STATUSES), table.c.deadline_at < NOW)
                .group_by(table.c.ward_code)
            ).fetchall()
        crosswalk = sectors_app["context"].crosswalk
        expected: dict[str, int] = {}
        for unit, n in rows:
            expected[crosswalk[unit]] = expected.get(crosswalk[unit], 0) + n
        client = login(sectors_app["app"], "leader")
        table_rows = league(client, "/feedback", "?window=7d").json["response"]["league-table"]["data"]
        shown = {row["id"]: row["feedback__overdue"] for row in table_rows}
        assert {w: v for w, v in shown.items() if v} == expected
        values = ward_map(client, "/feedback", "?window=7d").json["response"]["ward-map"]["figure"]["data"][1]
        mapped = dict(zip(values["locations"], values["z"], strict=True))
        assert {w: v for w, v in mapped.items() if v} == expected

    def test_kpi_per_ward_equals_compute_kpi_ward_by_ward_for_every_kpi(self, sectors_app):
        from data_sources.figures import kpi_per_ward
        from data_sources.kpis import kpi_by_ward

        context = sectors_app["context"]
        codes = sorted(context.ward_codes)
        for dataset in context.catalogue:
            snapshot = context.snapshot(dataset.id)
            for kpi in dataset.kpis:
                for window in ("24h", "7d", "30d"):
                    fast = kpi_per_ward(dataset, kpi, snapshot, FIXED_NOW, context.crosswalk, codes, window=window)
                    slow = kpi_by_ward(dataset, kpi, snapshot, FIXED_NOW, context.crosswalk, codes, window=window)
                    if kpi.kind in ("state", "sum"):
                        slow = slow.fillna(0.0)
                    pd.testing.assert_series_equal(
                        fast, slow, check_names=False, check_index_type=False, obj=f"{dataset.id}.{kpi.id} {window}"
                    )

    def test_kpi_value_equals_compute_kpi_for_every_kpi_window_and_ward_set(self, sectors_app):
        from data_sources.figures import kpi_value
        from data_sources.kpis import compute_kpi

        context = sectors_app["context"]
        for dataset in context.catalogue:
            snapshot = context.snapshot(dataset.id)
            for kpi in dataset.kpis:
                for window in ("today", "24h", "7d", "30d", "all"):
                    for wards in (None, frozenset({"19753"}), frozenset({"19753", "19789", "20137"})):
                        mine = kpi_value(
                            dataset, kpi, snapshot, FIXED_NOW, context.crosswalk, wards=wards, window=window
                        )
                        reference = compute_kpi(
                            dataset, kpi, snapshot, FIXED_NOW, context.crosswalk, wards=wards, window=window
                        )
                        label = f"{dataset.id}.{kpi.id} {window} {wards}"
                        assert mine.entity == reference.entity, label
                        if reference.value is None:
                            assert mine.value is None, label
                        else:
                            assert mine.value == pytest.approx(reference.value, rel=1e-12), label

    def test_a_custom_span_reads_whole_local_days_of_the_daily_rollups(self, sectors_app):
        from data_sources.figures import day_span, kpi_value
        from data_sources.kpis import compute_kpi
        from data_sources.poller import BUCKET

        context = sectors_app["context"]
        dataset = context.catalogue.get("feedback")
        snapshot = context.snapshot("feedback")
        span = day_span(date(2026, 11, 1), date(2026, 11, 10))
        daily = snapshot.frames["daily"]
        inside = daily.loc[(daily[BUCKET] >= span[0]) & (daily[BUCKET] < span[1])]
        restricted = replace(snapshot, frames={**snapshot.frames, "daily": inside})
        for kpi in dataset.kpis:
            mine = kpi_value(dataset, kpi, snapshot, FIXED_NOW, context.crosswalk, wards=None, window="all", span=span)
            window = "all" if kpi.kind in ("sum", "ratio", "mean") else kpi.window
            reference = compute_kpi(dataset, kpi, restricted, FIXED_NOW, context.crosswalk, window=window)
            assert mine.value == pytest.approx(reference.value), kpi.id

    def test_worst_station_tile_names_the_station_the_map_marks_with_the_same_value(self, sectors_app):
        from data_sources.figures import entity_latest

        context = sectors_app["context"]
        dataset = context.catalogue.get("env_air")
        stations = entity_latest(dataset, "aqi_max", context.snapshot("env_air"), FIXED_NOW, context.crosswalk)
        worst = stations.loc[stations["value"].idxmax()]
        client = login(sectors_app["app"], "leader")
        response = kpis(client, "/environment", "?window=24h")
        shown = tile_values(response)["aqi_max"]
        assert shown == format_number(worst["value"], "vi", 0)
        tile = next(t for t in response.json["response"]["kpi-row"]["children"] if t["props"]["id"]["kpi"] == "aqi_max")
        assert worst["name"] in json.dumps(tile, ensure_ascii=False)
        markers = ward_map(client, "/environment", "?window=24h").json["response"]["ward-map"]["figure"]["data"][3]
        (text,) = [t for t in markers["text"] if t.startswith(f"<b>{worst['name']}</b>")]
        assert f": {shown}" in text


class TestMap:
    def test_boundaries_are_sent_once_then_only_values_are_patched(self, sectors_app):
        client = login(sectors_app["app"], "leader")
        first = ward_map(client, "/traffic", "?window=7d").json["response"]
        assert first["ward-map"]["figure"]["data"][0]["geojson"]["features"]
        assert first["ward-map"]["figure"]["layout"]["uirevision"] == "ward-map"
        drawn = first["map-drawn"]["data"]
        again = ward_map(client, "/traffic", "?window=7d&ward=19753", drawn=drawn, changed=["url.search"])
        body = again.json["response"]
        assert "geojson" not in json.dumps(body["ward-map"])  # a Patch: values and selection only
        assert "map-drawn" not in body
        operations = json.dumps(body["ward-map"]["figure"])
        assert '"19753"' in operations and "locations" in operations

    def test_an_unchanged_marker_layer_is_not_sent_again(self, sectors_app):
        client = login(sectors_app["app"], "leader")
        first = ward_map(client, "/traffic", "?window=7d").json["response"]
        drawn = first["map-drawn"]["data"]
        assert all(drawn["layers"]), "each layer has a fingerprint"
        again = ward_map(client, "/traffic", "?window=7d", drawn=drawn, changed=["snapshot-versions.data"])
        patch = json.dumps(again.json["response"]["ward-map"])
        assert '"lat"' not in patch and '"z"' in patch
        stale = drawn | {"layers": ["old", "old"]}
        resent = ward_map(client, "/traffic", "?window=7d", drawn=stale, changed=["snapshot-versions.data"])
        assert '"lat"' in json.dumps(resent.json["response"]["ward-map"])

    def test_open_incidents_are_markers_coloured_by_kind(self, sectors_app):
        client = login(sectors_app["app"], "leader")
        traces = ward_map(client, "/traffic", "?window=7d").json["response"]["ward-map"]["figure"]["data"]
        incidents = traces[4]
        assert sorted(zip(incidents["lat"], incidents["lon"], strict=True)) == sorted(
            (lat, lon) for _, lat, lon, _ in OPEN_INCIDENTS
        )
        assert [c[0] for c in incidents["customdata"]] == ["19789", "19753"]  # newest first, each with its ward
        assert len(set(incidents["marker"]["color"])) == 2

    def test_a_ward_scoped_head_sees_only_their_wards_on_the_map_and_in_the_league(self, sectors_app):
        client = login(sectors_app["app"], "ward_head")
        figure = ward_map(client, "/traffic", "?window=7d").json["response"]["ward-map"]["figure"]
        assert figure["data"][0]["locations"] == ["19753"]
        assert [c[0] for c in figure["data"][4]["customdata"]] == ["19753"]
        rows = league(client, "/traffic", "?window=7d").json["response"]["league-table"]["data"]
        assert [r["id"] for r in rows] == ["19753"]

    def test_a_configured_tile_url_is_the_only_base_map(self, sectors_app):
        from dashboards.cards.ward_map import build_ward_map

        values = pd.DataFrame({"code": ["19753"], "name": ["Phú Xuân"], "count": [1.0], "value": [1.0]})
        common = dict(
            title="x",
            hover_count="n",
            no_data="-",
            lang="vi",
            decimals=0,
            selected=None,
            center={"lat": 16, "lon": 107},
        )
        offline = build_ward_map({"type": "FeatureCollection", "features": []}, values, [], **common)
        assert offline.layout.map.style == "white-bg" and not offline.layout.map.layers
        tiled = build_ward_map(
            {"type": "FeatureCollection", "features": []},
            values,
            [],
            tile_url="https://t.example/{z}/{x}/{y}.png",
            **common,
        )
        assert tiled.layout.map.layers[0].source == ("https://t.example/{z}/{x}/{y}.png",)
        assert not offline.data[1].reversescale
        better_high = build_ward_map(
            {"type": "FeatureCollection", "features": []}, values, [], higher_is_better=True, **common
        )
        assert better_high.data[1].reversescale, "the worst on-time rates are the red wards"


class TestDrillDown:
    def test_keyset_pages_go_forward_back_and_survive_a_reload(self, sectors_app):
        client = login(sectors_app["app"], "leader")
        search = "?window=30d&ward=19753&data=env_air"

        def move(cursor, button, url=search):
            clicks = {"records-prev": 0, "records-next": 0} | ({button: 1} if button else {})
            return callback(
                client,
                RECORDS_OUTPUTS,
                [
                    ("url", "search", url),
                    ("records-table", "sort_by", []),
                    ("records-table", "filter_query", ""),
                    ("records-prev", "n_clicks", clicks["records-prev"]),
                    ("records-next", "n_clicks", clicks["records-next"]),
                ],
                [("url", "pathname", "/environment"), ("records-cursor", "data", cursor)],
                changed=[f"{button}.n_clicks"] if button else ["url.search"],
            ).json["response"]

        first = records_request(client, "/environment", search).json["response"]
        rows1, cursor1 = first["records-table"]["data"], first["records-cursor"]["data"]
        assert len(rows1) == 100 and cursor1["page"] == 0 and cursor1["more"]
        assert len(json.dumps(cursor1)) < 1000, "only the page's edge rows travel, never a stack of cursors"
        second = move(cursor1, "records-next")
        rows2, cursor2 = second["records-table"]["data"], second["records-cursor"]["data"]
        assert len(rows2) == 100 and second["records-page-label"]["children"].startswith("Trang 2")
        assert min(r["id"] for r in rows1) > max(r["id"] for r in rows2), "newest first, no overlap"
        third = move(cursor2, "records-next")["records-cursor"]["data"]
        back = move(third, "records-prev")
        assert [r["id"] for r in back["records-table"]["data"]] == [r["id"] for r in rows2]
        reloaded = move(cursor2, None, url=search + "&record=1")  # a record opened: the list stays on page 2
        assert [r["id"] for r in reloaded["records-table"]["data"]] == [r["id"] for r in rows2]
        assert [r["id"] for r in move(cursor2, "records-prev")["records-table"]["data"]] == [r["id"] for r in rows1]

    def test_sorting_is_offered_only_on_indexed_columns(self, sectors_app):
        client = login(sectors_app["app"], "leader")
        response = records_request(
            client, "/feedback", "?window=30d&ward=19753", sort_by=[{"column_id": "title", "direction": "asc"}]
        ).json["response"]
        rows = response["records-table"]["data"]
        assert [r["id"] for r in rows] == sorted((r["id"] for r in rows), reverse=True), "forged sort ignored"
        hidden = {rule["selector"] for rule in response["records-table"]["css"]}
        assert 'th[data-dash-column="title"] .column-header--sort' in hidden
        assert not any('"created_at"' in s or '"id"' in s for s in hidden)

    def test_filter_by_status_label_and_a_bad_filter_says_why(self, sectors_app):
        client = login(sectors_app["app"], "leader")
        rows = records_request(
            client, "/feedback", "?window=30d&ward=19789", filter_query="{status} icontains đã giải quyết"
        ).json["response"]["records-table"]["data"]
        assert rows and {r["status"] for r in rows} == {"Đã giải quyết"}
        bad = records_request(client, "/feedback", "?window=30d&ward=19789", filter_query="{rating} >= nhiều")
        body = bad.json["response"]
        assert body["records-table"]["data"] == [] and "Bộ lọc không hợp lệ" in body["records-error"]["children"]

    def test_empty_ward_says_so_in_words(self, sectors_app):
        client = login(sectors_app["app"], "leader")
        body = records_request(client, "/traffic", "?window=24h&ward=20014").json["response"]
        assert "Không có sự cố giao thông nào tại" in json.dumps(body["records-title"], ensure_ascii=False)

    def test_record_detail_is_masked_for_the_leader(self, sectors_app):
        client = login(sectors_app["app"], "leader")
        text = json.dumps(
            detail(client, "/traffic", "?window=7d&ward=19753&record=" + self.incident_id(sectors_app, "19753")).json,
            ensure_ascii=False,
        )
        assert "Kiểm thử" in text and "0905123456" not in text and "Nguyễn Văn Thử" not in text and "•••56" in text

    def test_unmasked_record_views_are_audited(self, sectors_app):
        key = self.incident_id(sectors_app, "19753")
        before = self.audit_rows(sectors_app, "unmasked_view")
        client = login(sectors_app["app"], "operator")
        text = json.dumps(detail(client, "/traffic", f"?window=7d&ward=19753&record={key}").json, ensure_ascii=False)
        assert "0905123456" in text and "Nguyễn Văn Thử" in text
        after = self.audit_rows(sectors_app, "unmasked_view")
        assert after[len(before) :] == [("operator", f"traffic_incidents:{key}")]

    @staticmethod
    def incident_id(sectors_app, ward) -> str:
        with sectors_app["warehouse"].connect() as connection:
            return str(
                connection.execute(
                    select(traffic_incidents.c.id).where(
                        traffic_incidents.c.description == "Kiểm thử", traffic_incidents.c.ward_code == ward
                    )
                ).scalar()
            )

    @staticmethod
    def audit_rows(sectors_app, action):
        with sectors_app["app_db"].connect() as connection:
            return [
                tuple(r)
                for r in connection.execute(
                    select(audit_table.c.username, audit_table.c.detail)
                    .where(audit_table.c.action == action)
                    .order_by(audit_table.c.id)
                )
            ]


def read_csv(response) -> list[list[str]]:
    text = response.data.decode("utf-8")
    assert text.startswith("\ufeff"), "a byte-order mark so Excel reads UTF-8"
    return list(csv.reader(io.StringIO(text[1:])))


class TestCsvExport:
    def test_export_holds_every_matching_row_not_just_the_visible_page(self, sectors_app):
        from data_sources.demo.schema import env_air_readings as table

        client = login(sectors_app["app"], "leader")
        search = "?window=30d&ward=19753&data=env_air"
        href = records_request(client, "/environment", search).json["response"]["records-export"]["href"]
        response = client.get(href)
        assert response.status_code == 200 and response.mimetype == "text/csv"
        rows = read_csv(response)
        assert rows[0][:4] == ["Mã", "Trạm quan trắc", "Mã phường/xã", "Thời điểm đo"]
        codes = sectors_app["context"].old_codes_of("19753")
        expected = count(
            sectors_app["warehouse"],
            table,
            table.c.ward_code.in_(codes),
            table.c.observed_at >= NOW - timedelta(days=30),
        )
        assert expected > 100 and len(rows) - 1 == expected

    def test_export_applies_the_grid_filter_masks_personal_data_and_is_audited(self, sectors_app):
        client = login(sectors_app["app"], "leader")
        href = records_request(
            client, "/feedback", "?window=30d&ward=19789", filter_query="{status} icontains đã giải quyết"
        ).json["response"]["records-export"]["href"]
        before = len(TestDrillDown.audit_rows(sectors_app, "records_export"))
        rows = read_csv(client.get(href))
        header = rows[0]
        status, phone = header.index("Trạng thái"), header.index("Điện thoại")
        assert len(rows) > 1 and {r[status] for r in rows[1:]} == {"Đã giải quyết"}
        assert all(r[phone] == "" or r[phone].startswith("•••") for r in rows[1:])
        assert len(TestDrillDown.audit_rows(sectors_app, "records_export")) == before + 1

    def test_headers_follow_the_interface_language(self, sectors_app):
        client = login(sectors_app["app"], "leader_en")
        rows = read_csv(client.get("/export/feedback.csv?window=30d&ward=19789"))
        assert rows[0][:3] == ["ID", "Created", "Ward code"]


class TestForgedRequests:
    """A department head forging a request for another sector, ward or record gets 403 and no data."""

    def test_cards_of_another_ward_are_refused(self, sectors_app):
        client = login(sectors_app["app"], "ward_head")
        search = "?window=30d&ward=19789"
        for response in (
            kpis(client, "/feedback", search),
            series(client, "/feedback", search),
            ward_map(client, "/feedback", search),
            league(client, "/feedback", search),
            records_request(client, "/feedback", search),
            page(client, "/feedback", search),
        ):
            assert response.status_code == 403
            assert "records-table" not in response.text and "kpi-row" not in response.text

    def test_a_record_of_another_ward_is_refused_even_under_an_allowed_ward(self, sectors_app):
        key = TestDrillDown.incident_id(sectors_app, "19789")
        response = detail(login(sectors_app["app"], "ward_head"), "/traffic", f"?window=7d&ward=19753&record={key}")
        assert response.status_code == 403 and "Kiểm thử" not in response.text

    def test_cards_of_another_sector_are_refused(self, sectors_app):
        client = login(sectors_app["app"], "traffic_head")
        for response in (
            kpis(client, "/health", "?window=7d"),
            ward_map(client, "/health", "?window=7d"),
            league(client, "/health", "?window=7d"),
            records_request(client, "/health", "?window=30d&ward=19753"),
            detail(client, "/health", "?window=30d&ward=19753&record=1"),
        ):
            assert response.status_code == 403

    def test_navigating_to_a_ward_outside_the_scope_is_refused(self, sectors_app):
        client = login(sectors_app["app"], "ward_head")
        response = callback(
            client,
            [("url", "search")],
            [
                ("window-select", "value", "7d"),
                ("date-range", "start_date", None),
                ("date-range", "end_date", None),
                ("ward-select", "value", None),
                ("ward-map", "clickData", None),
                ("league-table", "active_cell", {"row": 0, "column": 0, "row_id": "19789"}),
                ("records-table", "active_cell", None),
                ("records-dataset", "value", "feedback"),
                ({"type": "breadcrumb", "level": "province"}, "n_clicks", 0),
            ],
            [("url", "search", "?window=7d"), ("url", "pathname", "/feedback")],
            changed=["league-table.active_cell"],
        )
        assert response.status_code == 403

    @pytest.mark.parametrize(
        ("user", "url", "status"),
        [
            ("ward_head", "/export/feedback.csv?window=30d&ward=19789", 403),  # another ward
            ("ward_head", "/export/health.csv?window=30d&ward=19753", 403),  # another sector
            ("ward_head", "/export/feedback.csv?window=30d&ward=19753&data=traffic_incidents", 403),  # other dataset
            ("ward_head", "/export/feedback.csv?window=30d&ward=00000", 400),  # unknown ward never widens
            ("traffic_head", "/export/feedback.csv?window=30d", 403),
            ("leader", "/export/nowhere.csv", 404),
            ("leader", "/export/feedback.csv?window=30d&ward=19753&q=%7Brating%7D+%3E%3D+many", 400),  # bad filter
        ],
    )
    def test_forged_exports_get_no_data(self, sectors_app, user, url, status):
        response = login(sectors_app["app"], user).get(url)
        assert response.status_code == status
        assert "\ufeff" not in response.data.decode("utf-8", "replace")

    def test_a_ward_scoped_export_without_a_ward_holds_only_their_wards(self, sectors_app):
        rows = read_csv(login(sectors_app["app"], "ward_head").get("/export/feedback.csv?window=30d"))
        ward = rows[0].index("Mã phường/xã")
        allowed = set(sectors_app["context"].old_codes_of("19753"))
        assert len(rows) > 1 and {r[ward] for r in rows[1:]} <= allowed

    def test_export_without_a_session_redirects_to_login(self, sectors_app):
        response = sectors_app["app"].server.test_client().get("/export/feedback.csv?window=30d&ward=19753")
        assert response.status_code == 302 and "/login" in response.headers["Location"]


class TestComparisonTiles:
    def test_a_versus_tile_says_against_what_the_baseline_and_the_change_with_an_arrow(self):
        from config.datasets import load_datasets
        from dashboards.cards.kpi_row import kpi_caption
        from data_sources.kpis import KpiFigure

        kpi = load_datasets().get("traffic_readings").kpi("speed_vs_last_week")
        down = kpi_caption(KpiFigure(kpi, 36.0, baseline=40.0, change=-10.0), "7d", "vi")
        assert down == "Giờ này · so với cùng giờ tuần trước: 40,0 (▼ 10,0%)"
        up = kpi_caption(KpiFigure(kpi, 44.0, baseline=40.0, change=10.0), "7d", "en")
        assert up == "This hour · vs the same hour last week: 40.0 (▲ 10.0%)"
        assert kpi_caption(KpiFigure(kpi, 44.0), "7d", "en") == "This hour · vs the same hour last week: no data yet"
