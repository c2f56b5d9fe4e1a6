"""The alert lifecycle as pure functions: (rule, observation, previous state, now) -> (state, events).

States of one (rule, subject) pair::

    ok ──condition true──► pending ──held for hold_minutes──► firing(warning|critical|no_data)
     ▲                        │                                 │        ▲          │
     └──condition false───────┘                   acknowledge   ▼        │escalates │ condition false
                                                            acknowledged─┘          ▼ (past the clear margin)
                                                                 └──────────► resolved ──► pending/firing
                                                                                           (a new alert)

* An acknowledged alert whose severity rises (warning -> critical) fires again; a falling severity
  is recorded (``deescalated``) but does not notify. Escalation is held like firing.
* Hysteresis: an active level stays while the value is within ``clear_margin`` of its threshold.
* No data (stale dataset, or no value for the subject): ``alert`` raises severity ``no_data``,
  ``keep`` leaves everything as it is, ``ignore`` treats it as normal.
* Silencing does not stop the lifecycle; it marks events as silenced and suppresses notifications.
  An alert that fired while muted is notified once the silence is over (``unmuted`` event).

Nothing here reads a clock, a database or a random generator: ids are derived from the inputs
(uuid5), so the same inputs give the same output and every transition is unit-testable.
"""

from __future__ import annotations

import hashlib
import operator
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from data_sources.alerts.model import NO_DATA_IGNORE, NO_DATA_KEEP, Rule

OK, PENDING, FIRING, ACKNOWLEDGED, RESOLVED = "ok", "pending", "firing", "acknowledged", "resolved"
STATES = (OK, PENDING, FIRING, ACKNOWLEDGED, RESOLVED)
ACTIVE = (FIRING, ACKNOWLEDGED)
WARNING, CRITICAL, NO_DATA = "warning", "critical", "no_data"
SEVERITIES = (CRITICAL, WARNING, NO_DATA)
RANK = {NO_DATA: 0, WARNING: 1, CRITICAL: 2}

# event kinds
PENDING_STARTED = "pending"
PENDING_CANCELLED = "pending_cancelled"
FIRED = "fired"
ESCALATED = "escalated"
DEESCALATED = "deescalated"
ACKNOWLEDGED_EVENT = "acknowledged"
RESOLVED_EVENT = "resolved"
UNMUTED = "unmuted"
EVENT_KINDS = (
    PENDING_STARTED,
    PENDING_CANCELLED,
    FIRED,
    ESCALATED,
    DEESCALATED,
    ACKNOWLEDGED_EVENT,
    RESOLVED_EVENT,
    UNMUTED,
)
NOTIFIED_KINDS = (FIRED, ESCALATED, RESOLVED_EVENT, UNMUTED)

_COMPARE = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le}
_IDS = uuid.UUID("6f1c1f0e-6a56-4c4b-9d0e-1a7e5b0c4e06")
_ID_NAMESPACE = _IDS.bytes

PROVINCE_SUBJECT = "province"


def ward_subject(code: str) -> str:
    """Subject key of a ward."""
    return f"ward:{code}"


def entity_subject(entity: str) -> str:
    """Subject key of a station, gauge, facility or segment."""
    return f"entity:{entity}"


def subject_parts(subject: str) -> tuple[str, str | None]:
    """("province", None), ("ward", code) or ("entity", id)."""
    kind, _, code = subject.partition(":")
    return kind, (code or None)


@dataclass(frozen=True)
class Observation:
    """What the rule sees for one subject at one poll: the value and the thresholds resolved for it."""

    value: float | None
    warning: float | None = None
    critical: float | None = None
    stale: bool = False

    @property
    def missing(self) -> bool:
        """True when there is nothing to compare: the dataset is stale or the subject has no value."""
        return self.stale or self.value is None


