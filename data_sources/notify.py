"""Notifications of alert events: a generic JSON webhook and SMTP email, delivered from an outbox.

The alert evaluation writes one ``alert_deliveries`` row per (event, target) in the same transaction
as the event, then returns: the poller never waits for a receiver. A ``Notifier`` thread in the
poller process delivers due rows asynchronously, each attempt bounded by a timeout (webhook 5 s,
SMTP 10 s), and retries failures with backoff (30 s, 1 min, 2 min, 5 min, 15 min; failed after the
sixth attempt). Every attempt is logged in ``alert_delivery_log``; ``delivery_log`` and
``failures_since`` read it for the operators' delivery log page (``dashboards/alerts/deliveries.py``).

Every retry of an event carries the *same* event id (JSON field ``event_id``, headers
``X-IOC-Event-Id`` and ``Idempotency-Key``, the e-mail's ``Message-ID``), so receivers can drop
duplicates. The JSON body is generic; Zalo, Telegram or a provincial gateway sit behind a small
adapter that accepts it.
"""

from __future__ import annotations

import json
import logging
import smtplib
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from sqlalchemy import Connection, Engine, and_, case, func, insert, or_, select, update
from sqlalchemy.dialects import postgresql, sqlite

from data_sources.alerts.tables import alert_deliveries, alert_delivery_log, alert_events, aware, utc
from data_sources.clock import Clock, system_clock

log = logging.getLogger(__name__)

WEBHOOK, EMAIL = "webhook", "email"
PENDING, SENDING, RETRYING, DELIVERED, FAILED = "pending", "sending", "retrying", "delivered", "failed"
BACKOFF_SECONDS = (30, 60, 120, 300, 900)
"""Wait after the 1st, 2nd, ... failed attempt; after the last one the delivery is marked failed."""
WEBHOOK_TIMEOUT_SECONDS = 5.0
SMTP_TIMEOUT_SECONDS = 10.0
CLAIM_TIMEOUT = timedelta(minutes=5)
"""A delivery left ``sending`` this long (the process died mid-attempt) is tried again."""
USER_AGENT = "ioc-dashboard-alerts/1"


class DeliveryError(RuntimeError):
    """One attempt failed; ``status_code`` when the receiver answered."""

    def __init__(self, message: str, status_code: int | None = None) -> None:
        self.status_code = status_code
        super().__init__(message)


def channel_of(target: str) -> str:
    """``webhook`` for http(s) URLs, ``email`` otherwise."""
    return WEBHOOK if target.startswith(("http://", "https://")) else EMAIL


def enqueue_deliveries(connection: Connection, event_ids: Iterable[str], targets: Sequence[str], now: datetime) -> None:
    """Outbox rows for each (event, target), in the caller's transaction; a repeated pair is ignored."""
    deliveries = alert_deliveries
    rows = [
        {
            "event_id": event_id,
            "target": target,
            "channel": channel_of(target),
            "status": PENDING,
            "attempts": 0,
            "next_attempt_at": utc(now),
            "created_at": utc(now),
        }
        for event_id in event_ids
        for target in targets
    ]
    if not rows:
        return
    dialect = connection.dialect.name
    if dialect == "postgresql":
        connection.execute(postgresql.insert(deliveries).on_conflict_do_nothing(), rows)
    elif dialect == "sqlite":
        connection.execute(sqlite.insert(deliveries).on_conflict_do_nothing(), rows)
    else:  # pragma: no cover
        connection.execute(insert(deliveries), rows)


def event_payload(event: dict[str, Any]) -> dict[str, Any]:
    """The generic JSON body of one alert event."""
    at = aware(event["at"])
    return {
        "event_id": event["event_id"],
        "kind": event["kind"],
        "alert_id": event["alert_id"],
        "at": at.isoformat() if at else None,
        "severity": event["severity"],
        "state": event["to_state"],
        "value": event["value"],
        "threshold": event["threshold"],
        "rule": {"id": event["rule_id"], "name": event["rule_name"]},
        "dataset": event["dataset"],
        "kpi": event["kpi"],
        "sector": event["sector"],
        "ward": event["ward"],
        "subject": event["subject"],
        "subject_label": event["subject_label"],
    }


Renderer = Callable[[dict[str, Any]], dict[str, str]]
"""payload -> {"subject": ..., "text": ...} in the interface language(s); injected by the app."""


