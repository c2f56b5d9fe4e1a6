"""The delivery log page through the Flask test client: operators read, filter and page the attempts a
real notifier made against local receivers; leaders and department heads get 403 and no data."""

from __future__ import annotations

import json

import pytest

from config.datasets import load_datasets
from data_sources.admin_units import crosswalk as unit_crosswalk
from data_sources.admin_units import current_units
from data_sources.alerts.engine import AlertEngine
from data_sources.alerts.model import Rule, Threshold
from data_sources.alerts.store import save_rule
from data_sources.notify import Notifier
from data_sources.scheduler import Poller
from data_sources.snapshots import SQLiteSnapshotStore
from data_sources.users import create_user
from data_sources.warehouse import create_warehouse_engine
from layouts import ids
from tests.conftest import FIXED_NOW
from tests.security_helpers import forge, leaks, server_callbacks
from tests.test_alerts_web import out, post
from tests.test_notify import Receiver
from tests.test_web import PASSWORD, login, make_settings

FAILING_TARGETS = 10
OUTPUTS = [
    out(ids.DELIVERIES_TABLE, "data"),
    out(ids.DELIVERIES_PAGE, "children"),
    out(ids.DELIVERIES_CURSOR, "data"),
    out(ids.DELIVERIES_FAILED, "children"),
    out(ids.DELIVERIES_SEEN, "data"),
]


@pytest.fixture(scope="module")
def deliveries_web(seeded_warehouse, tmp_path_factory):
    """A test app whose alert went to one receiver that accepts and ten that keep answering 500
    (six attempts each, then given up): 61 logged attempts."""
    from app import create_app

    folder = tmp_path_factory.mktemp("deliveries-web")
    settings = make_settings(folder, seeded_warehouse)
    store = SQLiteSnapshotStore(folder / "snapshots.db")
    catalogue = load_datasets(settings.datasets_file)
    Poller(catalogue, create_warehouse_engine(seeded_warehouse), store, lambda: FIXED_NOW).poll_all()
    app = create_app(settings, store=store, clock=lambda: FIXED_NOW)
    app_db = create_warehouse_engine(settings.app_db_url)
    for username, role, sectors in (
        ("operator", "operator", ()),
        ("leader", "leader", ()),
        ("feedback_head", "department_head", ("feedback",)),
    ):
        create_user(app_db, username, PASSWORD, role, sectors=sectors)
    with Receiver() as good, Receiver(statuses=[500] * 100) as bad:
        targets = (good.url, *(f"{bad.url}/{n}" for n in range(FAILING_TARGETS)))
        rule = Rule("Phản ánh toàn tỉnh", "feedback", "open", "province", ">", Threshold(0), None, targets=targets)
        save_rule(app_db, rule, actor="operator", now=FIXED_NOW)
        engine = AlertEngine(app_db, store, catalogue, unit_crosswalk("46"), list(current_units("46")["code"]))
        engine.evaluate_dataset("feedback", now=FIXED_NOW)
        notifier = Notifier(app_db, lambda: FIXED_NOW, backoff=(0,) * 5)
        while notifier.deliver_due():
            pass
    return app, good.url, bad.url


INPUTS = (
    (ids.DELIVERIES_STATUS, "value"),
    (ids.DELIVERIES_TARGET, "value"),
    (ids.DELIVERIES_DATES, "start_date"),
    (ids.DELIVERIES_DATES, "end_date"),
    (ids.DELIVERIES_PREV, "n_clicks"),
    (ids.DELIVERIES_NEXT, "n_clicks"),
    (ids.REFRESH, "n_intervals"),
)