@dataclass(frozen=True)
class AlertState:
    """Where one (rule, subject) stands. ``version`` is the stored row's version (0: no row yet)."""

    state: str = OK
    severity: str | None = None
    alert_id: str | None = None
    since: datetime | None = None
    """Pending since, fired at, acknowledged at or resolved at, by state."""
    value: float | None = None
    threshold: float | None = None
    escalating_to: str | None = None
    escalating_since: datetime | None = None
    acked_by: str | None = None
    acked_at: datetime | None = None
    ack_comment: str | None = None
    notified: bool = True
    """False while the firing severity has not been notified (it fired during a silence)."""
    version: int = 0

    @property
    def active(self) -> bool:
        """Firing or acknowledged."""
        return self.state in ACTIVE


@dataclass(frozen=True)
class Event:
    """One transition, recorded in the alert history; ``notify`` events go to the rule's targets."""

    event_id: str
    alert_id: str | None
    kind: str
    from_state: str
    to_state: str
    severity: str | None
    value: float | None
    threshold: float | None
    at: datetime
    actor: str | None = None
    comment: str | None = None
    silenced: bool = False
    notify: bool = False


class TransitionError(ValueError):
    """A manual transition that does not apply to the current state (e.g. acknowledging a resolved alert)."""

    def __init__(self, reason: str, state: AlertState) -> None:
        self.reason = reason
        self.state = state
        super().__init__(f"{reason} (state {state.state})")


