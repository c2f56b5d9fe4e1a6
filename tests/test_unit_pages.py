"""The pre-merger data and administrative-units pages through Flask's test client: totals equal SQL, scope,
forgery, CSV export, registry, the page shell's language."""

from __future__ import annotations

import base64
import csv
import io
import json
from datetime import datetime

import pytest
from sqlalchemy import func, select

from data_sources.admin_units import legacy_units
from data_sources.demo.generate import generate_warehouse
from data_sources.demo.schema import feedback_reports
from data_sources.scheduler import Poller
from data_sources.snapshots import SQLiteSnapshotStore
from data_sources.users import create_user
from data_sources.warehouse import create_warehouse_engine
from layouts.i18n import format_number
from tests.test_history import ACROSS_REFORM_NOW, ACROSS_REFORM_START
from tests.test_web import PASSWORD, callback, login, make_settings

TABLE_OUTPUTS = [("old-units-table", "columns"), ("old-units-table", "data"), ("old-units-summary", "children")]


@pytest.fixture(scope="module")
def history_app(tmp_path_factory):
    """An app over a warehouse spanning the reform, polled once, with scoped and unscoped accounts."""
    from app import create_app
    from config.datasets import load_datasets
    from dashboards.context import get_context

    folder = tmp_path_factory.mktemp("pre-merger")
    url = f"sqlite:///{folder / 'warehouse.db'}"
    generate_warehouse(url, now=ACROSS_REFORM_NOW, scale=0.02, start=ACROSS_REFORM_START)
    settings = make_settings(folder, url)
    store = SQLiteSnapshotStore(folder / "snapshots.db")
    warehouse = create_warehouse_engine(url)
    Poller(load_datasets(settings.datasets_file), warehouse, store, lambda: ACROSS_REFORM_NOW).poll_all()
    app = create_app(settings, store=store, clock=lambda: ACROSS_REFORM_NOW)
    app_db = create_warehouse_engine(settings.app_db_url)
    create_user(app_db, "leader", PASSWORD, "leader")
    create_user(app_db, "leader_en", PASSWORD, "leader", language="en")
    create_user(app_db, "traffic_head", PASSWORD, "department_head", sectors=("traffic",))
    create_user(app_db, "phu_xuan_head", PASSWORD, "department_head", sectors=("feedback",), wards=("19753",))
    return app, warehouse, get_context()


@pytest.fixture
def app_and_sql(history_app):
    """The module's app with its context installed (another module's app may have replaced it)."""
    from dashboards.context import set_context

    app, warehouse, context = history_app
    set_context(context)
    return app, warehouse


def table(client, dataset="feedback", measure="reports", first="2025-05-01", last="2025-06-01", view="old"):
    return callback(
        client,
        TABLE_OUTPUTS,
        [
            ("old-units-dataset", "value", dataset),
            ("old-units-measure", "value", measure),
            ("old-units-first-month", "value", first),
            ("old-units-last-month", "value", last),
            ("old-units-view", "value", view),
            ("snapshot-versions", "data", {}),
        ],
    )


def export(client, dataset="feedback", view="old"):
    return callback(
        client,
        [("old-units-download", "data")],
        [("old-units-export", "n_clicks", 1)],
        [
            ("old-units-dataset", "value", dataset),
            ("old-units-measure", "value", "reports"),
            ("old-units-first-month", "value", "2025-05-01"),
            ("old-units-last-month", "value", "2025-06-01"),
            ("old-units-view", "value", view),
        ],
    )


def sql_reports_by_code(engine) -> dict[str, int]:
    with engine.connect() as connection:
        rows = connection.execute(
            select(feedback_reports.c.ward_code, func.count())
            .where(feedback_reports.c.created_at >= datetime(2025, 5, 1))
            .where(feedback_reports.c.created_at < datetime(2025, 7, 1))
            .group_by(feedback_reports.c.ward_code)
        ).fetchall()
    return {code: count for code, count in rows}


