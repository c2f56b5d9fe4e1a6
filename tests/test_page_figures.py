"""Figures computed once per snapshot version and shared (issue 4's refresh speed).

The poller prepares each new version for the web (ward frames and the figures of the usual views,
``data_sources.ward_frames``); the web keeps one version's figures per dataset for every request and
user (``data_sources.figures.WardFrames``). These tests hold that a refresh returns exactly what it
returns without any of that, that new versions and the clock give new figures, and that memory stays
bounded.
"""

from __future__ import annotations

import dataclasses
import gc
import shutil
import threading
import weakref
from datetime import timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import insert

from config.datasets import load_datasets
from dashboards.sectors import SECTOR_PAGES
from data_sources import release
from data_sources.admin_units import crosswalk as unit_crosswalk
from data_sources.admin_units import current_units
from data_sources.demo.schema import feedback_reports
from data_sources.figures import (
    ENTITY_KINDS,
    MISSING,
    WardFrames,
    entity_latest,
    entity_latest_key,
    kpi_key,
    kpi_value,
    series_key,
    series_table,
    ward_frames,
)
from data_sources.kpis import compute_kpi
from data_sources.points import PointsPublisher
from data_sources.scheduler import Poller
from data_sources.snapshots import MemorySnapshotStore, SQLiteSnapshotStore
from data_sources.users import create_user
from data_sources.ward_frames import (
    AHEAD_WINDOWS,
    WardFiguresAhead,
    WardFramesPublisher,
    crosswalk_fingerprint,
    frame_from_json,
    frame_to_json,
    ward_template,
)
from data_sources.warehouse import create_warehouse_engine
from tests.conftest import FIXED_NOW
from tests.test_web import LEAGUE_OUTPUTS, MAP_OUTPUTS, PASSWORD, callback, login, make_settings, tile_values

VIEWS = (
    "?window=24h",
    "?window=7d",
    "?window=30d",
    "?window=7d&ward=19789",
    "?window=custom&from=2026-11-01&to=2026-11-10",
)
CARDS = {
    "tiles": [("kpi-row", "children")],
    "series": [("series-graph", "figure")],
    "map": MAP_OUTPUTS,
    "league": LEAGUE_OUTPUTS,
}


def publisher(catalogue, store, crosswalk=None, clock=lambda: FIXED_NOW) -> WardFramesPublisher:
    """The poller's hook as ``app.run_poller`` installs it."""
    return WardFramesPublisher(
        catalogue, store, crosswalk or unit_crosswalk("46"), list(current_units("46")["code"]), clock
    )


@pytest.fixture(scope="module")
def page_app(seeded_warehouse, tmp_path_factory):
    """The app over a copy of the seeded warehouse, polled once with the poller's after-poll hooks."""
    from app import create_app
    from dashboards.context import get_context

    folder = tmp_path_factory.mktemp("page-figures")
    shutil.copy(Path(seeded_warehouse.removeprefix("sqlite:///")), folder / "warehouse.db")
    warehouse_url = f"sqlite:///{folder / 'warehouse.db'}"
    warehouse = create_warehouse_engine(warehouse_url)
    settings = make_settings(folder, warehouse_url)
    store = SQLiteSnapshotStore(folder / "snapshots.db")
    catalogue = load_datasets(settings.datasets_file)
    points = PointsPublisher(catalogue, warehouse, store, lambda: FIXED_NOW)
    poller = Poller(
        catalogue, warehouse, store, lambda: FIXED_NOW, after_poll=(*publisher(catalogue, store).hooks(), points)
    )
    poller.poll_all()
    app = create_app(settings, store=store, clock=lambda: FIXED_NOW)
    app_db = create_warehouse_engine(settings.app_db_url)
    create_user(app_db, "leader", PASSWORD, "leader")
    create_user(app_db, "ward_head", PASSWORD, "department_head", sectors=("feedback", "traffic"), wards=("19753",))
    return {
        "app": app,
        "context": get_context(),
        "store": store,
        "catalogue": catalogue,
        "warehouse": warehouse,
        "poller": poller,
        "points": points,
    }


@pytest.fixture(autouse=True)
def own_context(request):
    """Each web test runs against this module's app context, whatever other modules created since."""
    if "page_app" not in request.fixturenames:
        yield
        return
    from dashboards.context import set_context

    set_context(request.getfixturevalue("page_app")["context"])
    yield


