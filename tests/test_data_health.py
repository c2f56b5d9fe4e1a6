"""Data health through the Flask test client: every kind of bad row shown with counts and examples,
scoped to a department head's sectors and wards (forged requests refused), poll health for operators."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest
from sqlalchemy import MetaData, func, insert, select

from config.datasets import load_datasets
from data_sources.admin_units import crosswalk
from data_sources.clock import to_local_naive
from data_sources.demo.schema import feedback_reports, metadata, traffic_readings
from data_sources.quality import QualityRules
from data_sources.scheduler import Poller
from data_sources.snapshots import SQLiteSnapshotStore
from data_sources.sql import Bounds
from data_sources.users import create_user
from data_sources.warehouse import create_warehouse_engine
from layouts import ids
from tests.conftest import FIXED_NOW, SteppingClock
from tests.test_web import PASSWORD, callback, login, make_settings

VY_DA = "19777"
PHU_XUAN = "19753"
HUE_BOUNDS = Bounds(15.9, 107.0, 16.8, 108.3)
SECRET_PHONE = "0905123456"


def feedback(now: datetime, minutes_ago: float, **extra) -> dict:
    created = now - timedelta(minutes=minutes_ago)
    row = {
        "ward_code": VY_DA,
        "category": "traffic",
        "title": "Ổ gà",
        "status": "received",
        "created_at": created,
        "deadline_at": created + timedelta(days=3),
        "rating": None,
        "lat": 16.47,
        "lon": 107.6,
        "citizen_name": "Nguyễn Văn An",
        "citizen_phone": SECRET_PHONE,
        "updated_at": created,
    }
    return row | extra


def traffic(now: datetime, minutes_ago: float, segment: str, **extra) -> dict:
    observed = now - timedelta(minutes=minutes_ago)
    row = {
        "segment_id": segment,
        "ward_code": VY_DA,
        "observed_at": observed,
        "vehicle_count": 12,
        "avg_speed_kmh": 30.0,
        "free_flow_kmh": 40.0,
        "updated_at": observed,
    }
    return row | extra


def relaxed_schema() -> MetaData:
    """The demo schema with the feedback table's event time and watermark nullable, as many real
    warehouses have them (the demo's own tables forbid NULL there)."""
    relaxed = MetaData()
    for table in metadata.sorted_tables:
        table.to_metadata(relaxed)
    for column in ("created_at", "updated_at"):
        relaxed.tables["feedback_reports"].c[column].nullable = True
    return relaxed


@pytest.fixture(scope="module")
def health_web(tmp_path_factory):
    """A warehouse holding every kind of bad row, polled twice (the second poll finds a late arrival)."""
    from app import create_app

    folder = tmp_path_factory.mktemp("health")
    url = f"sqlite:///{folder / 'warehouse.db'}"
    engine = create_warehouse_engine(url)
    relaxed_schema().create_all(engine)
    now = to_local_naive(FIXED_NOW)
    with engine.begin() as connection:
        connection.execute(
            insert(feedback_reports),
            [
                feedback(now, 10),
                feedback(now, 11, ward_code=PHU_XUAN),
                feedback(now, 12, ward_code=None),  # completeness: required ward code missing
                feedback(now, 13, status="resolved", rating=-999),  # sentinel
                feedback(now, 14, status="resolved", rating=9),  # outside 1..5
                feedback(now, 15, lat=10.77, lon=106.70),  # a point in Hồ Chí Minh City
                feedback(now, 16, ward_code="99999"),  # no such ward
                feedback(now, 17, ward_code=PHU_XUAN, rating=-999, status="resolved"),  # another ward's sentinel
                feedback(now, 18, ward_code=PHU_XUAN, created_at=None, title="NO-TIME"),  # no event time
                feedback(now, 19, ward_code=PHU_XUAN, updated_at=None),  # no watermark
            ],
        )
        connection.execute(
            insert(traffic_readings),
            [traffic(now, 5, "SEG1"), traffic(now, 5, "SEG1"), traffic(now, 6, "SEG2", avg_speed_kmh=-999.0)],
        )
    clock = SteppingClock(FIXED_NOW)
    settings = make_settings(folder, url)
    store = SQLiteSnapshotStore(folder / "snapshots.db")
    catalogue = load_datasets(settings.datasets_file)
    poller = Poller(
        catalogue,
        create_warehouse_engine(url),
        store,
        clock,
        rules=QualityRules(HUE_BOUNDS, frozenset(crosswalk("46"))),
    )
    poller.poll_all()
    with engine.begin() as connection:  # written now with a two-hour-old updated_at: after the 10 min window
        connection.execute(insert(feedback_reports), [feedback(now, 120)])
    clock.advance(seconds=20)
    poller.poll_all()
    app = create_app(settings, store=store, clock=clock)
    app_db = create_warehouse_engine(settings.app_db_url)
    create_user(app_db, "operator", PASSWORD, "operator")
    create_user(app_db, "leader", PASSWORD, "leader")
    create_user(app_db, "feedback_head", PASSWORD, "department_head", sectors=("feedback",))
    create_user(app_db, "traffic_head", PASSWORD, "department_head", sectors=("traffic",))
    create_user(app_db, "vy_da_head", PASSWORD, "department_head", sectors=("feedback",), wards=(VY_DA,))
    yield app, poller
    engine.dispose()


def health(client, dataset: str, window: str = "24h"):
    return callback(
        client,
        [(ids.HEALTH_OVERVIEW, "children"), (ids.HEALTH_DETAIL, "children"), (ids.HEALTH_FRESHNESS, "data")],
        [(ids.VERSIONS, "data", {}), (ids.HEALTH_DATASET, "value", dataset), (ids.HEALTH_WINDOW, "value", window)],
    )


def texts(component) -> list[str]:
    """Every string in a serialised Dash component tree, in order."""
    found: list[str] = []

    def walk(node):
        if isinstance(node, str):
            found.append(node)
        elif isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            walk(node.get("props", {}).get("children"))

    walk(component)
    return found


def table_rows(component) -> list[list[str]]:
    """The body rows of every table in a component tree, as lists of cell texts."""
    rows: list[list[str]] = []

    def walk(node):
        if isinstance(node, list):
            for item in node:
                walk(item)
        elif isinstance(node, dict):
            if node.get("type") == "Tr":
                cells = node["props"]["children"]
                if cells and cells[0].get("type") == "Td":
                    rows.append([" ".join(texts(c["props"].get("children"))) for c in cells])
                return
            walk(node.get("props", {}).get("children"))

    walk(component)
    return rows


def row_for(rows: list[list[str]], label: str) -> list[str]:
    matches = [r for r in rows if r[0] == label]
    assert matches, f"no row {label!r} in {[r[0] for r in rows]}"
    return matches[0]


class TestBadRowsOnTheHealthPage:
    def test_each_kind_of_bad_row_is_counted_with_an_example_and_personal_data_never_shown(self, health_web):
        app, _ = health_web
        response = health(login(app, "operator"), "feedback")
        assert response.status_code == 200
        detail = response.json["response"][ids.HEALTH_DETAIL]["children"]
        checks, wards, examples = detail["props"]["children"]
        rows = table_rows(checks)
        assert row_for(rows, "Thiếu giá trị bắt buộc: Mã phường/xã")[2] == "1"
        assert row_for(rows, "Giá trị thay thế (-999): Đánh giá")[2] == "2"
        assert row_for(rows, "Ngoài khoảng hợp lệ: Đánh giá")[2] == "1"
        assert row_for(rows, "Tọa độ nằm ngoài tỉnh")[2] == "1"
        assert row_for(rows, "Mã phường/xã không tồn tại")[2] == "1"
        assert row_for(rows, "Đến sau cửa sổ trễ (vẫn được tính, tổng cộng)")[2] == "1"
        no_time = row_for(rows, "Thiếu giá trị bắt buộc: Thời điểm tạo (không thuộc khoảng thời gian nào; toàn bảng)")
        assert no_time[1:] == ["Đầy đủ", "1", "–"], "a row without an event time: in every window, no share"
        assert row_for(rows, "Thiếu giá trị bắt buộc: Thời điểm cập nhật")[2] == "1"
        ward_rows = table_rows(wards)
        assert row_for(ward_rows, "Phường Vỹ Dạ")[1] == "5", "rows of Vỹ Dạ in the last 24 hours (late one included)"
        assert any(r[0] == "Mã không xác định 99999" for r in ward_rows)
        example_text = " ".join(texts(examples))
        assert "10.77, 106.7" in example_text and "-999" in example_text and "Mã không xác định 99999" in example_text
        assert "Không có mã phường/xã" in example_text
        phu_xuan = row_for(ward_rows, "Phường Phú Xuân")
        assert phu_xuan[1] == "3", "rows of Phú Xuân with an event time in the last 24 hours"
        assert SECRET_PHONE not in response.text and "Nguyễn Văn An" not in response.text

    def test_duplicates_of_a_natural_key_are_counted_and_listed(self, health_web):
        app, _ = health_web
        response = health(login(app, "operator"), "traffic_readings")
        checks, _, examples = response.json["response"][ids.HEALTH_DETAIL]["children"]["props"]["children"]
        rows = table_rows(checks)
        assert row_for(rows, "Dòng trùng lặp (Đoạn đường, Thời điểm đo)")[2] == "1"
        assert row_for(rows, "Giá trị thay thế (-999): Tốc độ trung bình (km/h)")[2] == "1"
        assert "SEG1" in " ".join(texts(examples))

    def test_the_overview_sums_bad_rows_per_dimension_and_shows_freshness(self, health_web):
        app, _ = health_web
        response = health(login(app, "operator"), "feedback")
        overview = table_rows(response.json["response"][ids.HEALTH_OVERVIEW]["children"])
        feedback_line = row_for(overview, "Phản ánh hiện trường")
        # completeness: ward code, event time, watermark; validity: 2 sentinels + 1 out of range + 1 outside
        # + 1 unknown code; timeliness 1
        assert feedback_line[5:9] == ["3", "5", "0", "1"]
        assert feedback_line[3].startswith("Trực tiếp"), "polled just now"
        ages = response.json["response"][ids.HEALTH_FRESHNESS]["data"]["datasets"]["feedback"]
        assert ages["poll"]["late_after_s"] == 15 and ages["poll"]["stale_after_s"] == 20  # 10 s x 1.5 and x 2

    def test_a_row_without_an_event_time_is_in_no_figure_not_even_the_open_count_or_the_map(self, health_web):
        _, poller = health_web
        snapshot = poller.store.get("feedback")
        open_statuses = ["received", "assigned", "in_progress"]
        reports = feedback_reports.c
        with poller.pollers["feedback"].engine.connect() as connection:
            dated, undated = (
                connection.execute(select(func.count()).where(reports.status.in_(open_statuses), condition)).scalar()
                for condition in (reports.created_at.is_not(None), reports.created_at.is_(None))
            )
        assert undated == 1
        assert snapshot.frame("state")["open"].sum() == dated
        assert len(snapshot.frame("positions")) == dated
        assert snapshot.frame("daily")["reports"].sum() == 10, "eleven reports written, one without a time"


class TestScope:
    def test_a_department_head_forging_another_sectors_dataset_gets_403_and_no_data(self, health_web):
        app, _ = health_web
        response = health(login(app, "traffic_head"), "feedback")
        assert response.status_code == 403
        assert "Vỹ Dạ" not in response.text and "99999" not in response.text

    def test_a_department_head_sees_only_their_sectors_datasets(self, health_web):
        app, _ = health_web
        response = health(login(app, "traffic_head"), "traffic_readings")
        overview = table_rows(response.json["response"][ids.HEALTH_OVERVIEW]["children"])
        assert [r[0] for r in overview] == ["Cảm biến giao thông", "Sự cố giao thông"]

    def test_a_ward_scoped_head_sees_only_their_wards_counts_and_examples(self, health_web):
        app, _ = health_web
        response = health(login(app, "vy_da_head"), "feedback")
        assert response.status_code == 200
        _, wards, examples = response.json["response"][ids.HEALTH_DETAIL]["children"]["props"]["children"]
        assert [r[0] for r in table_rows(wards)] == ["Phường Vỹ Dạ"]
        shown = " ".join(texts(examples))
        assert "Phú Xuân" not in shown and "99999" not in shown
        checks = table_rows(response.json["response"][ids.HEALTH_DETAIL]["children"]["props"]["children"][0])
        assert row_for(checks, "Giá trị thay thế (-999): Đánh giá")[2] == "1", "Phú Xuân's sentinel is not theirs"

    def test_an_unknown_dataset_or_window_is_refused_without_a_trace(self, health_web):
        app, _ = health_web
        client = login(app, "operator")
        assert health(client, "no_such_dataset").status_code == 404
        bad = health(client, "feedback", window="1y")
        assert bad.status_code == 400 and "Traceback" not in bad.text


class TestPollHealth:
    def poll_health(self, client):
        return callback(client, [(ids.HEALTH_POLLS, "children")], [(ids.VERSIONS, "data", {})])

    def test_operators_see_each_datasets_last_run_rows_and_late_arrivals(self, health_web):
        app, poller = health_web
        response = self.poll_health(login(app, "operator"))
        assert response.status_code == 200
        rows = table_rows(response.json["response"][ids.HEALTH_POLLS]["children"])
        line = row_for(rows, "Phản ánh hiện trường")
        assert line[1] == "20/11/2026 15:30"
        assert line[7] == "1 / 1", "late arrivals: this poll / in total"
        assert line[8] == "Bình thường"
        assert line[9] == "20/11/2026 15:30", "next run: one 10 s interval after the last start"
        assert line[10] == "20/11/2026 15:30 · 0 ngày · lần tới 20/11/2026 16:30", "the first poll read everything"

    def test_leaders_and_department_heads_forging_the_poll_health_callback_get_403(self, health_web):
        app, _ = health_web
        for username in ("leader", "feedback_head"):
            response = self.poll_health(login(app, username))
            assert response.status_code == 403, username
            assert "poller" not in response.text.lower()

    def test_the_page_offers_poll_health_only_to_who_may_see_it(self, health_web):
        app, _ = health_web

        def page(username):
            return callback(
                login(app, username),
                [(ids.PAGE, "children"), (ids.NAV, "children")],
                [(ids.URL, "pathname", "/data-health")],
                [(ids.URL, "search", "")],
            )

        operator, leader = page("operator"), page("leader")
        assert operator.status_code == leader.status_code == 200
        assert ids.HEALTH_POLLS in json.dumps(operator.json)
        assert ids.HEALTH_POLLS not in json.dumps(leader.json)
        assert "/data-health" in json.dumps(leader.json["response"][ids.NAV]), "listed in every role's menu"


class TestFreshness:
    @pytest.mark.parametrize(
        ("age", "state"), [(None, "unknown"), (0, "live"), (15, "live"), (16, "late"), (20, "late"), (21, "stale")]
    )
    def test_live_late_stale_use_the_header_badges_factors(self, age, state):
        from dashboards.data_health import freshness_state

        assert freshness_state(age, 10) == state
