"""Rules, alert states, events and silences in the app database.

Every state change is a conditional update: ``UPDATE alert_states ... WHERE id = ? AND version = ?``
(or an insert that does nothing when the row already exists). A writer that loses the race changes
nothing, writes no event, and re-reads: so an acknowledge and a resolve arriving at the same moment
leave one consistent state and a history that matches it. State, events and the outbox rows of
their notifications are written in one transaction. Every rule and silence change and every
acknowledgement goes to the audit log.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime
from operator import itemgetter
from typing import Any

from sqlalchemy import Connection, Engine, Table, and_, bindparam, func, insert, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql import Executable
from sqlalchemy.sql.selectable import TableValuedAlias
from sqlalchemy.types import TypeEngine

from config.roles import Scope
from data_sources.alerts.evaluate import (
    ACKNOWLEDGED,
    ACTIVE,
    FIRING,
    PENDING,
    AlertState,
    Change,
    Event,
    TransitionError,
    acknowledge,
)
from data_sources.alerts.model import Rule, Silence, Threshold
from data_sources.alerts.tables import alert_events, alert_rules, alert_silences, alert_states, aware, utc
from data_sources.notify import enqueue_deliveries
from data_sources.users import audit

MAX_SILENCE_DAYS = 30
ACK_ATTEMPTS = 3


class ConflictError(RuntimeError):
    """Someone else changed the row since it was read; the message says what to do."""


class SilenceError(ValueError):
    """A silence request that cannot be honoured; ``errors`` maps fields to message keys."""

    def __init__(self, errors: dict[str, tuple[str, dict[str, Any]]]) -> None:
        self.errors = errors
        super().__init__("; ".join(f"{k}: {v[0]}" for k, v in errors.items()))


# --- rules ----------------------------------------------------------------------------------------


def _rule_values(rule: Rule) -> dict[str, Any]:
    def parts(threshold: Threshold | None) -> tuple[float | None, str | None]:
        return (threshold.value, threshold.attribute) if threshold else (None, None)

    warning_value, warning_attribute = parts(rule.warning)
    critical_value, critical_attribute = parts(rule.critical)
    return {
        "name": rule.name,
        "dataset": rule.dataset,
        "kpi": rule.kpi,
        "scope": rule.scope,
        "ward": rule.ward,
        "comparator": rule.comparator,
        "warning_value": warning_value,
        "warning_attribute": warning_attribute,
        "critical_value": critical_value,
        "critical_attribute": critical_attribute,
        "hold_minutes": rule.hold_minutes,
        "clear_margin": rule.clear_margin,
        "no_data": rule.no_data,
        "enabled": rule.enabled,
        "owner": rule.owner,
        "description": rule.description,
        "targets": json.dumps(list(rule.targets), ensure_ascii=False),
    }


def _threshold(value: float | None, attribute: str | None) -> Threshold | None:
    if attribute:
        return Threshold(attribute=attribute)
    return Threshold(value=value) if value is not None else None


def rule_from_row(row: Any) -> Rule:
    """A stored rule."""
    return Rule(
        id=row.id,
        version=row.version,
        name=row.name,
        dataset=row.dataset,
        kpi=row.kpi,
        scope=row.scope,
        ward=row.ward,
        comparator=row.comparator,
        warning=_threshold(row.warning_value, row.warning_attribute),
        critical=_threshold(row.critical_value, row.critical_attribute),
        hold_minutes=row.hold_minutes,
        clear_margin=row.clear_margin,
        no_data=row.no_data,
        enabled=bool(row.enabled),
        owner=row.owner,
        description=row.description or "",
        targets=tuple(json.loads(row.targets or "[]")),
    )


def _audit_detail(rule: Rule, before: Rule | None = None) -> str:
    now_values = _rule_values(rule)
    if before is None:
        return json.dumps({"rule": rule.id, **now_values}, ensure_ascii=False, default=str)
    old_values = _rule_values(before)
    changed = {k: [old_values[k], v] for k, v in now_values.items() if old_values[k] != v}
    return json.dumps({"rule": rule.id, "changed": changed}, ensure_ascii=False, default=str)


def save_rule(engine: Engine, rule: Rule, *, actor: str, now: datetime, address: str | None = None) -> Rule:
    """Insert a new rule (``rule.id`` None) or update one at the version it was read.

    ``ConflictError`` when someone else saved the rule meanwhile: nothing is written.
    """
    values = _rule_values(rule)
    stamp = utc(now)
    with engine.begin() as connection:
        if rule.id is None:
            new_id = connection.execute(
                insert(alert_rules)
                .values(**values, version=1, created_at=stamp, created_by=actor, updated_at=stamp, updated_by=actor)
                .returning(alert_rules.c.id)
            ).scalar_one()
            saved = replace(rule, id=new_id, version=1)
            action, detail = "alert_rule_create", _audit_detail(saved)
        else:
            before_row = connection.execute(select(alert_rules).where(alert_rules.c.id == rule.id)).first()
            if before_row is None:
                raise ConflictError(f"rule {rule.id} does not exist")
            changed = connection.execute(
                update(alert_rules)
                .where(alert_rules.c.id == rule.id, alert_rules.c.version == rule.version)
                .values(**values, version=rule.version + 1, updated_at=stamp, updated_by=actor)
            ).rowcount
            if changed != 1:
                raise ConflictError(f"rule {rule.id} was changed by someone else; reload it")
            saved = replace(rule, version=rule.version + 1)
            action, detail = "alert_rule_update", _audit_detail(saved, rule_from_row(before_row))
    audit(engine, action, username=actor, detail=detail, address=address)
    return saved


def set_rule_enabled(
    engine: Engine, rule_id: int, enabled: bool, *, actor: str, now: datetime, address: str | None = None
) -> Rule:
    """Enable or disable a rule (a conditional update on its version)."""
    rule = get_rule(engine, rule_id)
    if rule is None:
        raise ConflictError(f"rule {rule_id} does not exist")
    with engine.begin() as connection:
        changed = connection.execute(
            update(alert_rules)
            .where(alert_rules.c.id == rule_id, alert_rules.c.version == rule.version)
            .values(enabled=enabled, version=rule.version + 1, updated_at=utc(now), updated_by=actor)
        ).rowcount
    if changed != 1:
        raise ConflictError(f"rule {rule_id} was changed by someone else; reload it")
    detail = json.dumps({"rule": rule_id, "name": rule.name, "enabled": enabled}, ensure_ascii=False)
    audit(
        engine, "alert_rule_enable" if enabled else "alert_rule_disable", username=actor, detail=detail, address=address
    )
    return replace(rule, enabled=enabled, version=rule.version + 1)


def get_rule(engine: Engine, rule_id: int) -> Rule | None:
    """One stored rule."""
    with engine.connect() as connection:
        row = connection.execute(select(alert_rules).where(alert_rules.c.id == rule_id)).first()
    return rule_from_row(row) if row else None


@contextmanager
def reading(bind: Engine | Connection) -> Iterator[Connection]:
    """``bind`` itself when it is a connection (several reads on one), else a connection of its own."""
    if isinstance(bind, Connection):
        yield bind
    else:
        with bind.connect() as connection:
            yield connection


def list_rules(engine: Engine | Connection, *, dataset: str | None = None, enabled_only: bool = False) -> list[Rule]:
    """Stored rules by name."""
    statement = select(alert_rules).order_by(alert_rules.c.name, alert_rules.c.id)
    if dataset is not None:
        statement = statement.where(alert_rules.c.dataset == dataset)
    if enabled_only:
        statement = statement.where(alert_rules.c.enabled.is_(True))
    with reading(engine) as connection:
        return [rule_from_row(row) for row in connection.execute(statement)]


def rules_fingerprint(engine: Engine | Connection, dataset: str) -> tuple:
    """Count, highest id and sum of versions of a dataset's rules: changes whenever a rule does."""
    with reading(engine) as connection:
        row = connection.execute(
            select(func.count(), func.max(alert_rules.c.id), func.sum(alert_rules.c.version)).where(
                alert_rules.c.dataset == dataset
            )
        ).one()
    return tuple(row)