def request_page(client, app, changed=(ids.DELIVERIES_STATUS, "value"), *, cursor=None, seen=None, **values):
    """POST ``update_deliveries`` as the renderer does after ``changed``; ``values`` by property name
    (``status``, ``target``, ``start_date``, ``end_date``, ``prev``, ``next``, ``tick``)."""
    names = ("status", "target", "start_date", "end_date", "prev", "next", "tick")
    key = next(
        k for k, v in app.callback_map.items() if getattr(v.get("callback"), "__name__", "") == "update_deliveries"
    )
    body = {
        "output": key,
        "outputs": OUTPUTS,
        "inputs": [{"id": i, "property": p, "value": values.get(n)} for (i, p), n in zip(INPUTS, names, strict=True)],
        "state": [
            {"id": ids.DELIVERIES_CURSOR, "property": "data", "value": cursor},
            {"id": ids.DELIVERIES_SEEN, "property": "data", "value": seen},
        ],
        "changedPropIds": [f"{changed[0]}.{changed[1]}"],
    }
    return client.post("/_dash-update-component", json=body, headers={"X-CSRFToken": client.csrf})


def shown(response) -> dict:
    """The callback's outputs by component id."""
    assert response.status_code == 200, response.text
    return {k: next(iter(v.values())) for k, v in response.json["response"].items()}


def text_of(value) -> str:
    return json.dumps(value, ensure_ascii=False)


class TestOperatorsReadTheLog:
    def test_newest_first_in_local_time_with_the_24_hour_failure_count(self, deliveries_web):
        app, good, bad = deliveries_web
        page = shown(request_page(login(app, "operator"), app))
        rows = page[ids.DELIVERIES_TABLE]
        assert len(rows) == 50 and page[ids.DELIVERIES_PAGE] == "Trang 1"
        assert {r["at"] for r in rows} == {"20/11/2026 15:30:00"}, "FIXED_NOW, shown in Asia/Ho_Chi_Minh"
        assert (
            rows[0]["attempt"] == "6" and rows[0]["status"] == "✖ Lỗi, đã ngừng thử" and rows[0]["detail"] == "HTTP 500"
        )
        assert {r["rule"] for r in rows} == {"Phản ánh toàn tỉnh"} and {r["alert"] for r in rows} == {
            "Phát cảnh báo · ⚠ Cảnh báo"
        }
        assert {r["channel"] for r in rows} == {"Webhook"} and len({r["event_id"] for r in rows}) == 1
        assert "⚠ 60 lần gửi lỗi trong 24 giờ qua (10 thông báo đã ngừng thử lại)" in text_of(
            page[ids.DELIVERIES_FAILED]
        )
        assert page[ids.DELIVERIES_SEEN][1:] == [60, 10]

    def test_keyset_pages_forward_and_back(self, deliveries_web):
        app, good, _ = deliveries_web
        client = login(app, "operator")
        first = shown(request_page(client, app))
        second = shown(
            request_page(client, app, (ids.DELIVERIES_NEXT, "n_clicks"), next=1, cursor=first[ids.DELIVERIES_CURSOR])
        )
        rows = second[ids.DELIVERIES_TABLE]
        assert second[ids.DELIVERIES_PAGE] == "Trang 2" and len(rows) == 11
        assert rows[-1]["target"] == good and rows[-1]["status"] == "✔ Đã gửi" and rows[-1]["detail"] == "HTTP 200"
        assert [r["attempt"] for r in rows[:-1]] == ["1"] * 10, "the oldest attempts are last"
        beyond = request_page(
            client, app, (ids.DELIVERIES_NEXT, "n_clicks"), next=2, cursor=second[ids.DELIVERIES_CURSOR]
        )
        assert beyond.status_code == 204, "no page after the last"
        back = shown(
            request_page(client, app, (ids.DELIVERIES_PREV, "n_clicks"), prev=1, cursor=second[ids.DELIVERIES_CURSOR])
        )
        assert back[ids.DELIVERIES_TABLE] == first[ids.DELIVERIES_TABLE] and back[ids.DELIVERIES_PAGE] == "Trang 1"

    def test_filters_by_result_target_and_period(self, deliveries_web):
        app, good, bad = deliveries_web
        client = login(app, "operator")
        delivered = shown(request_page(client, app, status="ok"))[ids.DELIVERIES_TABLE]
        assert [(r["target"], r["status"]) for r in delivered] == [(good, "✔ Đã gửi")]
        one = shown(request_page(client, app, (ids.DELIVERIES_TARGET, "value"), target=f"{bad}/3"))[
            ids.DELIVERIES_TABLE
        ]
        assert [r["attempt"] for r in one] == ["6", "5", "4", "3", "2", "1"]
        gave_up = shown(request_page(client, app, status="gave_up"))[ids.DELIVERIES_TABLE]
        assert len(gave_up) == FAILING_TARGETS
        that_day = shown(request_page(client, app, (ids.DELIVERIES_DATES, "start_date"), start_date="2026-11-20"))
        assert len(that_day[ids.DELIVERIES_TABLE]) == 50
        day_before = shown(
            request_page(
                client, app, (ids.DELIVERIES_DATES, "start_date"), start_date="2026-11-19", end_date="2026-11-19"
            )
        )
        assert day_before[ids.DELIVERIES_TABLE] == [] and day_before[ids.DELIVERIES_PAGE] == (
            "Không có lần gửi nào khớp bộ lọc."
        )

    def test_a_refresh_tick_sends_nothing_while_the_log_is_unchanged_and_never_moves_a_later_page(self, deliveries_web):
        app, _, _ = deliveries_web
        client = login(app, "operator")
        first = shown(request_page(client, app))
        tick = (ids.REFRESH, "n_intervals")
        assert request_page(client, app, tick, tick=2, seen=first[ids.DELIVERIES_SEEN]).status_code == 204
        later = {"page": 1, "cursors": first[ids.DELIVERIES_CURSOR]["cursors"]}
        moved = shown(request_page(client, app, tick, tick=3, seen=[0, 0, 0], cursor=later))
        assert set(moved) == {ids.DELIVERIES_FAILED, ids.DELIVERIES_SEEN}, "only the count is sent on page 2"

    def test_a_forged_filter_gets_400_and_a_sentence(self, deliveries_web):
        app, _, _ = deliveries_web
        client = login(app, "operator")
        for values in ({"status": "everything"}, {"start_date": "20/11/2026"}):
            response = request_page(client, app, **values)
            assert response.status_code == 400 and not leaks(response)

    def test_the_page_is_in_the_operators_menu_and_linked_from_the_other_alert_pages(self, deliveries_web):
        app, _, _ = deliveries_web
        client = login(app, "operator")
        for path in ("/alerts", "/alerts/rules", "/alerts/deliveries"):
            response = open_page(client, app, path)
            assert response.status_code == 200
            content, nav = (text_of(response.json["response"][k]) for k in ("page-content", "nav"))
            assert '"/alerts/deliveries"' in nav
            links = {"/alerts", "/alerts/rules", "/alerts/deliveries"} - {path}
            assert all(f'"href": "{link}"' in content for link in links), path
        page = text_of(open_page(client, app, "/alerts/deliveries").json["response"]["page-content"])
        assert "Nhật ký gửi thông báo" in page and "Mọi nơi nhận" in page