def refresh(client, path: str, search: str) -> dict[str, dict]:
    """What the cards of a sector page answer after a version change (the map drawn in full)."""
    inputs = [("snapshot-versions", "data", {"changed": True}), ("url", "search", search)]
    answers = {}
    for name, outputs in CARDS.items():
        state = [("url", "pathname", path)] + ([("map-drawn", "data", None)] if name == "map" else [])
        response = callback(client, outputs, inputs, state, changed=["snapshot-versions.data"])
        assert response.status_code == 200, (path, search, name, response.status_code)
        answers[name] = response.json["response"]
    return answers


def every_refresh(app) -> dict[tuple[str, str, str], dict]:
    """Every card of every sector page the leader and a ward-scoped head may open, in every view."""
    answers = {}
    for username in ("leader", "ward_head"):
        client = login(app, username)
        for page in SECTOR_PAGES:
            if username == "ward_head" and page.sector not in ("feedback", "traffic"):
                continue
            for search in VIEWS:
                if username == "ward_head" and "ward=" in search:
                    search = search.replace("19789", "19753")
                answers[username, page.path, search] = refresh(client, page.path, search)
    return answers


def prepared(context, dataset_id: str) -> WardFrames:
    return ward_frames(context.snapshot(dataset_id), context.crosswalk)


class TestFiguresComputedAhead:
    def test_a_province_refresh_after_a_new_version_computes_nothing_in_the_web(self, page_app):
        page_app["poller"].poll_all()  # new versions, prepared by the poller's hook
        context = page_app["context"]
        client = login(page_app["app"], "leader")
        for page in SECTOR_PAGES:
            refresh(client, page.path, "?window=7d")
        for dataset_id in {d for page in SECTOR_PAGES for d in page.datasets}:
            figures = prepared(context, dataset_id)
            assert figures.ahead > 0, dataset_id
            assert figures.computed == 0, dataset_id

    def test_a_refresh_returns_the_same_with_or_without_what_the_poller_prepared(self, page_app):
        page_app["poller"].poll_all()
        context, app = page_app["context"], page_app["app"]
        prepared_answers = every_refresh(app)
        assert all(prepared(context, d).ahead for d in ("feedback", "env_air", "dossiers"))
        # the same data published again by a poller without the hook: the web computes every figure itself
        catalogue, warehouse, store = page_app["catalogue"], page_app["warehouse"], page_app["store"]
        Poller(catalogue, warehouse, store, lambda: FIXED_NOW, after_poll=(page_app["points"],)).poll_all()
        computed_answers = every_refresh(app)
        assert all(not prepared(context, d).ahead and prepared(context, d).computed for d in ("feedback", "env_air"))
        assert set(prepared_answers) == set(computed_answers)
        for view, answer in prepared_answers.items():
            assert answer == computed_answers[view], view
        page_app["poller"].poll_all()  # back to prepared versions for the next tests

    def test_a_new_version_gives_the_new_figures(self, page_app):
        client = login(page_app["app"], "leader")
        before = tile_values(refresh_tiles(client))["new_today"]
        with page_app["warehouse"].begin() as connection:
            connection.execute(
                insert(feedback_reports).values(
                    ward_code="19753",
                    category="traffic",
                    title="Kiểm thử phiên bản mới",
                    lat=16.4637,
                    lon=107.5909,
                    status="received",
                    created_at=FIXED_NOW.replace(tzinfo=None) - timedelta(minutes=5),
                    deadline_at=FIXED_NOW.replace(tzinfo=None) + timedelta(days=3),
                    citizen_name="Nguyễn Văn Thử",
                    citizen_phone="0905123456",
                    channel="app",
                    updated_at=FIXED_NOW.replace(tzinfo=None) - timedelta(minutes=5),
                )
            )
        page_app["poller"].poll("feedback")
        after = tile_values(refresh_tiles(client))["new_today"]
        assert int(after.replace(".", "")) == int(before.replace(".", "")) + 1
        assert prepared(page_app["context"], "feedback").ahead > 0

    def test_figures_follow_the_clock_within_one_version(self, page_app):
        context = page_app["context"]
        later = FIXED_NOW + timedelta(hours=2, minutes=7)
        moved = 0
        for dataset in context.catalogue:
            snapshot = context.snapshot(dataset.id)
            for kpi in dataset.kpis:
                for window in dict.fromkeys((kpi.window, "24h", "7d")):
                    for moment in (FIXED_NOW, later, FIXED_NOW):
                        shown = kpi_value(dataset, kpi, snapshot, moment, context.crosswalk, wards=None, window=window)
                        reference = compute_kpi(dataset, kpi, snapshot, moment, context.crosswalk, window=window)
                        label = f"{dataset.id}.{kpi.id} {window} at {moment}"
                        assert shown.entity == reference.entity, label
                        assert same(shown.value, reference.value) and same(shown.baseline, reference.baseline), label
                    early = compute_kpi(dataset, kpi, snapshot, FIXED_NOW, context.crosswalk, window=window).value
                    late = compute_kpi(dataset, kpi, snapshot, later, context.crosswalk, window=window).value
                    moved += early != late
        assert moved > 5, "the later moment changes some figures: the comparison is not vacuous"

    def test_what_another_crosswalk_prepared_is_not_used(self, page_app):
        context, store, catalogue = page_app["context"], page_app["store"], page_app["catalogue"]
        page_app["poller"].poll("health_cases")
        other = dict(unit_crosswalk("46"))
        other[next(iter(other))] = "00000"  # one code read differently
        publisher(catalogue, store, crosswalk=other)("health_cases")
        figures = prepared(context, "health_cases")
        assert figures.ahead == 0
        dataset = catalogue.get("health_cases")
        snapshot = context.snapshot("health_cases")
        for kpi in dataset.kpis:
            shown = kpi_value(dataset, kpi, snapshot, FIXED_NOW, context.crosswalk, wards=None, window="7d")
            assert shown == compute_kpi(dataset, kpi, snapshot, FIXED_NOW, context.crosswalk, window="7d")
        page_app["poller"].poll("health_cases")