# --- states ---------------------------------------------------------------------------------------


def state_from_row(row: Any) -> AlertState:
    """A stored state."""
    return AlertState(
        state=row.state,
        severity=row.severity,
        alert_id=row.alert_id,
        since=aware(row.since),
        value=row.value,
        threshold=row.threshold,
        escalating_to=row.escalating_to,
        escalating_since=aware(row.escalating_since),
        acked_by=row.acked_by,
        acked_at=aware(row.acked_at),
        ack_comment=row.ack_comment,
        notified=bool(row.notified),
        version=row.version,
    )


LIVE_STATES = (PENDING, FIRING, ACKNOWLEDGED)
"""States that can change without the data crossing a threshold again; ok and resolved rows are only
read back when their subject breaches (through the conflict path of ``apply_changes``)."""


def load_states(
    engine: Engine | Connection,
    rule_ids: Sequence[int],
    subjects: Sequence[str] | None = None,
    *,
    live_only: bool = False,
) -> dict[int, dict[str, AlertState]]:
    """Stored states of these rules: rule id -> subject -> state (subjects without a row are ``ok``)."""
    found: dict[int, dict[str, AlertState]] = {rule_id: {} for rule_id in rule_ids}
    if not rule_ids:
        return found
    statement = select(alert_states)
    if len(rule_ids) < 500:
        statement = statement.where(alert_states.c.rule_id.in_(list(rule_ids)))
    if subjects is not None:
        statement = statement.where(alert_states.c.subject.in_(list(subjects)))
    if live_only:
        statement = statement.where(alert_states.c.state.in_(LIVE_STATES))
    with reading(engine) as connection:
        for row in connection.execute(statement):
            if row.rule_id in found:
                found[row.rule_id][row.subject] = state_from_row(row)
    return found