def open_page(client, app, path):
    return post(
        client,
        app,
        "display_page",
        [out("page-content", "children"), out("nav", "children")],
        [("url", "pathname", path)],
        [("url", "search", "")],
    )


class TestOthersAreRefused:
    @pytest.mark.parametrize("username", ["leader", "feedback_head"])
    def test_the_page_and_every_callback_of_it_answer_403_without_data(self, deliveries_web, username):
        app, good, _ = deliveries_web
        client = login(app, username)
        page = open_page(client, app, "/alerts/deliveries")
        assert page.status_code == 403 and not leaks(page)
        assert request_page(client, app).status_code == 403
        mine = [cb for cb in server_callbacks(app) if any(i.startswith("alert-deliveries") for i in cb.output_ids)]
        assert mine, "the page's callbacks are registered"
        for cb in mine:
            response = forge(client, cb, {f"{ids.REFRESH}.n_intervals": 1}, [f"{ids.DELIVERIES_STATUS}.value"])
            assert response.status_code == 403 and not leaks(response) and good not in response.text, cb.key

    def test_leaders_see_no_link_to_it(self, deliveries_web):
        app, _, _ = deliveries_web
        response = open_page(login(app, "leader"), app, "/alerts")
        assert response.status_code == 200
        assert "/alerts/deliveries" not in text_of(response.json["response"])