AGAINST_COMPUTE_KPI = ("19789", "19753", "19909")
"""Wards whose published figures are also checked against ``compute_kpi``: the busiest, one with few rows, one more."""


class TestOneWardFiguresComputedAhead:
    """A ward selected, or an account scoped to one ward: the poller publishes every ward's figures too."""

    def test_every_one_ward_figure_published_equals_the_figure_computed_in_the_web(self, page_app):
        page_app["poller"].poll_all()
        store, crosswalk = page_app["store"], page_app["context"].crosswalk
        codes = list(current_units("46")["code"])
        checked = {"kpi": 0, "series": 0, "with data": 0, "markers": 0}
        for dataset in page_app["catalogue"]:
            stored = store.get(dataset.id)
            published = WardFiguresAhead(store, dataset, stored.version, crosswalk_fingerprint(crosswalk))
            fresh = dataclasses.replace(stored)  # a snapshot object of its own: every figure computed anew
            direct = ward_frames(fresh, crosswalk)
            assert direct.ahead == 0
            for code in codes:
                wards = frozenset([code])
                for kpi in dataset.kpis:
                    for window in dict.fromkeys((kpi.window, *AHEAD_WINDOWS)):
                        key = kpi_key(dataset, kpi, direct, FIXED_NOW, wards=wards, window=window)
                        shown = published(key)
                        reference = kpi_value(dataset, kpi, fresh, FIXED_NOW, crosswalk, wards=wards, window=window)
                        label = f"{dataset.id}.{kpi.id} {window} ward {code}"
                        assert shown is not MISSING, label
                        assert (shown.kpi, shown.entity, shown.entities) == (
                            reference.kpi,
                            reference.entity,
                            reference.entities,
                        ), label
                        assert same(shown.value, reference.value), label
                        assert same(shown.baseline, reference.baseline) and same(shown.change, reference.change), label
                        if code in AGAINST_COMPUTE_KPI:  # and the kpis module's own figure, computed apart
                            own = compute_kpi(dataset, kpi, stored, FIXED_NOW, crosswalk, wards=wards, window=window)
                            assert (shown.entity, shown.entities) == (own.entity, own.entities), label
                            assert same(shown.value, own.value) and same(shown.baseline, own.baseline), label
                        checked["kpi"] += 1
                        checked["with data"] += bool(reference.value)
                    if kpi.kind in (*ENTITY_KINDS, "latest_ratio", "latest_max"):
                        key = entity_latest_key(dataset, kpi.id, fresh, FIXED_NOW, crosswalk, wards=wards)
                        reference = entity_latest(dataset, kpi.id, fresh, FIXED_NOW, crosswalk, wards=wards)
                        shown = published(key)
                        if shown is MISSING:  # only a table JSON columns cannot restore exactly is not published
                            assert frame_to_json(reference) is None, (dataset.id, kpi.id, code)
                        else:
                            pd.testing.assert_frame_equal(shown, reference, check_exact=True)
                            checked["markers"] += 1
                for window in AHEAD_WINDOWS:
                    key = series_key(dataset, FIXED_NOW, wards=wards, window=window)
                    series_table(dataset, [], fresh, FIXED_NOW, crosswalk, wards=wards, window=window)
                    reference = direct.figure(key, lambda: pytest.fail("series_table keeps its table under this key"))
                    pd.testing.assert_frame_equal(published(key), reference, check_exact=True)
                    checked["series"] += 1
        assert checked["kpi"] > 1000 and checked["series"] > 500 and checked["with data"] > 300, checked
        assert checked["markers"] > 100, checked

    def test_a_one_ward_refresh_after_a_new_version_computes_nothing_in_the_web(self, page_app):
        page_app["poller"].poll_all()
        context = page_app["context"]
        for username, search in (("leader", "?window=24h&ward=19789"), ("ward_head", "?window=30d")):
            client = login(page_app["app"], username)
            for page in SECTOR_PAGES:
                if username == "leader" or page.sector in ("feedback", "traffic"):
                    refresh(client, page.path, search)
        for dataset_id in {d for page in SECTOR_PAGES for d in page.datasets}:
            figures = prepared(context, dataset_id)
            assert figures.looked_up > 0, dataset_id
            assert figures.computed == 0, dataset_id

    def test_a_web_worker_finds_every_ward_figures_the_poller_publishes_after_the_version(self, page_app):
        catalogue, store, crosswalk = page_app["catalogue"], page_app["store"], page_app["context"].crosswalk
        hook, each_ward = publisher(catalogue, store).hooks()
        Poller(catalogue, page_app["warehouse"], store, lambda: FIXED_NOW, after_poll=(hook,)).poll("feedback")
        dataset, snapshot = catalogue.get("feedback"), store.get("feedback")
        lookup = WardFiguresAhead(store, dataset, snapshot.version, crosswalk_fingerprint(crosswalk))
        lookup.RETRY_SECONDS = 0.0
        key = kpi_key(
            dataset,
            dataset.kpi("open"),
            ward_frames(snapshot, crosswalk),
            FIXED_NOW,
            wards=frozenset(["19789"]),
            window="7d",
        )
        assert lookup(key) is MISSING  # not there yet: the web computes it meanwhile
        each_ward("feedback")
        found = lookup(key)
        assert found is not MISSING
        assert found == kpi_value(
            dataset,
            dataset.kpi("open"),
            dataclasses.replace(snapshot),
            FIXED_NOW,
            crosswalk,
            wards=frozenset(["19789"]),
            window="7d",
        )
        page_app["poller"].poll_all()

    def test_a_poll_that_changed_nothing_publishes_the_same_ward_figures_for_its_version(self, page_app, monkeypatch):
        from data_sources import figures as figures_module

        catalogue, store = page_app["catalogue"], page_app["store"]
        hook, each_ward = publisher(catalogue, store).hooks()
        poller = Poller(catalogue, page_app["warehouse"], store, lambda: FIXED_NOW, after_poll=(hook, each_ward))
        computed = []  # which datasets' every-ward figures were computed (the hook imports the function on use)
        original = figures_module.ward_figures_ahead
        monkeypatch.setattr(
            figures_module, "ward_figures_ahead", lambda *a, **k: computed.append(a[0].id) or original(*a, **k)
        )
        poller.poll("feedback")
        first = store.get("ward-figures:feedback")
        poller.poll("feedback")  # nothing new in the warehouse, the clock where it was
        second = store.get("ward-figures:feedback")
        assert computed == ["feedback"]  # figures computed once, published for both versions
        assert second.meta["source_version"] == store.versions()["feedback"] > first.meta["source_version"]
        assert second.frames["w:19789"].equals(first.frames["w:19789"])
        page_app["poller"].poll_all()

    def test_only_kpi_and_series_keys_of_exactly_one_ward_are_looked_up(self):
        one, two = frozenset(["19789"]), frozenset(["19789", "19753"])
        template, code = ward_template(("kpi", "open", "7d", None, one, (5,)))
        assert code == "19789" and template == ward_template(("kpi", "open", "7d", None, frozenset(["1"]), (5,)))[0]
        assert ward_template(("series", "7d", None, two, ("hourly", 1, 2))) is None
        assert ward_template(("kpi", "open", "7d", None, None, (5,))) is None
        assert ward_template(("entity_latest", "aqi_max", one, (5,)))[1] == "19789"
        assert ward_template(("rows", "recent", one)) is None