def _id(*parts: object) -> str:
    """``uuid.uuid5(_IDS, "|".join(parts)).hex``, without building a ``UUID`` (a third of the cost of an
    evaluation that changes thousands of states went into ``uuid5``)."""
    digest = bytearray(hashlib.sha1(_ID_NAMESPACE + "|".join(map(str, parts)).encode()).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x50  # version 5
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122 variant
    return digest.hex()


def _level(rule: Rule, observation: Observation, holding: str | None) -> tuple[str | None, float | None]:
    """The severity the value is at (with hysteresis for the level being held) and its threshold."""
    compare = _COMPARE[rule.comparator]
    value = observation.value
    for severity, threshold in ((CRITICAL, observation.critical), (WARNING, observation.warning)):
        if threshold is None:
            continue
        limit = threshold
        if holding in (WARNING, CRITICAL) and RANK[holding] >= RANK[severity]:
            limit = threshold - rule.clear_margin if rule.rising else threshold + rule.clear_margin
        if compare(value, limit):
            return severity, threshold
    return None, None


def breaches(rule: Rule, observation: Observation) -> bool:
    """True when a fresh (not active) subject's value crosses a threshold or has no data to alert on."""
    if observation.missing:
        return rule.no_data not in (NO_DATA_KEEP, NO_DATA_IGNORE)
    return _level(rule, observation, None)[0] is not None


def evaluate(
    rule: Rule,
    subject: str,
    observation: Observation,
    previous: AlertState,
    now: datetime,
    *,
    silenced: bool = False,
) -> tuple[AlertState, tuple[Event, ...]]:
    """The next state of one (rule, subject) and the events of the transition (none when unchanged)."""
    active = previous.active
    if observation.missing:
        if rule.no_data == NO_DATA_KEEP:
            return previous, ()
        target, threshold = (None, None) if rule.no_data == NO_DATA_IGNORE else (NO_DATA, None)
        value = None
    else:
        target, threshold = _level(rule, observation, previous.severity if active else None)
        value = observation.value
    hold = timedelta(minutes=rule.hold_minutes)

    def event(kind: str, to: AlertState, *, notify: bool = False) -> Event:
        return Event(
            event_id=_id(rule.id, subject, to.alert_id, kind, now.isoformat()),
            alert_id=to.alert_id,
            kind=kind,
            from_state=previous.state,
            to_state=to.state,
            severity=to.severity,
            value=value,
            threshold=to.threshold,
            at=now,
            silenced=silenced,
            notify=notify and not silenced,
        )

    if target is None:
        if active:
            resolved = replace(
                previous,
                state=RESOLVED,
                since=now,
                value=value,
                escalating_to=None,
                escalating_since=None,
            )
            return resolved, (event(RESOLVED_EVENT, resolved, notify=previous.notified),)
        if previous.state == PENDING:
            back = AlertState(state=OK, value=value, version=previous.version)
            return back, (event(PENDING_CANCELLED, back),)
        return previous, ()

    if not active:
        pending_since = previous.since if previous.state == PENDING and previous.since else now
        if now - pending_since >= hold:
            fired = AlertState(
                state=FIRING,
                severity=target,
                alert_id=_id(rule.id, subject, "alert", now.isoformat()),
                since=now,
                value=value,
                threshold=threshold,
                notified=not silenced,
                version=previous.version,
            )
            return fired, (event(FIRED, fired, notify=True),)
        if previous.state == PENDING:
            return replace(previous, severity=target, value=value, threshold=threshold), ()
        pending = AlertState(
            state=PENDING, severity=target, since=now, value=value, threshold=threshold, version=previous.version
        )
        return pending, (event(PENDING_STARTED, pending),)

    current = previous.severity or NO_DATA
    if RANK[target] > RANK[current]:
        since = previous.escalating_since if previous.escalating_to and previous.escalating_since else now
        if now - since >= hold:
            escalated = replace(
                previous,
                state=FIRING,
                severity=target,
                since=now,
                value=value,
                threshold=threshold,
                escalating_to=None,
                escalating_since=None,
                acked_by=None,
                acked_at=None,
                ack_comment=None,
                notified=not silenced,
            )
            return escalated, (event(ESCALATED, escalated, notify=True),)
        return replace(previous, value=value, escalating_to=target, escalating_since=since), ()
    if RANK[target] < RANK[current]:
        lowered = replace(
            previous, severity=target, value=value, threshold=threshold, escalating_to=None, escalating_since=None
        )
        return lowered, (event(DEESCALATED, lowered),)
    steady = replace(previous, value=value, threshold=threshold, escalating_to=None, escalating_since=None)
    if previous.state == FIRING and not previous.notified and not silenced:
        steady = replace(steady, notified=True)
        return steady, (event(UNMUTED, steady, notify=True),)
    return steady, ()


def acknowledge(
    previous: AlertState, actor: str, comment: str, now: datetime, *, rule_id: int | None, subject: str
) -> tuple[AlertState, Event]:
    """An operator takes a firing alert in hand; ``TransitionError`` when it is not firing."""
    if previous.state == ACKNOWLEDGED:
        raise TransitionError("already_acknowledged", previous)
    if previous.state != FIRING:
        raise TransitionError("not_firing", previous)
    acked = replace(previous, state=ACKNOWLEDGED, acked_by=actor, acked_at=now, ack_comment=comment)
    event = Event(
        event_id=_id(rule_id, subject, previous.alert_id, ACKNOWLEDGED_EVENT, now.isoformat(), actor),
        alert_id=previous.alert_id,
        kind=ACKNOWLEDGED_EVENT,
        from_state=previous.state,
        to_state=ACKNOWLEDGED,
        severity=previous.severity,
        value=previous.value,
        threshold=previous.threshold,
        at=now,
        actor=actor,
        comment=comment,
    )
    return acked, event


@dataclass(frozen=True)
class Change:
    """One subject whose state changed at an evaluation, with the events of the change."""

    subject: str
    previous: AlertState
    state: AlertState
    events: tuple[Event, ...]


def evaluate_rule(
    rule: Rule,
    observations: Mapping[str, Observation],
    previous: Mapping[str, AlertState],
    now: datetime,
    *,
    silenced: Callable[[str], bool] = lambda _subject: False,
) -> list[Change]:
    """Every subject of one rule: the changes only (subjects that stay ``ok`` cost one comparison).

    Subjects with a stored state but no observation any more (an entity removed from the reference
    table) are evaluated as having no data.
    """
    changes = []
    subjects: Iterable[str] = observations.keys() | previous.keys() if previous else observations.keys()
    fresh = AlertState()
    for subject in subjects:
        observation = observations.get(subject) or Observation(None)
        before = previous.get(subject, fresh)
        if before.state in (OK, RESOLVED) and not breaches(rule, observation):
            continue
        after, events = evaluate(rule, subject, observation, before, now, silenced=silenced(subject))
        if after != before:
            changes.append(Change(subject, before, after, events))
    return changes