def _state_values(state: AlertState) -> dict[str, Any]:
    return {
        "state": state.state,
        "severity": state.severity,
        "alert_id": state.alert_id,
        "since": utc(state.since) if state.since else None,
        "value": state.value,
        "threshold": state.threshold,
        "escalating_to": state.escalating_to,
        "escalating_since": utc(state.escalating_since) if state.escalating_since else None,
        "acked_by": state.acked_by,
        "acked_at": utc(state.acked_at) if state.acked_at else None,
        "ack_comment": state.ack_comment,
        "notified": state.notified,
    }


def _unnested(rows: Sequence[Mapping[str, Any]], types: Mapping[str, TypeEngine]) -> TableValuedAlias:
    """Rows as ``unnest(:a::type[], :b::type[], ...) AS anon(a, b, ...)`` (PostgreSQL): one array parameter
    per column, so the statement's text is the same for any number of rows. A multi-row ``VALUES`` list
    of thousands of placeholders is parsed afresh by the driver on every call (psycopg caches only
    statements up to 4 kB), which cost more than the database's own work."""
    arrays = [bindparam(f"u_{name}", [row[name] for row in rows], type_=ARRAY(types[name])) for name in types]
    return func.unnest(*arrays).table_valued(*types).render_derived()


def _types(table: Table, names: Iterable[str]) -> dict[str, TypeEngine]:
    return {name: table.c[name].type for name in names}


def _driver_executemany(connection: Connection, statement: Executable, rows: list[dict[str, Any]]) -> None:
    """``statement`` once per row, handed to the driver's ``executemany`` as plain tuples (SQLite).

    Each value still passes its column type's bind processor (datetimes, booleans), but not
    SQLAlchemy's per-row parameter handling, which cost three times SQLite's own work for a few
    thousand rows. Every parameter must come from the rows (no column defaults, no values bound in the
    statement); otherwise SQLAlchemy runs it as usual.
    """
    dialect = connection.dialect
    compiled = statement.compile(dialect=dialect, column_keys=list(rows[0]))
    order = compiled.positiontup
    if order is None or compiled.insert_prefetch or compiled.update_prefetch or not set(order) <= rows[0].keys():
        connection.execute(statement, rows)
        return
    take = itemgetter(*order) if len(order) > 1 else (lambda row: (row[order[0]],))
    processors = [compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect) for name in order]
    conversions = [(i, convert) for i, convert in enumerate(processors) if convert is not None]
    data = []
    for row in rows:
        values = list(take(row))
        for i, convert in conversions:
            values[i] = convert(values[i])
        data.append(tuple(values))
    connection.exec_driver_sql(str(compiled), data)