def same(value, reference) -> bool:
    if value is None or reference is None:
        return value is reference
    return value == pytest.approx(reference, rel=1e-12)


def refresh_tiles(client):
    return callback(
        client,
        [("kpi-row", "children")],
        [("snapshot-versions", "data", {"changed": True}), ("url", "search", "?window=7d")],
        [("url", "pathname", "/feedback")],
        changed=["snapshot-versions.data"],
    )


class TestBoundedMemory:
    def test_each_version_keeps_at_most_its_share_of_figures(self):
        store = MemorySnapshotStore()
        snapshot = store.put("feedback", {}, {"recent": pd.DataFrame({"bucket": [0], "unit": ["19753"]})})
        figures = WardFrames(snapshot, unit_crosswalk("46"), max_figures=8)
        for i in range(50):
            assert figures.figure(("x", i), lambda i=i: i) == i
        assert len(figures) == 8
        assert figures.figure(("x", 49), lambda: pytest.fail("the newest figure was dropped")) == 49
        assert figures.figure(("x", 0), lambda: "again") == "again"  # the oldest was

    def test_only_the_newest_version_of_a_dataset_is_kept(self):
        store = MemorySnapshotStore()
        crosswalk = unit_crosswalk("46")
        frames = {"recent": pd.DataFrame({"bucket": [0], "unit": ["19753"], "reports": [1.0]})}
        older = []
        for _ in range(5):
            snapshot = store.put("feedback", {}, frames)
            kept = ward_frames(snapshot, crosswalk)
            kept.figure(("kpi", snapshot.version), lambda: np.zeros(100_000))
            older.append(weakref.ref(kept))
            del kept, snapshot
        assert release.wait_released()  # replaced versions are dropped a moment later, off the request
        gc.collect()
        assert [ref() is not None for ref in older] == [False, False, False, False, True]

    def test_a_replaced_version_is_freed_on_the_release_thread_not_by_the_request(self):
        class Version:
            pass

        freed_on: list[str] = []
        version = Version()
        weakref.finalize(version, lambda: freed_on.append(threading.current_thread().name))
        release.release_later(version)
        del version
        assert freed_on == []  # still held: the request that replaced it does not pay for freeing it
        assert release.wait_released()
        assert freed_on == [release.THREAD_NAME]


