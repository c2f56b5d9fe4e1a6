"""The web app through Flask's test client: login guard, callback permissions, figures equal SQL."""

from __future__ import annotations

import json
import re
import secrets
import subprocess
import sys
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from config.settings import PROJECT_DIR, Settings
from data_sources.clock import to_local_naive
from data_sources.demo.schema import OPEN_FEEDBACK_STATUSES, feedback_reports
from data_sources.scheduler import Poller
from data_sources.snapshots import SQLiteSnapshotStore
from data_sources.users import create_user
from data_sources.warehouse import create_warehouse_engine
from layouts.i18n import format_number
from tests.conftest import FIXED_NOW

PASSWORD = "correct horse battery"
DASH_ENDPOINTS = ("/_dash-layout", "/_dash-dependencies")


def make_settings(folder: Path, warehouse_url: str) -> Settings:
    """Settings for a test app: everything under ``folder``."""
    return Settings(
        source="tests",
        province_code="46",
        warehouse_url=warehouse_url,
        app_db_url=f"sqlite:///{folder / 'app.db'}",
        snapshot_url=f"sqlite:///{folder / 'snapshots.db'}",
        secret_key=secrets.token_urlsafe(48),
        datasets_file=PROJECT_DIR / "config" / "datasets.toml",
        boundaries_path=None,
        population_table="ward_population",
        session_idle_minutes=30,
        unmasked_roles=(),
        refresh_seconds=5,
        map_tile_url=None,
        secure_cookies=False,
    )


@pytest.fixture(scope="module")
def web(seeded_warehouse, tmp_path_factory):
    """A test app over the seeded warehouse, polled once, with one account per role."""
    from app import create_app
    from config.datasets import load_datasets

    folder = tmp_path_factory.mktemp("web")
    settings = make_settings(folder, seeded_warehouse)
    store = SQLiteSnapshotStore(folder / "snapshots.db")
    warehouse = create_warehouse_engine(seeded_warehouse)
    Poller(load_datasets(settings.datasets_file), warehouse, store, lambda: FIXED_NOW).poll_all()
    app = create_app(settings, store=store, clock=lambda: FIXED_NOW)
    app_db = create_warehouse_engine(settings.app_db_url)
    create_user(app_db, "leader", PASSWORD, "leader")
    create_user(app_db, "traffic_head", PASSWORD, "department_head", sectors=("traffic",))
    create_user(app_db, "feedback_head", PASSWORD, "department_head", sectors=("feedback",))
    return app, warehouse, settings


