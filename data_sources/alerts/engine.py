"""Alert evaluation in the poller process, right after each poll, from the snapshot just published.

``AlertEngine.after_poll`` is a ``data_sources.scheduler`` after-poll hook: it evaluates the enabled
rules of the polled dataset over the dataset's newest snapshot (the one the dashboards read), writes
the changed states and their events conditionally, and queues notifications in the outbox. It never
sends anything itself, so a slow receiver cannot hold a poll up.

Polls that fail do not call the hook, so ``sweep`` (a job of its own in the poller) evaluates the
rules of datasets that have gone stale, which is when the rules' no-data behaviour applies.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, Engine

from config.datasets import DatasetCatalogue
from data_sources.alerts.evaluate import Change, evaluate_rule
from data_sources.alerts.model import Rule, evaluation_problems
from data_sources.alerts.store import (
    active_silences,
    apply_batch,
    is_silenced,
    list_rules,
    load_states,
    rules_fingerprint,
)
from data_sources.alerts.values import (
    SubjectValues,
    candidate_subjects,
    is_stale,
    observations_of,
    subject_count,
    subject_ward,
)
from data_sources.clock import Clock, system_clock
from data_sources.snapshots import Snapshot, SnapshotStore

log = logging.getLogger(__name__)

CONFLICT_RETRIES = 3


def never_silenced(_subject: str) -> bool:
    """No silence in force: nothing to look up per subject."""
    return False


@dataclass
class EvaluationReport:
    """What one evaluation of a dataset's rules did."""

    dataset: str
    rules: int = 0
    subjects: int = 0
    changes: int = 0
    events: int = 0
    conflicts_retried: int = 0
    stale: bool = False
    invalid_rules: list[int] = field(default_factory=list)