class TestFiguresAsStored:
    def test_small_frames_come_back_with_their_values_and_dtypes(self):
        frame = pd.DataFrame(
            {
                "entity": pd.Series(["S1", None, "S3"], dtype="string"),
                "name": pd.Series(["Trạm A", "Trạm B", None], dtype="str"),
                "value": [1.5, np.nan, 3.0],
                "count": np.array([1, 2, 3], dtype="int64"),
                "time": pd.to_datetime([0, 3600, 7200], unit="s"),
                "other": np.array(["x", None, 2], dtype=object),
            }
        )
        back = frame_from_json(frame_to_json(frame))
        pd.testing.assert_frame_equal(back, frame)
        empty = pd.DataFrame(columns=["time", "reports"])
        pd.testing.assert_frame_equal(frame_from_json(frame_to_json(empty)), empty)

    def test_frames_it_cannot_restore_exactly_are_not_stored(self):
        assert frame_to_json(pd.DataFrame({"a": [1.0]}, index=[5])) is None
        assert frame_to_json(pd.DataFrame({"a": pd.Categorical(["x"])})) is None


def test_the_hook_publishes_beside_the_dataset_and_leaves_its_snapshot_alone(page_app):
    store = page_app["store"]
    before, raw = store.versions(), store.get("feedback")
    hook, each_ward = publisher(page_app["catalogue"], store).hooks()
    hook("feedback")
    assert store.versions()["ward-figures:feedback"] == before["ward-figures:feedback"]  # the later hook's work
    each_ward("feedback")
    after = store.versions()
    assert after["feedback"] == before["feedback"]
    assert after["figures:feedback"] == before["figures:feedback"] + 1
    assert after["wards:feedback"] == before["wards:feedback"] + 1
    assert after["ward-figures:feedback"] == before["ward-figures:feedback"] + 1
    kept = store.get("feedback")
    assert kept.meta == raw.meta
    assert set(kept.frames) == set(raw.frames) and "ward" not in kept.frames["recent"]