class TestOldUnitTable:
    def test_each_old_unit_shows_the_warehouse_total_for_it(self, app_and_sql):
        app, warehouse = app_and_sql
        response = table(login(app, "leader"))
        assert response.status_code == 200
        rows = response.json["response"]["old-units-table"]["data"]
        expected = {code: format_number(count, "vi") for code, count in sql_reports_by_code(warehouse).items()}
        assert {row["code"]: row["value"] for row in rows} == expected
        legacy = legacy_units("46").set_index("old_code")
        assert all(row["old_name"] == legacy.at[row["code"], "old_name"] for row in rows)
        summary = response.json["response"]["old-units-summary"]["children"]
        total = format_number(sum(sql_reports_by_code(warehouse).values()), "vi")
        assert f"từ tháng 05/2025 đến tháng 06/2025; tổng cộng {total}." in summary

    def test_the_switch_shows_the_same_months_under_todays_wards(self, app_and_sql):
        app, warehouse = app_and_sql
        rows = table(login(app, "leader"), view="new").json["response"]["old-units-table"]["data"]
        assert len(rows) == 40
        phu_xuan = next(row for row in rows if row["code"] == "19753")
        legacy = legacy_units("46")
        old_codes = set(legacy.loc[legacy["new_code"] == "19753", "old_code"])
        expected = sum(count for code, count in sql_reports_by_code(warehouse).items() if code in old_codes)
        assert phu_xuan["value"] == format_number(expected, "vi")
        assert phu_xuan["name"] == "Phường Phú Xuân" and phu_xuan["type"] == "Phường"

    def test_english_follows_the_users_language(self, app_and_sql):
        app, _ = app_and_sql
        response = table(login(app, "leader_en"), view="new").json["response"]
        headers = [c["name"] for c in response["old-units-table"]["columns"]]
        assert headers == ["Ward/commune code", "Current ward/commune", "Unit type", "Unit codes with data", "Reports"]
        phu_xuan = next(row for row in response["old-units-table"]["data"] if row["code"] == "19753")
        assert phu_xuan["name"] == "Phu Xuan Ward" and phu_xuan["type"] == "Ward"
        assert "from 2025-05 to 2025-06" in response["old-units-summary"]["children"]


class TestScope:
    def test_department_head_forging_another_sectors_dataset_gets_403_and_no_data(self, app_and_sql):
        app, _ = app_and_sql
        client = login(app, "traffic_head")
        forged = table(client)
        assert forged.status_code == 403 and "old-units-table" not in forged.text
        assert export(client).status_code == 403
        choices = callback(
            client,
            [
                ("old-units-measure", "options"),
                ("old-units-measure", "value"),
                ("old-units-first-month", "options"),
                ("old-units-first-month", "value"),
                ("old-units-last-month", "options"),
                ("old-units-last-month", "value"),
            ],
            [("old-units-dataset", "value", "feedback")],
            [
                ("old-units-measure", "value", None),
                ("old-units-first-month", "value", None),
                ("old-units-last-month", "value", None),
            ],
        )
        assert choices.status_code == 403
        assert table(client, dataset="traffic_incidents", measure="incidents").status_code == 200

    def test_ward_limited_head_sees_only_the_old_units_of_their_ward(self, app_and_sql):
        app, warehouse = app_and_sql
        rows = table(login(app, "phu_xuan_head")).json["response"]["old-units-table"]["data"]
        legacy = legacy_units("46")
        mine = set(legacy.loc[legacy["new_code"] == "19753", "old_code"])
        with_data = {code for code in sql_reports_by_code(warehouse) if code in mine}
        assert {row["code"] for row in rows} == with_data and len(with_data) > 1
        assert {row["new_ward"] for row in rows} == {"Phường Phú Xuân"}
        new_view = table(login(app, "phu_xuan_head"), view="new").json["response"]["old-units-table"]["data"]
        assert [row["code"] for row in new_view] == ["19753"]

    def test_unknown_dataset_is_404_and_unknown_measure_400(self, app_and_sql):
        app, _ = app_and_sql
        client = login(app, "leader")
        assert table(client, dataset="payroll").status_code == 404
        assert table(client, measure="speed_sum; DROP TABLE x").status_code == 400


