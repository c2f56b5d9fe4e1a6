"""Alert tables in the app database, next to ``users`` and ``audit_log`` (same SQLAlchemy metadata).

Times are stored in UTC (``DateTime(timezone=True)``; SQLite keeps them as naive UTC text, read back
through ``aware``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from functools import lru_cache

from sqlalchemy import (
    Boolean,
    Column,
    DateTime,
    Engine,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from data_sources.clock import LOCAL_TZ
from data_sources.users import metadata

alert_rules = Table(
    "alert_rules",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(120), nullable=False),
    Column("dataset", String(64), nullable=False, index=True),
    Column("kpi", String(64), nullable=False),
    Column("scope", String(16), nullable=False),
    Column("ward", String(16)),
    Column("comparator", String(2), nullable=False),
    Column("warning_value", Float),
    Column("warning_attribute", String(64)),
    Column("critical_value", Float),
    Column("critical_attribute", String(64)),
    Column("hold_minutes", Integer, nullable=False, default=0),
    Column("clear_margin", Float, nullable=False, default=0.0),
    Column("no_data", String(8), nullable=False),
    Column("enabled", Boolean, nullable=False, default=True),
    Column("owner", String(64), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("targets", Text, nullable=False, default="[]"),
    Column("version", Integer, nullable=False, default=1),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("created_by", String(64)),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("updated_by", String(64)),
)

alert_states = Table(
    "alert_states",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rule_id", Integer, nullable=False),
    Column("subject", String(96), nullable=False),
    Column("dataset", String(64), nullable=False),
    Column("sector", String(32), nullable=False),
    Column("ward", String(16)),
    Column("subject_label", Text),
    Column("state", String(16), nullable=False),
    Column("severity", String(16)),
    Column("alert_id", String(32)),
    Column("since", DateTime(timezone=True)),
    Column("value", Float),
    Column("threshold", Float),
    Column("escalating_to", String(16)),
    Column("escalating_since", DateTime(timezone=True)),
    Column("acked_by", String(64)),
    Column("acked_at", DateTime(timezone=True)),
    Column("ack_comment", Text),
    Column("notified", Boolean, nullable=False, default=True),
    Column("version", Integer, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    # set by the batch that last wrote the row: how a batched conditional update learns which rows it won
    Column("write_token", String(32)),
    UniqueConstraint("rule_id", "subject", name="uq_alert_states_rule_subject"),
    Index("ix_alert_states_state", "state"),
    Index("ix_alert_states_alert_id", "alert_id"),
)

alert_events = Table(
    "alert_events",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(32), nullable=False, unique=True),
    Column("alert_id", String(32), index=True),
    Column("rule_id", Integer, nullable=False, index=True),
    Column("rule_name", Text, nullable=False),
    Column("dataset", String(64), nullable=False),
    Column("kpi", String(64), nullable=False),
    Column("sector", String(32), nullable=False, index=True),
    Column("ward", String(16), index=True),
    Column("subject", String(96), nullable=False),
    Column("subject_label", Text),
    Column("kind", String(24), nullable=False),
    Column("from_state", String(16), nullable=False),
    Column("to_state", String(16), nullable=False),
    Column("severity", String(16)),
    Column("value", Float),
    Column("threshold", Float),
    Column("at", DateTime(timezone=True), nullable=False, index=True),
    Column("actor", String(64)),
    Column("comment", Text),
    Column("silenced", Boolean, nullable=False, default=False),
    Column("notify", Boolean, nullable=False, default=False),
)

alert_silences = Table(
    "alert_silences",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("rule_id", Integer),
    Column("ward", String(16)),
    Column("starts_at", DateTime(timezone=True), nullable=False),
    Column("ends_at", DateTime(timezone=True), nullable=False, index=True),
    Column("reason", Text, nullable=False),
    Column("created_by", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("ended_at", DateTime(timezone=True)),
    Column("ended_by", String(64)),
)

alert_deliveries = Table(
    "alert_deliveries",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("event_id", String(32), nullable=False, index=True),
    Column("target", Text, nullable=False),
    Column("channel", String(16), nullable=False),
    Column("status", String(16), nullable=False),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("claimed_at", DateTime(timezone=True)),
    Column("delivered_at", DateTime(timezone=True)),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("event_id", "target", name="uq_alert_deliveries_event_target"),
    Index("ix_alert_deliveries_due", "status", "next_attempt_at"),
)

alert_delivery_log = Table(
    "alert_delivery_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("delivery_id", Integer, nullable=False, index=True),
    Column("event_id", String(32), nullable=False, index=True),
    Column("target", Text, nullable=False),
    Column("attempt", Integer, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("outcome", String(16), nullable=False),
    Column("status_code", Integer),
    Column("error", Text),
    Column("duration_ms", Float, nullable=False),
    Index("ix_alert_delivery_log_at", "at"),
)


ADDED_INDEXES = (next(i for i in alert_delivery_log.indexes if i.name == "ix_alert_delivery_log_at"),)
"""Indexes added after their table first shipped: ``create_all`` skips existing tables, so they are made here."""


def create_alert_schema(engine: Engine) -> None:
    """Create the app tables (users, audit log and the alert tables) and any index they lack."""
    metadata.create_all(engine)
    for index in ADDED_INDEXES:
        index.create(engine, checkfirst=True)


@lru_cache(maxsize=1024)
def utc(moment: datetime) -> datetime:
    """An aware datetime in UTC, as stored (naive input is local wall time). Cached: a batch of state
    changes converts the same few moments thousands of times."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=LOCAL_TZ)
    return moment.astimezone(UTC)


def aware(moment: datetime | None) -> datetime | None:
    """A stored time as an aware Asia/Ho_Chi_Minh datetime (SQLite returns naive UTC)."""
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(LOCAL_TZ)
