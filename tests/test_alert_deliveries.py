"""The delivery log as operators read it: queries on SQLite and PostgreSQL over attempts a real notifier
made against local receivers, and the page's pure builders (filters, keyset paging, rows, the count)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from dash.exceptions import PreventUpdate
from sqlalchemy import inspect, text
from werkzeug.exceptions import BadRequest

from dashboards.alerts.deliveries import (
    FIRST_PAGE,
    delivery_filter,
    delivery_rows,
    detail_text,
    failed_summary,
    next_cursors,
    page_position,
)
from data_sources.alerts.tables import create_alert_schema
from data_sources.clock import LOCAL_TZ
from data_sources.notify import (
    DELIVERED,
    FAILED,
    RETRYING,
    DeliveryFilter,
    LoggedAttempt,
    Notifier,
    delivery_log,
    delivery_targets,
    enqueue_deliveries,
    failures_since,
    newest_attempt_id,
)
from data_sources.warehouse import create_warehouse_engine
from layouts import ids
from tests.conftest import FIXED_NOW
from tests.test_notify import Receiver, fire

UNREACHABLE = "http://127.0.0.1:9/nothing-listens-here"


@pytest.fixture
def log_db(warehouse_url):
    """An empty app database, on SQLite and on PostgreSQL."""
    engine = create_warehouse_engine(warehouse_url)
    create_alert_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def world():
    from config.datasets import load_datasets
    from data_sources.admin_units import crosswalk, current_units

    return load_datasets(), crosswalk("46"), list(current_units("46")["code"])


@pytest.fixture
def attempts(log_db, world, clock):
    """A fired alert with three targets: a receiver that fails once then accepts, an address nobody
    listens on (gives up after two attempts) and an e-mail with no SMTP server configured."""
    with Receiver(statuses=[503]) as receiver:
        event = fire(log_db, world, clock, [receiver.url, UNREACHABLE, "truc.ban@hue.gov.vn"])
        notifier = Notifier(log_db, clock, backoff=(60,))
        notifier.deliver_due()
        clock.advance(seconds=60)
        notifier.deliver_due()
    return event, receiver.url


class TestDeliveryLogQueries:
    def test_newest_first_with_the_alert_each_attempt_was_about(self, log_db, attempts, clock):
        event, hook = attempts
        rows = delivery_log(log_db, DeliveryFilter())
        assert [r.id for r in rows] == sorted((r.id for r in rows), reverse=True) and len(rows) == 6
        assert {(r.target, r.attempt, r.outcome, r.status_code) for r in rows} == {
            (hook, 1, RETRYING, 503),
            (hook, 2, DELIVERED, 200),
            (UNREACHABLE, 1, RETRYING, None),
            (UNREACHABLE, 2, FAILED, None),
            ("truc.ban@hue.gov.vn", 1, RETRYING, None),
            ("truc.ban@hue.gov.vn", 2, FAILED, None),
        }
        assert {r.event_id for r in rows} == {event["event_id"]}, "every retry carries the same event id"
        assert {(r.rule_name, r.kind, r.severity, r.alert_id) for r in rows} == {
            ("Phản ánh tồn đọng", "fired", "warning", event["alert_id"])
        }
        assert {r.target: r.channel for r in rows}["truc.ban@hue.gov.vn"] == "email"
        assert all(r.at.tzinfo is not None and r.at.utcoffset() == timedelta(hours=7) for r in rows)
        assert rows[0].at == clock() and rows[-1].at == clock() - timedelta(seconds=60)
        assert "smtp_url" in next(r.error for r in rows if r.target.startswith("truc"))

    def test_filters_by_result_target_and_period(self, log_db, attempts, clock):
        _, hook = attempts

        def outcomes(**filters):
            return sorted((r.target, r.attempt) for r in delivery_log(log_db, DeliveryFilter(**filters)))

        assert outcomes(status="ok") == [(hook, 2)]
        assert len(outcomes(status="failed")) == 5
        assert outcomes(status="gave_up") == [(UNREACHABLE, 2), ("truc.ban@hue.gov.vn", 2)]
        assert outcomes(target=hook) == [(hook, 1), (hook, 2)]
        assert outcomes(status="failed", target=hook) == [(hook, 1)]
        second_round = clock() - timedelta(seconds=30)
        assert [a for _, a in outcomes(start=second_round)] == [2, 2, 2]
        assert [a for _, a in outcomes(end=second_round)] == [1, 1, 1]
        assert outcomes(start=clock() + timedelta(days=1)) == []

    def test_keyset_pages_cover_everything_once_even_when_rows_arrive_meanwhile(self, log_db, attempts, clock):
        event, _ = attempts
        everything = [r.id for r in delivery_log(log_db, DeliveryFilter())]
        first = delivery_log(log_db, DeliveryFilter(), limit=4)
        clock.advance(minutes=5)
        with log_db.begin() as connection:  # a new target of the same event: an attempt on top of page 1
            enqueue_deliveries(connection, [event["event_id"]], [UNREACHABLE + "/other"], clock())
        assert len(Notifier(log_db, clock).deliver_due()) == 1
        rest = delivery_log(log_db, DeliveryFilter(), before_id=first[-1].id, limit=4)
        assert [r.id for r in first + rest] == everything
        assert delivery_log(log_db, DeliveryFilter(), before_id=rest[-1].id) == []
        assert newest_attempt_id(log_db) > everything[0]

    def test_failures_of_the_last_24_hours(self, log_db, attempts, clock):
        _, hook = attempts
        assert failures_since(log_db, clock() - timedelta(hours=24)) == (5, 2)
        assert failures_since(log_db, clock() + timedelta(seconds=1)) == (0, 0)
        assert delivery_targets(log_db) == sorted([hook, UNREACHABLE, "truc.ban@hue.gov.vn"])

    def test_an_empty_log(self, log_db):
        assert delivery_log(log_db, DeliveryFilter()) == []
        assert failures_since(log_db, FIXED_NOW) == (0, 0)
        assert newest_attempt_id(log_db) is None and delivery_targets(log_db) == []

    def test_an_app_database_made_before_the_time_index_gets_it(self, log_db):
        with log_db.begin() as connection:
            connection.execute(text("DROP INDEX ix_alert_delivery_log_at"))
        assert "ix_alert_delivery_log_at" not in {i["name"] for i in inspect(log_db).get_indexes("alert_delivery_log")}
        create_alert_schema(log_db)
        create_alert_schema(log_db)  # twice: nothing to do the second time
        assert "ix_alert_delivery_log_at" in {i["name"] for i in inspect(log_db).get_indexes("alert_delivery_log")}


def attempt(**changes) -> LoggedAttempt:
    values = {
        "id": 7,
        "at": datetime(2026, 11, 20, 1, 5, 9, tzinfo=UTC),
        "event_id": "e" * 32,
        "target": "https://hook.hue.gov.vn/ioc",
        "channel": "webhook",
        "attempt": 2,
        "outcome": RETRYING,
        "status_code": 503,
        "error": "HTTP 503",
        "duration_ms": 12.5,
        "alert_id": "a" * 32,
        "rule_id": 3,
        "rule_name": "Mực nước sông Hương",
        "kind": "escalated",
        "severity": "critical",
    }
    return LoggedAttempt(**(values | changes))


class TestBuilders:
    def test_rows_read_in_local_time_with_words_and_icons(self):
        [row] = delivery_rows([attempt()], "vi")
        assert row["at"] == "20/11/2026 08:05:09", "UTC 01:05:09 is 08:05:09 in Huế"
        assert row["status"] == "↻ Lỗi, sẽ thử lại" and row["detail"] == "HTTP 503"
        assert row["alert"] == "Tăng mức · ⛔ Nghiêm trọng"
        assert (row["rule"], row["channel"], row["attempt"], row["event_id"]) == (
            "Mực nước sông Hương",
            "Webhook",
            "2",
            "e" * 32,
        )
        [english] = delivery_rows([attempt(outcome=FAILED, channel="email", error="SMTP 550: b'no'")], "en")
        assert english["at"] == "2026-11-20 08:05:09"
        assert (english["status"], english["channel"], english["detail"]) == (
            "✖ Failed, given up",
            "E-mail",
            "SMTP 550: b'no'",
        )

    def test_detail_is_the_error_or_the_answer(self):
        assert detail_text(attempt(outcome=DELIVERED, status_code=200, error=None), "vi") == "HTTP 200"
        assert (
            detail_text(attempt(status_code=None, error="TimeoutError: timed out"), "vi") == "TimeoutError: timed out"
        )
        assert detail_text(attempt(outcome=DELIVERED, channel="email", status_code=None, error=None), "vi") == ""
        gone = delivery_rows([attempt(kind=None, severity=None, rule_name=None)], "vi")[0]
        assert (gone["alert"], gone["rule"]) == ("(không còn sự kiện)", "")

    def test_the_failed_count_has_an_icon_and_words(self):
        failed = json.dumps(failed_summary(1234, 2, "vi").to_plotly_json(), ensure_ascii=False, default=str)
        assert "⚠ 1.234 lần gửi lỗi trong 24 giờ qua (2 thông báo đã ngừng thử lại)" in failed
        none = failed_summary(0, 0, "en")
        assert none.children == "✔ No failed deliveries in the last 24 hours" and "ok" in none.className

    def test_filters_from_the_page(self):
        found = delivery_filter("gave_up", "https://hook.hue.gov.vn/ioc", "2026-11-20", "2026-11-18")
        assert found.status == "gave_up" and found.target == "https://hook.hue.gov.vn/ioc"
        assert found.start == datetime(2026, 11, 18, tzinfo=LOCAL_TZ), "swapped days are put in order"
        assert found.end == datetime(2026, 11, 21, tzinfo=LOCAL_TZ), "the last day is included"
        assert delivery_filter(None, None, None, None) == DeliveryFilter()
        for status, start in (("everything", None), (None, "20/11/2026")):
            with pytest.raises(BadRequest):
                delivery_filter(status, None, start, None)

    def test_keyset_paging_state(self):
        assert page_position(ids.DELIVERIES_STATUS, {"page": 2, "cursors": [None, 90, 40]}) == (0, [None])
        assert page_position(ids.DELIVERIES_NEXT, {"page": 0, "cursors": [None, 90]}) == (1, [None, 90])
        assert page_position(ids.DELIVERIES_PREV, {"page": 1, "cursors": [None, 90]}) == (0, [None, 90])
        assert page_position(ids.DELIVERIES_PREV, FIRST_PAGE) == (0, [None])
        with pytest.raises(PreventUpdate):
            page_position(ids.DELIVERIES_NEXT, {"page": 1, "cursors": [None, 90]})  # no later page known
        forged = {"page": "x", "cursors": ["1 OR 1=1", True, 5]}
        assert page_position(ids.DELIVERIES_PREV, forged) == (0, [None, None, 5])
        rows = [attempt(id=i) for i in (80, 79, 78)]
        assert next_cursors([None], 0, rows, more=True) == [None, 78]
        assert next_cursors([None, 78, 40], 1, rows, more=False) == [None, 78]