def _stamped(connection: Connection, token: str, rule_ids: Iterable[int]) -> set[tuple[int, str]]:
    """The (rule, subject) pairs whose state rows carry this batch's write token."""
    statement = select(alert_states.c.rule_id, alert_states.c.subject).where(
        alert_states.c.write_token == token, alert_states.c.rule_id.in_(sorted(set(rule_ids)))
    )
    return {(row.rule_id, row.subject) for row in connection.execute(statement)}


def _conditional_update(columns: Iterable[str]) -> Executable:
    """``UPDATE alert_states ... WHERE rule_id, subject, version = <as read>`` for executemany parameters
    ``b_rule``, ``b_subject``, ``b_version``, ``new_label`` and ``new_<column>``."""
    return (
        update(alert_states)
        .where(
            alert_states.c.rule_id == bindparam("b_rule"),
            alert_states.c.subject == bindparam("b_subject"),
            alert_states.c.version == bindparam("b_version"),
        )
        .values(**{k: bindparam(f"new_{k}") for k in columns}, subject_label=bindparam("new_label"))
    )


_UPDATE_KEYS = {"b_rule": "rule_id", "b_subject": "subject", "b_version": "version", "new_label": "subject_label"}
"""Parameters of the conditional state update that are named after another column than their own."""


def _write_states(
    connection: Connection,
    fresh: list[dict[str, Any]],
    updates: list[dict[str, Any]],
    token: str,
) -> set[tuple[int, str]]:
    """Insert new state rows (skipping (rule, subject) pairs that exist already) and update existing ones
    at the version they were read; the pairs this batch wrote (won).

    PostgreSQL: ``INSERT ... SELECT FROM unnest(...) ON CONFLICT DO NOTHING RETURNING`` and ``UPDATE ...
    FROM unnest(...) ... RETURNING``. SQLite: both as executemany through the driver, every written row
    stamped with ``token``, then one select of the rows carrying it (the batch holds SQLite's write lock,
    so no other writer can stamp or overwrite them meanwhile).
    """
    if not fresh and not updates:
        return set()
    columns = [k.removeprefix("new_") for k in (updates[0] if updates else {}) if k.startswith("new_")]
    columns = [k for k in columns if k != "label"]
    dialect = connection.dialect.name
    if dialect == "postgresql":
        won = set()
        if fresh:
            source = _unnested(fresh, _types(alert_states, fresh[0]))
            inserted = (
                postgresql.insert(alert_states)
                .from_select(list(fresh[0]), select(*source.c))
                .on_conflict_do_nothing()
                .returning(alert_states.c.rule_id, alert_states.c.subject)
            )
            won |= {(row.rule_id, row.subject) for row in connection.execute(inserted)}
        if updates:
            names = {k: alert_states.c[_UPDATE_KEYS.get(k, k.removeprefix("new_"))].type for k in updates[0]}
            source = _unnested(updates, names)
            updated = (
                update(alert_states)
                .where(
                    alert_states.c.rule_id == source.c.b_rule,
                    alert_states.c.subject == source.c.b_subject,
                    alert_states.c.version == source.c.b_version,
                )
                .values(**{k: source.c[f"new_{k}"] for k in columns}, subject_label=source.c.new_label)
                .returning(alert_states.c.rule_id, alert_states.c.subject)
            )
            won |= {(row.rule_id, row.subject) for row in connection.execute(updated)}
        return won
    if dialect == "sqlite":
        if fresh:
            _driver_executemany(connection, sqlite.insert(alert_states).on_conflict_do_nothing(), fresh)
        if updates:
            _driver_executemany(connection, _conditional_update(columns), updates)
    else:  # pragma: no cover - other databases: one insert per row inside a savepoint
        for row in fresh:
            with connection.begin_nested() as nested:
                try:
                    connection.execute(insert(alert_states).values(**row))
                except Exception:
                    nested.rollback()
        if updates:
            connection.execute(_conditional_update(columns), updates)
    return _stamped(connection, token, [r["rule_id"] for r in fresh] + [p["b_rule"] for p in updates])