def plain_text(payload: dict[str, Any]) -> dict[str, str]:
    """A language-neutral fallback message."""
    subject = f"[IOC] {payload['kind']} {payload['severity'] or ''}: {payload['rule']['name']}".strip()
    lines = [f"{key}: {value}" for key, value in payload.items() if key != "rule"]
    return {"subject": subject, "text": "\n".join(lines)}


def send_webhook(url: str, body: dict[str, Any], event_id: str, timeout: float = WEBHOOK_TIMEOUT_SECONDS) -> int:
    """POST the JSON body; the HTTP status on 2xx, ``DeliveryError`` otherwise (timeouts included)."""
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    request = urllib.request.Request(
        url,
        data=data,
        method="POST",
        headers={
            "Content-Type": "application/json; charset=utf-8",
            "User-Agent": USER_AGENT,
            "X-IOC-Event-Id": event_id,
            "Idempotency-Key": event_id,
        },
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310 - URL validated as http(s)
            return response.status
    except urllib.error.HTTPError as error:
        raise DeliveryError(f"HTTP {error.code}", error.code) from None
    except (urllib.error.URLError, TimeoutError, OSError) as error:
        reason = getattr(error, "reason", error)
        raise DeliveryError(f"{type(reason).__name__}: {reason}"[:300]) from None


@dataclass(frozen=True)
class SmtpSettings:
    """Where e-mail goes: ``smtp://[user:password@]host[:port]?from=ioc@example.vn[&starttls=1]``."""

    host: str
    port: int = 25
    sender: str = "ioc@localhost"
    username: str | None = None
    password: str | None = None
    starttls: bool = False
    timeout: float = SMTP_TIMEOUT_SECONDS

    @classmethod
    def from_url(cls, url: str) -> SmtpSettings:
        """Parse an ``smtp://`` URL; ``ValueError`` naming what is wrong."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError(f"expected smtp://host:port?from=address, got {url!r}")
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        return cls(
            host=parts.hostname,
            port=parts.port or 25,
            sender=query.get("from", "ioc@localhost"),
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password else None,
            starttls=query.get("starttls", "0") in ("1", "true", "yes"),
        )


def send_email(smtp: SmtpSettings, to: str, message: dict[str, str], event_id: str) -> None:
    """Send one message; ``DeliveryError`` on refusal, timeout or a connection problem."""
    mail = EmailMessage()
    mail["From"] = smtp.sender
    mail["To"] = to.removeprefix("mailto:")
    mail["Subject"] = message["subject"]
    mail["Message-ID"] = f"<{event_id}@ioc-alerts>"
    mail["X-IOC-Event-Id"] = event_id
    mail.set_content(message["text"])
    try:
        with smtplib.SMTP(smtp.host, smtp.port, timeout=smtp.timeout) as client:
            if smtp.starttls:
                client.starttls()
            if smtp.username:
                client.login(smtp.username, smtp.password or "")
            client.send_message(mail)
    except smtplib.SMTPResponseException as error:
        raise DeliveryError(f"SMTP {error.smtp_code}: {error.smtp_error!r}"[:300], error.smtp_code) from None
    except (smtplib.SMTPException, OSError) as error:
        raise DeliveryError(f"{type(error).__name__}: {error}"[:300]) from None


@dataclass(frozen=True)
class Attempt:
    """What one delivery attempt did."""

    delivery_id: int
    event_id: str
    target: str
    attempt: int
    outcome: str
    status_code: int | None
    error: str | None


class Notifier:
    """Delivers due outbox rows; run ``deliver_due`` from a thread (``start``) or a test."""

    def __init__(
        self,
        engine: Engine,
        clock: Clock = system_clock,
        *,
        smtp: SmtpSettings | None = None,
        render: Renderer = plain_text,
        webhook_timeout: float = WEBHOOK_TIMEOUT_SECONDS,
        backoff: Sequence[float] = BACKOFF_SECONDS,
        batch: int = 50,
    ) -> None:
        self.engine = engine
        self.clock = clock
        self.smtp = smtp
        self.render = render
        self.webhook_timeout = webhook_timeout
        self.backoff = tuple(backoff)
        self.batch = batch
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    @property
    def max_attempts(self) -> int:
        """Attempts before a delivery is marked failed."""
        return len(self.backoff) + 1

    def _claim(self, now: datetime) -> list[Any]:
        deliveries = alert_deliveries
        stamp = utc(now)
        due = or_(
            and_(deliveries.c.status.in_((PENDING, RETRYING)), deliveries.c.next_attempt_at <= stamp),
            and_(deliveries.c.status == SENDING, deliveries.c.claimed_at <= utc(now - CLAIM_TIMEOUT)),
        )
        claimed = []
        with self.engine.connect() as connection:
            rows = connection.execute(
                select(deliveries).where(due).order_by(deliveries.c.next_attempt_at, deliveries.c.id).limit(self.batch)
            ).fetchall()
        for row in rows:
            with self.engine.begin() as connection:
                won = connection.execute(
                    update(deliveries)
                    .where(
                        deliveries.c.id == row.id,
                        deliveries.c.status == row.status,
                        deliveries.c.attempts == row.attempts,
                    )
                    .values(status=SENDING, claimed_at=stamp)
                ).rowcount
            if won == 1:
                claimed.append(row)
        return claimed

    def _send(self, row: Any, payload: dict[str, Any]) -> int | None:
        if row.channel == WEBHOOK:
            body = payload | {"message": self.render(payload)}
            return send_webhook(row.target, body, row.event_id, self.webhook_timeout)
        if self.smtp is None:
            raise DeliveryError("no SMTP server configured (smtp_url)")
        send_email(self.smtp, row.target, self.render(payload), row.event_id)
        return None

    def deliver_due(self, now: datetime | None = None) -> list[Attempt]:
        """Try every due delivery once; returns what each attempt did."""
        now = now or self.clock()
        deliveries, delivery_log, events = alert_deliveries, alert_delivery_log, alert_events
        attempts = []
        for row in self._claim(now):
            with self.engine.connect() as connection:
                event = connection.execute(select(events).where(events.c.event_id == row.event_id)).first()
            number = row.attempts + 1
            tick = time.perf_counter()
            status_code, error = None, None
            try:
                if event is None:
                    raise DeliveryError("event not found")
                status_code = self._send(row, event_payload(dict(event._mapping)))
                outcome = DELIVERED
            except DeliveryError as failure:
                status_code, error = failure.status_code, str(failure)
                outcome = FAILED if number >= self.max_attempts or event is None else RETRYING
            except Exception as failure:  # a bug in a renderer must not kill the thread
                log.exception("delivery %s to %s failed unexpectedly", row.event_id, row.target)
                error = f"{type(failure).__name__}: {failure}"[:300]
                outcome = FAILED if number >= self.max_attempts else RETRYING
            duration_ms = (time.perf_counter() - tick) * 1000
            values: dict[str, Any] = {"status": outcome, "attempts": number, "last_error": error, "claimed_at": None}
            if outcome == DELIVERED:
                values["delivered_at"] = utc(now)
            elif outcome == RETRYING:
                values["next_attempt_at"] = utc(now + timedelta(seconds=self.backoff[number - 1]))
            with self.engine.begin() as connection:
                connection.execute(
                    insert(delivery_log).values(
                        delivery_id=row.id,
                        event_id=row.event_id,
                        target=row.target,
                        attempt=number,
                        at=utc(now),
                        outcome=outcome,
                        status_code=status_code,
                        error=error,
                        duration_ms=duration_ms,
                    )
                )
                connection.execute(update(deliveries).where(deliveries.c.id == row.id).values(**values))
            if outcome != DELIVERED:
                log.warning("delivery of %s to %s: %s (attempt %d)", row.event_id, row.target, error, number)
            attempts.append(Attempt(row.id, row.event_id, row.target, number, outcome, status_code, error))
        return attempts

    def run(self, interval: float = 2.0) -> None:
        """Deliver until ``stop`` is called; errors are logged and the loop goes on."""
        while not self._stop.is_set():
            try:
                self.deliver_due()
            except Exception:
                log.exception("notification delivery round failed")
            self._stop.wait(interval)

    def start(self, interval: float = 2.0) -> threading.Thread:
        """Run ``run`` in a daemon thread."""
        self._stop.clear()
        self._thread = threading.Thread(target=self.run, args=(interval,), name="alert-notifier", daemon=True)
        self._thread.start()
        return self._thread

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the thread after its current attempt (bounded by the timeouts)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)


# --- the delivery log, as operators read it -------------------------------------------------------

DELIVERY_STATUSES = ("ok", "failed", "gave_up")
"""Filters of the delivery log page: ``ok`` an attempt that delivered, ``failed`` any attempt that did
not (a retry follows, or it was the last), ``gave_up`` the last attempt of a delivery, failed."""


@dataclass(frozen=True)
class DeliveryFilter:
    """What the delivery log page asks for; ``start`` inclusive, ``end`` exclusive (aware datetimes)."""

    status: str | None = None
    target: str | None = None
    start: datetime | None = None
    end: datetime | None = None


@dataclass(frozen=True)
class LoggedAttempt:
    """One attempt of the delivery log with the alert it was about (None when the event is gone)."""

    id: int
    at: datetime
    event_id: str
    target: str
    channel: str
    attempt: int
    outcome: str
    status_code: int | None
    error: str | None
    duration_ms: float
    alert_id: str | None
    rule_id: int | None
    rule_name: str | None
    kind: str | None
    severity: str | None


def _log_conditions(filters: DeliveryFilter) -> list:
    log_table = alert_delivery_log
    conditions = []
    if filters.status == "ok":
        conditions.append(log_table.c.outcome == DELIVERED)
    elif filters.status == "failed":
        conditions.append(log_table.c.outcome != DELIVERED)
    elif filters.status == "gave_up":
        conditions.append(log_table.c.outcome == FAILED)
    if filters.target:
        conditions.append(log_table.c.target == filters.target)
    if filters.start is not None:
        conditions.append(log_table.c.at >= utc(filters.start))
    if filters.end is not None:
        conditions.append(log_table.c.at < utc(filters.end))
    return conditions


def delivery_log(
    engine: Engine, filters: DeliveryFilter, *, before_id: int | None = None, limit: int = 50
) -> list[LoggedAttempt]:
    """Attempts matching ``filters``, newest first, keyset-paged on the log's id (older than ``before_id``)."""
    log_table, events, deliveries = alert_delivery_log, alert_events, alert_deliveries
    conditions = _log_conditions(filters)
    if before_id is not None:
        conditions.append(log_table.c.id < before_id)
    statement = (
        select(
            log_table,
            deliveries.c.channel,
            events.c.alert_id,
            events.c.rule_id,
            events.c.rule_name,
            events.c.kind,
            events.c.severity,
        )
        .select_from(
            log_table.outerjoin(deliveries, deliveries.c.id == log_table.c.delivery_id).outerjoin(
                events, events.c.event_id == log_table.c.event_id
            )
        )
        .where(and_(True, *conditions))
        .order_by(log_table.c.id.desc())
        .limit(limit)
    )
    with engine.connect() as connection:
        rows = connection.execute(statement).fetchall()
    return [
        LoggedAttempt(
            id=row.id,
            at=aware(row.at),
            event_id=row.event_id,
            target=row.target,
            channel=row.channel or channel_of(row.target),
            attempt=row.attempt,
            outcome=row.outcome,
            status_code=row.status_code,
            error=row.error,
            duration_ms=row.duration_ms,
            alert_id=row.alert_id,
            rule_id=row.rule_id,
            rule_name=row.rule_name,
            kind=row.kind,
            severity=row.severity,
        )
        for row in rows
    ]


def failures_since(engine: Engine, since: datetime) -> tuple[int, int]:
    """(failed attempts, deliveries given up) logged at or after ``since``."""
    log_table = alert_delivery_log
    statement = select(
        func.count(),
        func.coalesce(func.sum(case((log_table.c.outcome == FAILED, 1), else_=0)), 0),
    ).where(log_table.c.at >= utc(since), log_table.c.outcome != DELIVERED)
    with engine.connect() as connection:
        failed, gave_up = connection.execute(statement).one()
    return int(failed), int(gave_up)


def newest_attempt_id(engine: Engine) -> int | None:
    """The newest log row's id: a cheap signature of the log for the page's refresh tick."""
    with engine.connect() as connection:
        return connection.execute(select(func.max(alert_delivery_log.c.id))).scalar()


def delivery_targets(engine: Engine) -> list[str]:
    """Every target the outbox has held, sorted (the page's target filter)."""
    with engine.connect() as connection:
        return list(connection.execute(select(alert_deliveries.c.target).distinct().order_by("target")).scalars())