def login(app, username: str):
    """A test client signed in as ``username``, with the CSRF header Dash's renderer would send."""
    client = app.server.test_client()
    page = client.get("/login")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)
    response = client.post("/login", data={"username": username, "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302
    client.get("/")
    client.csrf = client.get_cookie("_csrf_token").value
    return client


def callback(client, outputs: list[tuple[str, str]], inputs: list[tuple[str, str, object]], state=(), changed=()):
    """POST one Dash callback request the way the renderer does."""
    spec = [{"id": i, "property": p} for i, p in outputs]
    name = "...".join(f"{i}.{p}" for i, p in outputs)
    body = {
        "output": f"..{name}.." if len(outputs) > 1 else name,
        "outputs": spec if len(outputs) > 1 else spec[0],
        "inputs": [{"id": i, "property": p, "value": v} for i, p, v in inputs],
        "state": [{"id": i, "property": p, "value": v} for i, p, v in state],
        "changedPropIds": list(changed),
    }
    return client.post("/_dash-update-component", json=body, headers={"X-CSRFToken": getattr(client, "csrf", "")})


def kpi_row(client, path: str = "/feedback", search: str = "?window=7d"):
    return callback(
        client,
        [("kpi-row", "children")],
        [("snapshot-versions", "data", {}), ("url", "search", search)],
        [("url", "pathname", path)],
    )


RECORDS_OUTPUTS = [
    ("records-table", "data"),
    ("records-table", "columns"),
    ("records-table", "css"),
    ("records-table", "active_cell"),
    ("records-title", "children"),
    ("records-error", "children"),
    ("records-cursor", "data"),
    ("records-page-label", "children"),
    ("records-export", "href"),
    ("records-list", "style"),
]


MAP_OUTPUTS = [("ward-map", "figure"), ("map-note", "children"), ("map-drawn", "data")]
LEAGUE_OUTPUTS = [
    ("league-table", "data"),
    ("league-table", "columns"),
    ("league-table", "locale_format"),
    ("league-table", "style_data_conditional"),
    ("league-note", "children"),
]


def records_request(client, path: str, search: str, *, sort_by=(), filter_query="", cursor=None, changed=()):
    """POST the drill-down grid's callback (page 1 unless ``cursor`` and ``changed`` say otherwise)."""
    return callback(
        client,
        RECORDS_OUTPUTS,
        [
            ("url", "search", search),
            ("records-table", "sort_by", list(sort_by)),
            ("records-table", "filter_query", filter_query),
            ("records-prev", "n_clicks", 0),
            ("records-next", "n_clicks", 0),
        ],
        [("url", "pathname", path), ("records-cursor", "data", cursor)],
        changed=changed,
    )


def tile_values(response) -> dict[str, str]:
    """KPI id -> the value text shown on its tile."""
    tiles = response.json["response"]["kpi-row"]["children"]
    values = {}
    for tile in tiles:
        body = tile["props"]["children"]["props"]["children"]
        values[tile["props"]["id"]["kpi"]] = body[1]["props"]["children"][0]["props"]["children"]
    return values


class TestLoginGuard:
    def test_every_dash_endpoint_answers_401_without_a_session(self, web):
        app, _, _ = web
        client = app.server.test_client()
        for path in DASH_ENDPOINTS:
            assert client.get(path).status_code == 401, path
        assert client.post("/_dash-update-component", json={}).status_code == 401

    def test_pages_redirect_to_the_login_form(self, web):
        app, _, _ = web
        response = app.server.test_client().get("/feedback?window=7d")
        assert response.status_code == 302
        assert response.headers["Location"].startswith("/login?next=/feedback")

    def test_wrong_password_and_missing_csrf_are_refused_without_a_trace(self, web):
        app, _, _ = web
        client = app.server.test_client()
        token = re.search(r'name="csrf_token" value="([^"]+)"', client.get("/login").text).group(1)
        wrong = client.post("/login", data={"username": "leader", "password": "nope", "csrf_token": token})
        assert wrong.status_code == 401 and "Sai tên đăng nhập hoặc mật khẩu" in wrong.text
        missing = client.post("/login", data={"username": "leader", "password": PASSWORD})
        assert missing.status_code == 400 and "Traceback" not in missing.text

    def test_callback_without_csrf_header_is_refused(self, web):
        app, _, _ = web
        client = login(app, "leader")
        client.csrf = ""
        assert kpi_row(client).status_code == 400

    def test_every_registered_callback_declares_a_permission(self, web):
        from tests.security_helpers import server_callbacks, undeclared_callbacks

        app, _, _ = web
        assert len(server_callbacks(app)) >= 10, "Dash's registry lists the app's callbacks"
        assert not undeclared_callbacks(app), "callbacks without @secured(permission); see tests/security_helpers.py"


class TestFigures:
    def test_feedback_tiles_equal_sql_on_the_warehouse(self, web):
        app, warehouse, _ = web
        now = to_local_naive(FIXED_NOW)
        midnight = now.replace(hour=0, minute=0, second=0, microsecond=0)
        table = feedback_reports
        with warehouse.connect() as connection:
            open_count = connection.execute(
                select(func.count()).where(table.c.status.in_(OPEN_FEEDBACK_STATUSES))
            ).scalar()
            overdue = connection.execute(
                select(func.count()).where(table.c.status.in_(OPEN_FEEDBACK_STATUSES), table.c.deadline_at < now)
            ).scalar()
            new_today = connection.execute(
                select(func.count()).where(table.c.created_at >= midnight, table.c.created_at <= now)
            ).scalar()
            start = now - timedelta(days=7)
            start = start.replace(minute=0, second=0, microsecond=0)
            window = [table.c.created_at >= start]
            reports = connection.execute(select(func.count()).where(*window)).scalar()
            closed = connection.execute(
                select(func.count()).where(*window, table.c.status.in_(("resolved", "rejected")))
            ).scalar()
        assert open_count > 0 and reports > 0
        shown = tile_values(kpi_row(login(app, "leader")))
        assert shown["open"] == format_number(open_count, "vi")
        assert shown["overdue"] == format_number(overdue, "vi")
        assert shown["new_today"] == format_number(new_today, "vi")
        assert shown["resolution_rate"] == format_number(closed / reports * 100, "vi", 1)

    def test_refresh_tick_sends_nothing_when_no_snapshot_changed(self, web):
        app, _, _ = web
        client = login(app, "leader")

        def tick(known):
            return callback(
                client,
                [("snapshot-versions", "data"), ("freshness-store", "data"), ("data-unavailable", "children")],
                [("refresh-tick", "n_intervals", 3), ("url", "pathname", "/feedback")],
                [("snapshot-versions", "data", known)],
                changed=["refresh-tick.n_intervals"],
            )

        first = tick({})
        assert first.status_code == 200
        versions = first.json["response"]["snapshot-versions"]["data"]
        assert versions["versions"]["feedback"] >= 1
        assert tick(versions).status_code == 204


class TestScope:
    def test_department_head_forging_another_sectors_callback_gets_403(self, web):
        app, _, _ = web
        client = login(app, "traffic_head")
        response = kpi_row(client, "/feedback")
        assert response.status_code == 403
        assert "kpi-row" not in response.text

    def test_department_head_sees_only_their_sector_on_the_overview(self, web):
        app, _, _ = web
        response = callback(
            login(app, "feedback_head"), [("overview-tiles", "children")], [("snapshot-versions", "data", {})]
        )
        tiles = response.json["response"]["overview-tiles"]["children"]
        assert [t["props"]["id"]["dataset"] for t in tiles] == ["feedback"]

    def test_a_registered_page_is_served_listed_and_refused_by_its_permission(self, web, monkeypatch):
        from dash import html

        from dashboards import routes

        page = routes.Page(
            "/test-admin-only", "nav.overview", "manage_users", lambda r: html.P(f"for {r.account.username}")
        )
        monkeypatch.setitem(routes._PAGES, page.path, page)
        app, _, _ = web
        create_user(create_warehouse_engine(web[2].app_db_url), "page_admin", PASSWORD, "admin")

        def display(client):
            return callback(
                client,
                [("page-content", "children"), ("nav", "children")],
                [("url", "pathname", page.path)],
                [("url", "search", "")],
            )

        admin = display(login(app, "page_admin"))
        assert admin.status_code == 200
        assert "for page_admin" in admin.text
        assert page.path in json.dumps(admin.json["response"]["nav"]), "listed in the menu of who may open it"
        leader = display(login(app, "leader"))
        assert leader.status_code == 403 and "for leader" not in leader.text

    def test_records_are_masked_by_default(self, web):
        app, _, _ = web
        response = records_request(login(app, "leader"), "/feedback", "?window=30d&ward=19753")
        rows = response.json["response"]["records-table"]["data"]
        assert rows, "the seeded warehouse has feedback in Phú Xuân in the last 30 days"
        assert all("•••" in (row["citizen_phone"] or "•••") for row in rows)


class TestBadConfig:
    def test_malformed_setting_stops_start_up_with_one_line_naming_key_and_file(self, tmp_path):
        config = tmp_path / "ioc.toml"
        config.write_text('[ioc]\nprovince_code = "46"\nwarehouse_url = "sqlite:///x.db"\nrefresh_seconds = "often"\n')
        result = subprocess.run(
            [sys.executable, "app.py", "web"],
            cwd=PROJECT_DIR,
            env={"IOC_CONFIG": str(config), "PATH": "/usr/bin:/bin"},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 2
        lines = [line for line in result.stderr.strip().splitlines() if line]
        assert lines == [f"configuration error: {config}: app_db_url: is required"]

    def test_unreachable_warehouse_serves_a_page_saying_since_when(self, tmp_path):
        from app import create_app

        settings = replace(
            make_settings(tmp_path, "postgresql+psycopg://postgres@127.0.0.1:1/nowhere"),
            app_db_url=f"sqlite:///{tmp_path / 'app.db'}",
        )
        store = SQLiteSnapshotStore(tmp_path / "snapshots.db")
        from config.datasets import load_datasets

        poller = Poller(
            load_datasets(settings.datasets_file),
            create_warehouse_engine(settings.warehouse_url),
            store,
            lambda: FIXED_NOW,
        )
        results = poller.poll_all()
        assert all(r.error for r in results.values())
        app = create_app(settings, store=store, clock=lambda: FIXED_NOW)
        create_user(create_warehouse_engine(settings.app_db_url), "leader", PASSWORD, "leader")
        response = callback(
            login(app, "leader"),
            [("snapshot-versions", "data"), ("freshness-store", "data"), ("data-unavailable", "children")],
            [("refresh-tick", "n_intervals", 1), ("url", "pathname", "/")],
            [("snapshot-versions", "data", {})],
        )
        banner = response.json["response"]["data-unavailable"]["children"]
        assert banner == "Dữ liệu không khả dụng từ 20/11/2026 15:30"
        assert json.dumps(response.json).count("Traceback") == 0