def _insert_events(connection: Connection, rows: list[dict[str, Any]]) -> None:
    """Insert event rows in one statement (PostgreSQL: from arrays; SQLite: through the driver)."""
    dialect = connection.dialect.name
    if dialect == "postgresql":
        source = _unnested(rows, _types(alert_events, rows[0]))
        connection.execute(insert(alert_events).from_select(list(rows[0]), select(*source.c)))
    elif dialect == "sqlite":
        _driver_executemany(connection, insert(alert_events), rows)
    else:  # pragma: no cover
        connection.execute(insert(alert_events), rows)


def _event_values(rule: Rule, sector: str, subject: str, ward: str | None, label: str | None, event: Event) -> dict:
    return {
        "event_id": event.event_id,
        "alert_id": event.alert_id,
        "rule_id": rule.id,
        "rule_name": rule.name,
        "dataset": rule.dataset,
        "kpi": rule.kpi,
        "sector": sector,
        "ward": ward,
        "subject": subject,
        "subject_label": label,
        "kind": event.kind,
        "from_state": event.from_state,
        "to_state": event.to_state,
        "severity": event.severity,
        "value": event.value,
        "threshold": event.threshold,
        "at": utc(event.at),
        "actor": event.actor,
        "comment": event.comment,
        "silenced": event.silenced,
        "notify": event.notify,
    }


SubjectInfo = Callable[[str], tuple[str | None, str | None]]
"""subject -> (current ward, display label)."""


def apply_changes(
    engine: Engine,
    rule: Rule,
    sector: str,
    changes: Iterable[Change],
    subject_info: SubjectInfo,
    now: datetime,
    connection: Connection | None = None,
) -> list[str]:
    """Write one rule's state changes conditionally; the subjects that lost a race (nothing written for them)."""
    batch = [(rule, sector, list(changes))]
    if connection is not None:
        lost = apply_batch(connection, batch, subject_info, now)
    else:
        with engine.begin() as conn:
            lost = apply_batch(conn, batch, subject_info, now)
    return [c.subject for _, changes in lost for c in changes]


def apply_batch(
    connection: Connection,
    batch: Sequence[tuple[Rule, str, list[Change]]],
    subject_info: SubjectInfo,
    now: datetime,
) -> list[tuple[Rule, list[Change]]]:
    """Write many rules' changes in a few statements, each row conditional on its version.

    New rows: one multi-row ``INSERT ... ON CONFLICT DO NOTHING RETURNING``. Existing rows: an
    ``UPDATE ... WHERE version = <read version>`` per row, whose result says which rows this batch won
    (``_update_many_conditionally``). Events (one multi-row insert) and outbox rows (one per distinct
    set of targets) are written only for won rows. On PostgreSQL each statement takes its rows as
    arrays (``_unnested``). Returns the lost changes per rule, to be re-read and re-evaluated.
    """
    stamp = utc(now)
    token = uuid.uuid4().hex
    info: dict[str, tuple[str | None, str | None]] = {}
    fresh_rows, update_params = [], []
    for rule, sector, changes in batch:
        for change in changes:
            if change.subject not in info:
                info[change.subject] = subject_info(change.subject)
            ward, label = info[change.subject]
            values = _state_values(change.state)
            if change.previous.version == 0:
                fresh_rows.append(
                    {
                        **values,
                        "rule_id": rule.id,
                        "subject": change.subject,
                        "dataset": rule.dataset,
                        "sector": sector,
                        "ward": ward,
                        "subject_label": label,
                        "version": 1,
                        "updated_at": stamp,
                        "write_token": token,
                    }
                )
            else:
                update_params.append(
                    {
                        **{f"new_{k}": v for k, v in values.items()},
                        "b_rule": rule.id,
                        "b_subject": change.subject,
                        "b_version": change.previous.version,
                        "new_version": change.previous.version + 1,
                        "new_ward": ward,
                        "new_label": label,
                        "new_updated_at": stamp,
                        "new_write_token": token,
                    }
                )
    won = _write_states(connection, fresh_rows, update_params, token)
    lost: list[tuple[Rule, list[Change]]] = []
    events: list[dict[str, Any]] = []
    deliveries: dict[tuple[str, ...], list[str]] = {}
    for rule, sector, changes in batch:
        rule_lost = []
        for change in changes:
            if (rule.id, change.subject) not in won:
                rule_lost.append(change)
                continue
            ward, label = info[change.subject]
            for event in change.events:
                events.append(_event_values(rule, sector, change.subject, ward, label, event))
                if event.notify and rule.targets:
                    deliveries.setdefault(rule.targets, []).append(event.event_id)
        if rule_lost:
            lost.append((rule, rule_lost))
    if events:
        _insert_events(connection, events)
    for targets, event_ids in deliveries.items():
        enqueue_deliveries(connection, event_ids, targets, now)
    return lost


