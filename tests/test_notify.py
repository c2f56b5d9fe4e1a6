"""Notifications against real local receivers: an HTTP server and an SMTP server started by the tests."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from aiosmtpd.controller import Controller
from sqlalchemy import select

from data_sources.alerts.store import save_rule
from data_sources.alerts.tables import alert_deliveries, alert_delivery_log, alert_events, create_alert_schema
from data_sources.notify import DELIVERED, FAILED, RETRYING, Notifier, SmtpSettings
from data_sources.warehouse import create_warehouse_engine
from tests.test_alert_store import PHU_XUAN, feedback_rule, make_engine, open_reports


class Receiver:
    """A webhook receiver answering with scripted status codes (200 once the script runs out)."""

    def __init__(self, statuses=(), delay: float = 0.0) -> None:
        self.statuses = list(statuses)
        self.delay = delay
        self.requests: list[tuple[dict, dict]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - http.server's naming
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.requests.append(({k.lower(): v for k, v in self.headers.items()}, body))
                if receiver.delay:
                    time.sleep(receiver.delay)
                status = receiver.statuses.pop(0) if receiver.statuses else 200
                try:
                    self.send_response(status)
                    self.end_headers()
                    self.wfile.write(b"{}")
                except BrokenPipeError:  # the sender gave up waiting (timeout test)
                    pass

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_port}/ioc-hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def app_db(tmp_path):
    engine = create_warehouse_engine(f"sqlite:///{tmp_path / 'app.db'}")
    create_alert_schema(engine)
    yield engine
    engine.dispose()


@pytest.fixture(scope="module")
def world():
    from config.datasets import load_datasets
    from data_sources.admin_units import crosswalk, current_units

    return load_datasets(), crosswalk("46"), list(current_units("46")["code"])


def fire(app_db, world, clock, targets) -> dict:
    """Store a rule with ``targets`` and let the data cross it: one 'fired' event queued per target."""
    save_rule(app_db, feedback_rule(scope="ward", ward=PHU_XUAN, targets=tuple(targets)), actor="van_hanh", now=clock())
    make_engine(app_db, world, clock).evaluate_dataset("feedback", snapshot=open_reports(clock(), {PHU_XUAN: 30}))
    with app_db.connect() as connection:
        return dict(connection.execute(select(alert_events)).one()._mapping)


def log_rows(app_db):
    with app_db.connect() as connection:
        return connection.execute(select(alert_delivery_log).order_by(alert_delivery_log.c.id)).fetchall()


class TestWebhook:
    def test_evaluation_only_queues_the_poller_never_waits_for_the_receiver(self, app_db, world, clock):
        with Receiver() as receiver:
            fire(app_db, world, clock, [receiver.url])
            assert receiver.requests == []
            with app_db.connect() as connection:
                [row] = connection.execute(select(alert_deliveries)).fetchall()
            assert (row.status, row.channel, row.target) == ("pending", "webhook", receiver.url)

    def test_retries_with_backoff_carry_the_same_event_id(self, app_db, world, clock):
        with Receiver(statuses=[500, 503]) as receiver:
            event = fire(app_db, world, clock, [receiver.url])
            notifier = Notifier(app_db, clock, backoff=(30, 60))
            assert [a.outcome for a in notifier.deliver_due()] == [RETRYING]
            assert notifier.deliver_due() == [], "not due again before the backoff"
            clock.advance(seconds=29)
            assert notifier.deliver_due() == []
            clock.advance(seconds=1)
            assert [(a.outcome, a.status_code) for a in notifier.deliver_due()] == [(RETRYING, 503)]
            clock.advance(seconds=60)
            assert [a.outcome for a in notifier.deliver_due()] == [DELIVERED]
            assert notifier.deliver_due(clock()) == []
        ids = {
            (headers["x-ioc-event-id"], headers["idempotency-key"], body["event_id"])
            for headers, body in receiver.requests
        }
        assert ids == {(event["event_id"],) * 3}, "one event id on every retry"
        assert len(receiver.requests) == 3
        body = receiver.requests[0][1]
        assert (body["kind"], body["severity"], body["ward"], body["value"]) == ("fired", "warning", PHU_XUAN, 30)
        assert body["rule"]["name"] == "Phản ánh tồn đọng" and body["message"]["subject"]
        assert [(r.attempt, r.outcome, r.status_code) for r in log_rows(app_db)] == [
            (1, RETRYING, 500),
            (2, RETRYING, 503),
            (3, DELIVERED, 200),
        ]

    def test_gives_up_after_the_last_attempt(self, app_db, world, clock):
        with Receiver(statuses=[500] * 10) as receiver:
            fire(app_db, world, clock, [receiver.url])
            notifier = Notifier(app_db, clock, backoff=(10,))
            notifier.deliver_due()
            clock.advance(seconds=10)
            assert [a.outcome for a in notifier.deliver_due()] == [FAILED]
            clock.advance(hours=1)
            assert notifier.deliver_due() == []
        assert len(receiver.requests) == 2
        with app_db.connect() as connection:
            assert connection.execute(select(alert_deliveries.c.status)).scalar_one() == FAILED

    def test_a_receiver_that_times_out_is_retried_and_never_raises(self, app_db, world, clock):
        with Receiver(delay=2.0) as receiver:
            fire(app_db, world, clock, [receiver.url])
            [attempt] = Notifier(app_db, clock, webhook_timeout=0.3).deliver_due()
        assert attempt.outcome == RETRYING and "timed out" in attempt.error.lower()

    def test_an_unreachable_receiver_is_logged(self, app_db, world, clock):
        fire(app_db, world, clock, ["http://127.0.0.1:9/nothing-listens-here"])
        [attempt] = Notifier(app_db, clock).deliver_due()
        assert attempt.outcome == RETRYING and attempt.status_code is None and attempt.error

    def test_the_background_thread_delivers_and_stops(self, app_db, world, clock):
        with Receiver() as receiver:
            fire(app_db, world, clock, [receiver.url])
            notifier = Notifier(app_db, clock)
            notifier.start(interval=0.05)
            deadline = time.monotonic() + 20
            while not receiver.requests and time.monotonic() < deadline:
                time.sleep(0.05)
            notifier.stop()
        assert len(receiver.requests) == 1


class Inbox:
    """aiosmtpd handler keeping every message."""

    def __init__(self) -> None:
        self.messages = []

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's naming
        self.messages.append((envelope.rcpt_tos, message_from_bytes(envelope.content, policy=policy.default)))
        return "250 OK"


@pytest.fixture
def smtp_server() -> Iterator[tuple[Inbox, SmtpSettings]]:
    inbox = Inbox()
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, SmtpSettings.from_url(f"smtp://127.0.0.1:{port}?from=ioc@hue.gov.vn")
    finally:
        controller.stop()


class TestEmail:
    def test_mail_reaches_the_smtp_server_with_the_event_id(self, app_db, world, clock, smtp_server):
        inbox, smtp = smtp_server

        def render(payload):
            return {"subject": f"Cảnh báo: {payload['rule']['name']}", "text": f"Giá trị {payload['value']}"}

        event = fire(app_db, world, clock, ["mailto:truc.ban@hue.gov.vn"])
        [attempt] = Notifier(app_db, clock, smtp=smtp, render=render).deliver_due()
        assert attempt.outcome == DELIVERED
        [(recipients, message)] = inbox.messages
        assert recipients == ["truc.ban@hue.gov.vn"]
        assert message["Subject"] == "Cảnh báo: Phản ánh tồn đọng"
        assert message["Message-ID"] == f"<{event['event_id']}@ioc-alerts>"
        assert message["From"] == "ioc@hue.gov.vn"
        assert "Giá trị 30" in message.get_content()

    def test_without_an_smtp_server_the_delivery_waits_with_a_clear_error(self, app_db, world, clock):
        fire(app_db, world, clock, ["truc.ban@hue.gov.vn"])
        [attempt] = Notifier(app_db, clock).deliver_due()
        assert attempt.outcome == RETRYING and "smtp_url" in attempt.error

    def test_smtp_url_parsing(self):
        smtp = SmtpSettings.from_url("smtp://ioc%40hue:p%40ss@mail.hue.gov.vn:587?from=ioc@hue.gov.vn&starttls=1")
        assert (smtp.host, smtp.port, smtp.username, smtp.password, smtp.starttls) == (
            "mail.hue.gov.vn",
            587,
            "ioc@hue",
            "p@ss",
            True,
        )
        with pytest.raises(ValueError):
            SmtpSettings.from_url("mail.hue.gov.vn")