class AlertEngine:
    """Evaluates rules after polls; one per poller process."""

    def __init__(
        self,
        app_db: Engine,
        store: SnapshotStore,
        catalogue: DatasetCatalogue,
        crosswalk: dict[str, str],
        ward_codes: Sequence[str],
        clock: Clock = system_clock,
    ) -> None:
        self.app_db = app_db
        self.store = store
        self.catalogue = catalogue
        self.crosswalk = crosswalk
        self.ward_codes = list(ward_codes)
        self.clock = clock
        self._warned: set[tuple[int, int]] = set()
        self._checked: dict[tuple[int, int], bool] = {}
        self._rules: dict[str, tuple[tuple, list[Rule]]] = {}

    def after_poll(self, dataset_id: str, _result: object) -> None:
        """The after-poll hook."""
        report = self.evaluate_dataset(dataset_id)
        if report.events:
            log.info("alerts for %s: %d change(s), %d event(s)", dataset_id, report.changes, report.events)

    def _usable(self, rule: Rule) -> bool:
        key = (rule.id or 0, rule.version)
        if key in self._checked:
            return self._checked[key]
        problems = evaluation_problems(rule, self.catalogue, set(self.ward_codes))
        self._checked[key] = not problems
        if problems:
            if (rule.id, rule.version) not in self._warned:
                self._warned.add((rule.id or 0, rule.version))
                log.warning("alert rule %s (%s) skipped: %s", rule.id, rule.name, problems)
            return False
        return True

    def evaluate_dataset(
        self,
        dataset_id: str,
        *,
        now: datetime | None = None,
        snapshot: Snapshot | None = None,
        rules: list[Rule] | None = None,
    ) -> EvaluationReport:
        """Evaluate every enabled rule of one dataset against its newest snapshot."""
        now = now or self.clock()
        report = EvaluationReport(dataset_id)
        try:
            dataset = self.catalogue.get(dataset_id)
        except KeyError:
            return report
        with self.app_db.connect() as connection:  # every read on one connection
            rules = rules if rules is not None else self._enabled_rules(dataset_id, connection)
            if not rules:
                return report
            usable = []
            for rule in rules:
                if self._usable(rule):
                    usable.append(rule)
                else:
                    report.invalid_rules.append(rule.id or 0)
            silences = active_silences(connection, now)
            states = load_states(connection, [r.id for r in usable if r.id is not None], live_only=True)
        snapshot = snapshot or self.store.get(dataset_id)
        report.stale = is_stale(dataset, snapshot, now)
        if snapshot is None:
            snapshot = Snapshot(dataset_id, 0, now)
        values = SubjectValues(dataset, snapshot, now, self.crosswalk, self.ward_codes)

        def silenced_for(rule: Rule) -> Callable[[str], bool]:
            if not silences:
                return never_silenced
            return lambda subject: is_silenced(silences, rule.id, subject_ward(subject, values), now)

        observed: dict[int, dict] = {}
        pending: list[tuple[Rule, list[Change]]] = []
        for rule in usable:
            kpi = dataset.kpi(rule.kpi)
            previous = states.get(rule.id, {})
            candidates = candidate_subjects(rule, kpi, values, stale=report.stale)
            seen = observations_of(rule, kpi, values, dict.fromkeys([*candidates, *previous]), stale=report.stale)
            observed[rule.id] = seen
            report.rules += 1
            report.subjects += subject_count(rule, kpi, values)
            changes = evaluate_rule(rule, seen, previous, now, silenced=silenced_for(rule))
            if changes:
                pending.append((rule, changes))

        def info(subject: str) -> tuple[str | None, str | None]:
            kind, _, code = subject.partition(":")
            return subject_ward(subject, values), values.entity_name(code) if kind == "entity" else None

        for attempt in range(CONFLICT_RETRIES + 1):
            if not pending:
                break
            with self.app_db.begin() as connection:
                retry = apply_batch(connection, [(r, dataset.sector, c) for r, c in pending], info, now)
            lost = {(r.id, c.subject) for r, cs in retry for c in cs}
            for rule, changes in pending:
                written = [c for c in changes if (rule.id, c.subject) not in lost]
                report.changes += len(written)
                report.events += sum(len(c.events) for c in written)
            if not retry or attempt == CONFLICT_RETRIES:
                if retry:
                    log.warning("alert states of %s kept changing; %d left for the next poll", dataset_id, len(retry))
                break
            report.conflicts_retried += sum(len(c) for _, c in retry)
            fresh = load_states(self.app_db, [r.id for r, _ in retry], [c.subject for _, cs in retry for c in cs])
            pending = []
            for rule, lost_changes in retry:
                subjects = {c.subject for c in lost_changes}
                changes = evaluate_rule(
                    rule,
                    {s: o for s, o in observed[rule.id].items() if s in subjects},
                    {s: st for s, st in fresh.get(rule.id, {}).items() if s in subjects},
                    now,
                    silenced=silenced_for(rule),
                )
                if changes:
                    pending.append((rule, changes))
        return report

    def _enabled_rules(self, dataset_id: str, connection: Connection) -> list[Rule]:
        """Enabled rules of a dataset, re-read only when a cheap fingerprint of the rules table changed."""
        fingerprint = rules_fingerprint(connection, dataset_id)
        cached = self._rules.get(dataset_id)
        if cached is not None and cached[0] == fingerprint:
            return cached[1]
        rules = list_rules(connection, dataset=dataset_id, enabled_only=True)
        self._rules[dataset_id] = (fingerprint, rules)
        return rules

    def sweep(self, now: datetime | None = None) -> list[EvaluationReport]:
        """Evaluate the rules of datasets whose polls have stopped succeeding (no-data behaviour)."""
        now = now or self.clock()
        reports = []
        rules = list_rules(self.app_db, enabled_only=True)
        for dataset_id in sorted({r.dataset for r in rules}):
            try:
                dataset = self.catalogue.get(dataset_id)
            except KeyError:
                continue
            snapshot = self.store.get(dataset_id)
            if is_stale(dataset, snapshot, now):
                own = [r for r in rules if r.dataset == dataset_id]
                reports.append(self.evaluate_dataset(dataset_id, now=now, snapshot=snapshot, rules=own))
        return reports