@dataclass(frozen=True)
class AckResult:
    """The state after an acknowledgement."""

    alert_id: str
    state: AlertState


def acknowledge_alert(
    engine: Engine,
    alert_id: str,
    *,
    actor: str,
    comment: str,
    now: datetime,
    scope: Scope | None = None,
    address: str | None = None,
) -> AckResult:
    """Acknowledge a firing alert with a comment.

    ``LookupError`` when no such alert is visible in ``scope``; ``TransitionError`` when it is not
    firing any more (resolved, or acknowledged by someone else meanwhile). Conditional on the row's
    version, so it never overwrites a resolve that happened a moment before.
    """
    comment = (comment or "").strip()
    if not comment:
        raise ValueError("a comment is required")
    for _attempt in range(ACK_ATTEMPTS):
        with engine.begin() as connection:
            row = connection.execute(
                select(alert_states).where(alert_states.c.alert_id == alert_id).order_by(alert_states.c.id.desc())
            ).first()
            if row is None or (scope is not None and not _in_scope(scope, row.sector, row.ward)):
                raise LookupError(alert_id)
            previous = state_from_row(row)
            acked, event = acknowledge(previous, actor, comment[:2000], now, rule_id=row.rule_id, subject=row.subject)
            changed = connection.execute(
                update(alert_states)
                .where(alert_states.c.id == row.id, alert_states.c.version == row.version)
                .values(**_state_values(acked), version=row.version + 1, updated_at=utc(now))
            ).rowcount
            if changed != 1:
                continue  # changed meanwhile (resolved, escalated, new value): read again
            rule_row = connection.execute(select(alert_rules).where(alert_rules.c.id == row.rule_id)).first()
            rule = rule_from_row(rule_row)
            connection.execute(
                insert(alert_events).values(
                    **_event_values(rule, row.sector, row.subject, row.ward, row.subject_label, event)
                )
            )
        detail = json.dumps({"alert": alert_id, "rule": row.rule_id, "comment": comment}, ensure_ascii=False)
        audit(engine, "alert_acknowledge", username=actor, detail=detail, address=address)
        return AckResult(alert_id, replace(acked, version=row.version + 1))
    raise TransitionError("changed", previous)


# --- silences -------------------------------------------------------------------------------------


def _silence(row: Any) -> Silence:
    return Silence(
        id=row.id,
        rule_id=row.rule_id,
        ward=row.ward,
        starts_at=aware(row.starts_at),
        ends_at=aware(row.ends_at),
        reason=row.reason,
        created_by=row.created_by,
        ended_at=aware(row.ended_at),
    )