class TestExport:
    def test_csv_holds_every_row_in_utf8_with_a_byte_order_mark(self, app_and_sql):
        app, warehouse = app_and_sql
        download = export(login(app, "leader")).json["response"]["old-units-download"]["data"]
        assert download["filename"] == "truoc-sap-nhap_feedback_don-vi-cu_2025-05_2025-06.csv"
        raw = base64.b64decode(download["content"])
        assert raw.startswith(b"\xef\xbb\xbf")
        rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
        assert rows[0] == [
            "Mã đơn vị cũ",
            "Đơn vị cũ",
            "Quận/huyện/thị xã cũ",
            "Thuộc phường/xã hiện nay",
            "Hình thức sáp nhập",
            "Phản ánh",
        ]
        expected = sql_reports_by_code(warehouse)
        assert {row[0]: int(float(row[5])) for row in rows[1:]} == expected
        assert any(row[1] == "Phường Gia Hội" and row[3] == "Phường Phú Xuân" for row in rows[1:])

    def test_a_scoped_export_holds_only_the_accounts_wards(self, app_and_sql):
        app, _ = app_and_sql
        download = export(login(app, "phu_xuan_head"), view="new").json["response"]["old-units-download"]["data"]
        rows = list(csv.reader(io.StringIO(base64.b64decode(download["content"]).decode("utf-8-sig"))))
        assert [row[0] for row in rows[1:]] == ["19753"]


def test_the_page_is_in_the_menu_and_renders_its_controls(app_and_sql):
    app, _ = app_and_sql
    response = callback(
        login(app, "leader"),
        [("page-content", "children"), ("nav", "children")],
        [("url", "pathname", "/pre-merger")],
        [("url", "search", "")],
    )
    assert response.status_code == 200
    text = json.dumps(response.json, ensure_ascii=False)
    assert "/pre-merger" in text and "Dữ liệu trước sáp nhập" in text
    assert "old-units-dataset" in text and "Theo đơn vị cũ (trước 01/07/2025)" in text


class TestUnitsPage:
    def render(self, client):
        response = callback(
            client,
            [("page-content", "children"), ("nav", "children")],
            [("url", "pathname", "/units")],
            [("url", "search", "")],
        )
        assert response.status_code == 200
        return response.json["response"], json.dumps(response.json, ensure_ascii=False)

    def table_rows(self, response) -> list[dict]:
        found = []

        def walk(node):
            if isinstance(node, dict):
                if node.get("type") == "DataTable":
                    found.extend(node["props"]["data"])
                for value in node.values():
                    walk(value)
            elif isinstance(node, list):
                for value in node:
                    walk(value)

        walk(response["page-content"])
        return found

    def test_registry_lists_every_ward_with_type_population_and_former_units(self, app_and_sql):
        app, _ = app_and_sql
        response, text = self.render(login(app, "leader"))
        rows = self.table_rows(response)
        assert len(rows) == 40
        phu_xuan = next(row for row in rows if row["code"] == "19753")
        assert phu_xuan["type"] == "Phường" and "Phường Gia Hội" in phu_xuan["former"]
        assert phu_xuan["population"] != "–", "the demo supplies a population per ward"
        assert "Dân số: số liệu mô phỏng của bản demo, không phải số liệu chính thức." in text
        assert "ranh giới gần đúng" in text and "133 đơn vị cũ trước 01/07/2025: 133 sáp nhập toàn bộ" in text

    def test_english_types_and_names(self, app_and_sql):
        app, _ = app_and_sql
        response, text = self.render(login(app, "leader_en"))
        phu_xuan = next(row for row in self.table_rows(response) if row["code"] == "19753")
        assert (phu_xuan["name"], phu_xuan["type"]) == ("Phu Xuan Ward", "Ward")
        assert "Population: synthetic demo figures, not official statistics." in text

    def test_a_ward_limited_account_sees_its_wards_only(self, app_and_sql):
        app, _ = app_and_sql
        response, _ = self.render(login(app, "phu_xuan_head"))
        assert [row["code"] for row in self.table_rows(response)] == ["19753"]


def test_the_page_shell_is_in_the_users_language(app_and_sql):
    app, _ = app_and_sql
    page = login(app, "leader_en").get("/").text
    assert '<html lang="en">' in page and "<title>Intelligent Operations Centre</title>" in page
    assert '<html lang="vi">' in login(app, "leader").get("/").text