def create_silence(
    engine: Engine,
    *,
    rule_id: int | None,
    ward: str | None,
    ends_at: datetime | None,
    reason: str,
    actor: str,
    now: datetime,
    ward_codes: Iterable[str] = (),
    address: str | None = None,
) -> Silence:
    """Mute one rule, or one ward (all rules), from now until ``ends_at``, with a reason."""
    errors: dict[str, tuple[str, dict[str, Any]]] = {}
    if (rule_id is None) == (ward is None):
        errors["silence_target"] = ("silence_rule_or_ward", {})
    elif rule_id is not None and get_rule(engine, rule_id) is None:
        errors["silence_target"] = ("unknown_rule", {})
    elif ward is not None and ward not in set(ward_codes):
        errors["silence_target"] = ("unknown_ward", {"ward": ward})
    if ends_at is None or ends_at <= now:
        errors["silence_until"] = ("silence_end_in_future", {})
    elif (ends_at - now).days >= MAX_SILENCE_DAYS:
        errors["silence_until"] = ("silence_too_long", {"days": MAX_SILENCE_DAYS})
    if not (reason or "").strip():
        errors["silence_reason"] = ("required", {})
    if errors:
        raise SilenceError(errors)
    assert ends_at is not None
    with engine.begin() as connection:
        silence_id = connection.execute(
            insert(alert_silences)
            .values(
                rule_id=rule_id,
                ward=ward,
                starts_at=utc(now),
                ends_at=utc(ends_at),
                reason=reason.strip()[:2000],
                created_by=actor,
                created_at=utc(now),
            )
            .returning(alert_silences.c.id)
        ).scalar_one()
    detail = json.dumps(
        {"silence": silence_id, "rule": rule_id, "ward": ward, "until": ends_at.isoformat(), "reason": reason},
        ensure_ascii=False,
    )
    audit(engine, "alert_silence_create", username=actor, detail=detail, address=address)
    return Silence(silence_id, rule_id, ward, now, ends_at, reason.strip(), actor)


def end_silence(engine: Engine, silence_id: int, *, actor: str, now: datetime, address: str | None = None) -> bool:
    """End a silence early; False when it had already ended."""
    with engine.begin() as connection:
        changed = connection.execute(
            update(alert_silences)
            .where(
                alert_silences.c.id == silence_id,
                alert_silences.c.ended_at.is_(None),
                alert_silences.c.ends_at > utc(now),
            )
            .values(ended_at=utc(now), ended_by=actor)
        ).rowcount
    if changed:
        audit(engine, "alert_silence_end", username=actor, detail=json.dumps({"silence": silence_id}), address=address)
    return bool(changed)


def active_silences(engine: Engine | Connection, now: datetime) -> list[Silence]:
    """Silences in force at ``now``."""
    stamp = utc(now)
    statement = (
        select(alert_silences)
        .where(
            alert_silences.c.starts_at <= stamp, alert_silences.c.ends_at > stamp, alert_silences.c.ended_at.is_(None)
        )
        .order_by(alert_silences.c.ends_at)
    )
    with reading(engine) as connection:
        return [_silence(row) for row in connection.execute(statement)]


def is_silenced(silences: Sequence[Silence], rule_id: int | None, ward: str | None, now: datetime) -> bool:
    """True when any silence covers this rule and ward at ``now``."""
    return any(s.covers(rule_id, ward, now) for s in silences)


# --- what people see -----------------------------------------------------------------------------


def _in_scope(scope: Scope, sector: str, ward: str | None) -> bool:
    if not scope.allows_sector(sector):
        return False
    return scope.wards is None or (ward is not None and ward in scope.wards)


def _scope_conditions(table, scope: Scope) -> list:
    conditions = []
    if scope.sectors is not None:
        conditions.append(table.c.sector.in_(sorted(scope.sectors)))
    if scope.wards is not None:
        conditions.append(table.c.ward.in_(sorted(scope.wards)))
    return conditions


@dataclass(frozen=True)
class ActiveAlert:
    """A firing or acknowledged alert as the banner and the alerts page show it."""

    alert_id: str
    rule_id: int
    rule_name: str
    dataset: str
    kpi: str
    sector: str
    ward: str | None
    subject: str
    subject_label: str | None
    state: str
    severity: str
    since: datetime
    value: float | None
    threshold: float | None
    comparator: str
    acked_by: str | None
    acked_at: datetime | None
    ack_comment: str | None
    silenced: bool
    version: int


def active_alerts(engine: Engine, scope: Scope, now: datetime, *, include_silenced: bool = True) -> list[ActiveAlert]:
    """Firing and acknowledged alerts an account may see: critical first, then newest."""
    statement = (
        select(alert_states, alert_rules.c.name, alert_rules.c.kpi, alert_rules.c.comparator)
        .join(alert_rules, alert_rules.c.id == alert_states.c.rule_id)
        .where(alert_states.c.state.in_(ACTIVE), *_scope_conditions(alert_states, scope))
    )
    with engine.connect() as connection:
        rows = connection.execute(statement).fetchall()
        silences = active_silences(connection, now)
    alerts = [
        ActiveAlert(
            alert_id=row.alert_id,
            rule_id=row.rule_id,
            rule_name=row.name,
            dataset=row.dataset,
            kpi=row.kpi,
            sector=row.sector,
            ward=row.ward,
            subject=row.subject,
            subject_label=row.subject_label,
            state=row.state,
            severity=row.severity,
            since=aware(row.since),
            value=row.value,
            threshold=row.threshold,
            comparator=row.comparator,
            acked_by=row.acked_by,
            acked_at=aware(row.acked_at),
            ack_comment=row.ack_comment,
            silenced=is_silenced(silences, row.rule_id, row.ward, now),
            version=row.version,
        )
        for row in rows
    ]
    if not include_silenced:
        alerts = [a for a in alerts if not a.silenced]
    order = {"critical": 0, "warning": 1, "no_data": 2}
    alerts.sort(key=lambda a: (a.state != FIRING, order.get(a.severity, 3), -a.since.timestamp()))
    return alerts


@dataclass(frozen=True)
class HistoryFilter:
    """Filters of the alert history page and its CSV export."""

    start: datetime | None = None
    end: datetime | None = None
    sector: str | None = None
    ward: str | None = None
    severity: str | None = None
    kind: str | None = None
    rule_id: int | None = None


def alert_history(engine: Engine, scope: Scope, filters: HistoryFilter, *, limit: int = 500) -> tuple[list[dict], int]:
    """Events an account may see, newest first, and how many match in all."""
    conditions = _scope_conditions(alert_events, scope)
    if filters.start is not None:
        conditions.append(alert_events.c.at >= utc(filters.start))
    if filters.end is not None:
        conditions.append(alert_events.c.at < utc(filters.end))
    for column, value in (
        (alert_events.c.sector, filters.sector),
        (alert_events.c.ward, filters.ward),
        (alert_events.c.severity, filters.severity),
        (alert_events.c.kind, filters.kind),
        (alert_events.c.rule_id, filters.rule_id),
    ):
        if value is not None:
            conditions.append(column == value)
    where = and_(*conditions) if conditions else None
    statement = select(alert_events).order_by(alert_events.c.at.desc(), alert_events.c.id.desc()).limit(limit)
    count = select(func.count()).select_from(alert_events)
    if where is not None:
        statement, count = statement.where(where), count.where(where)
    with engine.connect() as connection:
        rows = [dict(row._mapping) for row in connection.execute(statement)]
        total = connection.execute(count).scalar_one()
    for row in rows:
        row["at"] = aware(row["at"])
    return rows, total


def alerts_signature(engine: Engine, scope: Scope, now: datetime) -> str:
    """A cheap fingerprint of what the banner shows (active rows, their versions, silences)."""
    with engine.connect() as connection:
        rows = connection.execute(
            select(alert_states.c.id, alert_states.c.version)
            .where(alert_states.c.state.in_(ACTIVE), *_scope_conditions(alert_states, scope))
            .order_by(alert_states.c.id)
        ).fetchall()
        silences = [s.id for s in active_silences(connection, now)]
    return json.dumps([[list(r) for r in rows], silences])
