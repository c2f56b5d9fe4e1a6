"""KPI values per alert subject from a snapshot, and the 7-day replay behind the rules page's preview.

Per ward, per entity and for the province the values come from ``grouped.GroupedValues``: the
snapshot's frames integer-coded once, every KPI a few numpy passes (one ``compute_kpi`` per ward
would cost ~45 ms per KPI over 40 wards; a pandas groupby per KPI and grouping 2–10 ms).
``tests/test_alert_values.py`` checks that they equal ``data_sources.kpis.compute_kpi`` for every
configured KPI, ward and entity, and the province value is the figure the overview tile shows. KPI
kinds ``grouped`` does not know fall back to ``compute_kpi`` (province) and ``kpi_by_ward`` (per
ward) and cannot be watched per entity (validation refuses it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
import pandas as pd

from config.datasets import Dataset, Kpi
from data_sources.alerts.evaluate import (
    FIRED,
    PROVINCE_SUBJECT,
    RANK,
    RESOLVED_EVENT,
    AlertState,
    Observation,
    entity_subject,
    evaluate,
    subject_parts,
    ward_subject,
)
from data_sources.alerts.grouped import GROUPED_KINDS, HOURLY_ENTITY, PER_ENTITY, PER_WARD, GroupedValues
from data_sources.alerts.model import (
    EACH_ENTITY,
    EACH_WARD,
    NO_DATA_ALERT,
    PROVINCE,
    WARD,
    Rule,
    Threshold,
)
from data_sources.clock import from_local_naive
from data_sources.kpis import (
    LATEST_HORIZON_FACTOR,
    compute_kpi,
    kpi_by_ward,
    kpi_measure_agg,
    window_start,
    with_wards,
)
from data_sources.kpis import (
    WARD as WARD_COLUMN,
)
from data_sources.poller import (
    BUCKET,
    ENTITY,
    UNIT,
    bucket_start,
    to_epoch,
)
from data_sources.snapshots import Snapshot

KNOWN_KINDS = tuple(kind for kind in GROUPED_KINDS if kind != "median")
"""Kinds watched per entity and replayed by the preview; medians have no hourly history, so the preview
shows only their current value (as for the state kinds)."""
WINDOWED_KINDS = ("sum", "ratio", "mean")
ZERO_WHEN_EMPTY = ("sum", "state")
"""Kinds whose value over no rows is 0 (a count of nothing), not "no value"."""
HOUR = 3600
PREVIEW_DAYS = 7
ENTITY_PREVIEW_HOURS = 48
"""Without ``hourly_entity`` the snapshot keeps per-entity detail only in its 48-hour fine buckets."""


def _selected(frame: pd.DataFrame, crosswalk: dict[str, str]) -> pd.DataFrame:
    """Rows with their current ward; rows of unknown unit codes left out (as in every figure)."""
    if frame.empty or UNIT not in frame:
        return frame.iloc[0:0].assign(**{WARD_COLUMN: pd.Series(dtype="string")})
    frame = with_wards(frame, crosswalk)
    return frame.loc[frame[WARD_COLUMN].notna()]


def _ratio(numerator: pd.Series, denominator: pd.Series, scale: float) -> pd.Series:
    result = numerator.astype("float64") / denominator.astype("float64").where(denominator != 0)
    return result.replace([np.inf, -np.inf], np.nan) * scale


def entity_table(snapshot: Snapshot, crosswalk: dict[str, str]) -> pd.DataFrame:
    """Entities (index: id) with ``name``, current ``ward`` and their reference attributes."""
    entities = snapshot.frame("entities")
    if entities.empty or "entity" not in entities:
        seen = snapshot.frame("recent")
        if seen.empty or ENTITY not in seen:
            return pd.DataFrame(columns=["name", "ward"])
        first = seen.drop_duplicates(ENTITY).set_index(ENTITY)
        return pd.DataFrame({"name": first.index.astype(str), "ward": first[UNIT].map(crosswalk)}, index=first.index)
    entities = entities.drop_duplicates("entity").set_index("entity")
    if UNIT in entities:
        entities["ward"] = entities[UNIT].astype("string").map(crosswalk)
    else:
        entities["ward"] = None
    return entities


@dataclass
class SubjectValues:
    """Lazily computed KPI values of one snapshot, shared by every rule evaluated on it."""

    dataset: Dataset
    snapshot: Snapshot
    now: datetime
    crosswalk: dict[str, str]
    ward_codes: Sequence[str]
    _cache: dict[tuple[str, str], Any] = field(default_factory=dict)
    _entities: pd.DataFrame | None = None
    _grouped: GroupedValues | None = None

    @property
    def grouped(self) -> GroupedValues:
        """The snapshot's frames coded once, serving every grouped KPI per ward, entity and province."""
        if self._grouped is None:
            self._grouped = GroupedValues(self.dataset, self.snapshot, self.now, self.crosswalk, self.ward_codes)
        return self._grouped

    def province(self, kpi: Kpi) -> float | None:
        """The province-wide value (equal to ``compute_kpi``, the overview's figure)."""
        key = (kpi.id, PROVINCE)
        if key not in self._cache:
            if kpi.kind in GROUPED_KINDS:
                self._cache[key] = self.grouped.province(kpi)
            else:
                self._cache[key] = compute_kpi(self.dataset, kpi, self.snapshot, self.now, self.crosswalk).value
        return self._cache[key]

    def by_ward(self, kpi: Kpi) -> dict[str, float | None]:
        """Every current ward's value (None: no value; 0 for counts of nothing)."""
        key = (kpi.id, "ward")
        if key not in self._cache:
            if kpi.kind in GROUPED_KINDS:
                found = self.grouped.values(kpi, PER_WARD)[1].values[: len(self.ward_codes)]
                self._cache[key] = dict(zip(map(str, self.ward_codes), _numbers(found), strict=True))
            else:
                series = kpi_by_ward(self.dataset, kpi, self.snapshot, self.now, self.crosswalk, list(self.ward_codes))
                self._cache[key] = _complete(series, self.ward_codes, kpi.kind)
        return self._cache[key]

    def array(self, kpi: Kpi, per: str) -> tuple[list[str], np.ndarray]:
        """(subject keys, values with NaN for no value) per ward or per entity, for vectorised checks."""
        key = (kpi.id, f"array:{per}")
        if key not in self._cache:
            found = self.by_ward(kpi) if per == "ward" else self.by_entity(kpi)
            prefix = "ward:" if per == "ward" else "entity:"
            values = np.array([np.nan if v is None else v for v in found.values()], dtype="float64")
            self._cache[key] = ([prefix + code for code in found], values)
        return self._cache[key]

    def attribute_array(self, attribute: str, entities: Sequence[str]) -> np.ndarray:
        """An entity attribute as numbers (NaN where missing), aligned with ``entities``."""
        key = (attribute, "attribute")
        if key not in self._cache:
            table = self.entities
            column = (
                pd.to_numeric(table[attribute], errors="coerce")
                if attribute in table
                else pd.Series(np.nan, index=table.index)
            )
            self._cache[key] = column
        column = self._cache[key]
        return column.reindex([e.removeprefix("entity:") for e in entities]).to_numpy(dtype="float64")

    def by_entity(self, kpi: Kpi) -> dict[str, float | None]:
        """Every known entity's value: the entities of the reference table, then any other entity with
        rows that count (7d/30d windows read the per-entity hourly rollup, as the dashboards do)."""
        key = (kpi.id, "entity")
        if key not in self._cache:
            if kpi.kind not in KNOWN_KINDS:
                self._cache[key] = {}
            else:
                names, found = self.grouped.values(kpi, PER_ENTITY)
                default = 0.0 if kpi.kind in ZERO_WHEN_EMPTY else None
                values = dict.fromkeys(self.entities.index.astype(str), default)
                for name, value, present in zip(names, _numbers(found.values), found.present, strict=True):
                    if present or name in values:
                        values[name] = value
                self._cache[key] = values
        return self._cache[key]

    @property
    def entities(self) -> pd.DataFrame:
        """The dataset's entities with their ward and attributes."""
        if self._entities is None:
            self._entities = entity_table(self.snapshot, self.crosswalk)
        return self._entities

    def _entity_column(self, column: str) -> dict[Any, Any]:
        """One column of the entity table as a dict (a pandas lookup per subject costs ~10 µs)."""
        key = (column, "entity column")
        if key not in self._cache:
            table = self.entities
            self._cache[key] = dict(zip(table.index, table[column], strict=True)) if column in table else {}
        return self._cache[key]

    def entity_ward(self, entity: str) -> str | None:
        """The current ward an entity stands in."""
        ward = self._entity_column("ward").get(entity)
        return None if ward is None or pd.isna(ward) else str(ward)

    def entity_name(self, entity: str) -> str:
        """The entity's display name (its id when unknown)."""
        names = self._entity_column("name")
        return str(names[entity]) if entity in names else entity

    def attributes(self, entity: str) -> Mapping[str, Any]:
        """The entity's reference attributes."""
        key = (entity, "attributes")
        if key not in self._cache:
            self._cache[key] = self.entities.loc[entity].to_dict() if entity in self.entities.index else {}
        return self._cache[key]


def _complete(series: pd.Series, subjects: Sequence[str], kind: str) -> dict[str, float | None]:
    default = 0.0 if kind in ZERO_WHEN_EMPTY else None
    values: dict[str, float | None] = {}
    lookup = {str(k): v for k, v in series.items()}
    for subject in subjects:
        value = lookup.get(str(subject), default)
        values[str(subject)] = None if value is None or pd.isna(value) else float(value)
    return values


def _numbers(values: np.ndarray) -> list[float | None]:
    """Floats, None for NaN."""
    return [None if np.isnan(v) else float(v) for v in values.tolist()]


def _fixed(threshold: Threshold | None) -> float | None:
    return threshold.value if threshold is not None and threshold.attribute is None else None


def observations(rule: Rule, kpi: Kpi, values: SubjectValues, *, stale: bool) -> dict[str, Observation]:
    """What the rule sees per subject at this poll."""
    warning, critical = _fixed(rule.warning), _fixed(rule.critical)
    if rule.scope == PROVINCE:
        return {PROVINCE_SUBJECT: Observation(values.province(kpi), warning, critical, stale)}
    if rule.scope == WARD:
        value = values.by_ward(kpi).get(rule.ward or "")
        return {ward_subject(rule.ward or ""): Observation(value, warning, critical, stale)}
    if rule.scope == EACH_WARD:
        return {
            ward_subject(code): Observation(value, warning, critical, stale)
            for code, value in values.by_ward(kpi).items()
        }
    found = {}
    by_attribute = rule.uses_attributes
    for entity, value in values.by_entity(kpi).items():
        if by_attribute:
            attributes = values.attributes(entity)
            w = rule.warning.resolve(attributes) if rule.warning else None
            c = rule.critical.resolve(attributes) if rule.critical else None
        else:
            w, c = warning, critical
        found[entity_subject(entity)] = Observation(value, w, c, stale)
    return found


_VECTOR_COMPARE = {">": np.greater, ">=": np.greater_equal, "<": np.less, "<=": np.less_equal}


def candidate_subjects(rule: Rule, kpi: Kpi, values: SubjectValues, *, stale: bool) -> list[str]:
    """Subjects that breach a threshold now, or lack data on an alert-on-no-data rule (vectorised).

    Together with the subjects that already have a pending or active state, these are the only ones
    whose state can change; every other subject stays ``ok``.
    """
    if rule.scope in (PROVINCE, WARD):
        return list(observations(rule, kpi, values, stale=stale))
    subjects, numbers = values.array(kpi, "ward" if rule.scope == EACH_WARD else "entity")
    if stale:
        return list(subjects) if rule.no_data == NO_DATA_ALERT else []
    compare = _VECTOR_COMPARE[rule.comparator]
    hit = np.zeros(len(subjects), dtype=bool)
    for _severity, threshold in rule.levels:  # comparisons with NaN are False, without a warning
        limit = values.attribute_array(threshold.attribute, subjects) if threshold.attribute else threshold.value
        hit |= compare(numbers, limit)
    if rule.no_data == NO_DATA_ALERT:
        hit |= np.isnan(numbers)
    return [subjects[i] for i in np.flatnonzero(hit)]


def observations_of(
    rule: Rule, kpi: Kpi, values: SubjectValues, subjects: Iterable[str], *, stale: bool
) -> dict[str, Observation]:
    """Observations of only these subjects (ward or entity keys)."""
    warning, critical = _fixed(rule.warning), _fixed(rule.critical)
    by_attribute = rule.uses_attributes
    found = {}
    for subject in subjects:
        kind, code = subject_parts(subject)
        if kind == "ward":
            value = values.by_ward(kpi).get(code or "")
            found[subject] = Observation(value, warning, critical, stale)
        elif kind == "entity":
            value = values.by_entity(kpi).get(code or "")
            w, c = observations_for_subject(rule, values, subject) if by_attribute else (warning, critical)
            found[subject] = Observation(value, w, c, stale)
        else:
            found[subject] = Observation(values.province(kpi), warning, critical, stale)
    return found


def subject_count(rule: Rule, kpi: Kpi, values: SubjectValues) -> int:
    """How many subjects the rule watches."""
    if rule.scope in (PROVINCE, WARD):
        return 1
    return len(values.array(kpi, "ward" if rule.scope == EACH_WARD else "entity")[0])


def subject_ward(subject: str, values: SubjectValues | None) -> str | None:
    """The current ward a subject belongs to (None for the province)."""
    kind, code = subject_parts(subject)
    if kind == "ward":
        return code
    if kind == "entity" and values is not None and code:
        return values.entity_ward(code)
    return None


# --- preview: replay over the snapshot's history --------------------------------------------------


@dataclass(frozen=True)
class Episode:
    """One alert the rule would have raised in the replay."""

    subject: str
    fired_at: datetime
    resolved_at: datetime | None
    severity: str
    peak: float | None


@dataclass(frozen=True)
class Preview:
    """The replay: hourly values per subject, the alerts they would have raised, and caveats."""

    times: list[datetime]
    series: dict[str, list[float | None]]
    episodes: list[Episode]
    notes: tuple[str, ...] = ()
    warning: dict[str, float | None] = field(default_factory=dict)
    critical: dict[str, float | None] = field(default_factory=dict)


def _replay_frame(
    dataset: Dataset, snapshot: Snapshot, crosswalk: dict[str, str], per_entity: bool
) -> tuple[pd.DataFrame, bool]:
    """Hourly rows with their ward (and entity when the replay is per entity), and whether they reach
    back 35 days (False: per entity without ``hourly_entity``, only the 48 hours of fine buckets)."""
    if not per_entity:
        return _selected(snapshot.frame("hourly"), crosswalk), True
    if HOURLY_ENTITY in snapshot.frames:  # every hour of the hourly tier, the fine period's included
        return _selected(snapshot.frame(HOURLY_ENTITY), crosswalk), True
    frame = _selected(snapshot.frame("recent"), crosswalk)
    if frame.empty or ENTITY not in frame:
        return frame, False
    frame = frame.assign(**{BUCKET: (frame[BUCKET] // HOUR) * HOUR})
    how = {m.name: ("sum" if m.agg in ("count", "sum") else m.agg) for m in dataset.measures if m.name in frame}
    return frame.groupby([BUCKET, WARD_COLUMN, ENTITY], dropna=False).agg(how).reset_index(), False


def _subject_column(frame: pd.DataFrame, rule: Rule) -> pd.Series:
    if rule.scope == PROVINCE:
        return pd.Series(PROVINCE_SUBJECT, index=frame.index)
    if rule.scope == EACH_ENTITY:
        return "entity:" + frame[ENTITY].astype(str)
    return "ward:" + frame[WARD_COLUMN].astype(str)


def _hourly_values(
    rule: Rule, dataset: Dataset, kpi: Kpi, frame: pd.DataFrame, hours: np.ndarray, subjects: list[str]
) -> pd.DataFrame:
    """A (hour x subject) table of the KPI as it stood at the end of each hour."""
    measures = list(kpi.measures)
    if frame.empty:
        return pd.DataFrame(np.nan, index=hours, columns=subjects)
    frame = frame.assign(_subject=_subject_column(frame, rule))
    if rule.scope == WARD:
        frame = frame.loc[frame["_subject"] == ward_subject(rule.ward or "")]
    if kpi.kind in ("latest_ratio", "latest_max"):
        horizon_hours = max(
            1, int(np.ceil(LATEST_HORIZON_FACTOR * max(dataset.expected_seconds, dataset.bucket_seconds) / HOUR))
        )
        if kpi.kind == "latest_ratio":
            sums = frame.groupby([BUCKET, "_subject"])[measures].sum()
            per = _ratio(sums[measures[0]], sums[measures[1]], kpi.scale)
        else:
            inner = [BUCKET, "_subject", ENTITY] if ENTITY in frame else [BUCKET, "_subject", UNIT]
            how = "sum" if len(measures) == 2 else kpi_measure_agg(dataset, measures[0])
            agg = frame.groupby(inner)[measures].agg(how)
            raw = agg[measures[0]] / agg[measures[1]] if len(measures) == 2 else agg[measures[0]]
            per = raw.replace([np.inf, -np.inf], np.nan).groupby(level=[0, 1]).max() * kpi.scale
        table = per.unstack("_subject").reindex(index=hours, columns=subjects)
        return table.ffill(limit=horizon_hours - 1) if horizon_hours > 1 else table
    # windowed sums, ratios and means: cumulative sums over whole hours
    first = int(frame[BUCKET].min())
    index = np.arange(min(first, int(hours[0])), int(hours[-1]) + HOUR, HOUR)
    sums = {
        m: frame.groupby([BUCKET, "_subject"])[m].sum().unstack("_subject").reindex(index=index, columns=subjects)
        if m in frame
        else pd.DataFrame(0.0, index=index, columns=subjects)
        for m in measures
    }
    cumulative = {m: table.fillna(0.0).cumsum() for m, table in sums.items()}
    rows = []
    for hour in hours:
        moment = from_local_naive(bucket_start(int(hour) + HOUR - 1))
        start = window_start(kpi.window, moment, HOUR)
        start = int(index[0]) if start is None else max(int(start), int(index[0]))
        window_sums = []
        for m in measures:
            table = cumulative[m]
            before = table.loc[start - HOUR] if start - HOUR >= index[0] else 0.0
            window_sums.append(table.loc[int(hour)] - before)
        if kpi.kind == "sum":
            rows.append(window_sums[0] * kpi.scale)
        else:
            rows.append(_ratio(window_sums[0], window_sums[1], kpi.scale))
    return pd.DataFrame(rows, index=hours, columns=subjects)


def _window_reaches_before_history(kpi: Kpi, snapshot: Snapshot, first_hour: int) -> bool:
    """True when the KPI's window at the replay's first hour starts before the hourly tier (35 days):
    a 30-day window replayed 7 days back, whose first hours then count only the hours kept."""
    if kpi.kind not in WINDOWED_KINDS or kpi.window in (None, "today", "latest"):
        return False
    hourly_from = (snapshot.meta.get("tiers") or {}).get("hourly_from")
    if hourly_from is None:
        return False
    start = window_start(kpi.window, from_local_naive(bucket_start(first_hour + HOUR - 1)), HOUR)
    return start is None or start < int(hourly_from)


def preview(
    rule: Rule,
    dataset: Dataset,
    kpi: Kpi,
    snapshot: Snapshot,
    now: datetime,
    crosswalk: dict[str, str],
    ward_codes: Sequence[str],
    *,
    days: int = PREVIEW_DAYS,
) -> Preview:
    """Replay the rule hour by hour over the snapshot's history, with the same lifecycle as the poller."""
    notes: list[str] = ["hourly"]
    per_entity = rule.scope == EACH_ENTITY
    values = SubjectValues(dataset, snapshot, now, crosswalk, ward_codes)
    if rule.scope == PROVINCE:
        subjects = [PROVINCE_SUBJECT]
    elif rule.scope == WARD:
        subjects = [ward_subject(rule.ward or "")]
    elif rule.scope == EACH_WARD:
        subjects = [ward_subject(code) for code in ward_codes]
    else:
        subjects = [entity_subject(e) for e in values.by_entity(kpi)]
    thresholds = {subject: observations_for_subject(rule, values, subject) for subject in subjects}
    now_hour = (to_epoch(now) // HOUR) * HOUR
    if kpi.kind in ("state", "state_ratio") or kpi.kind not in KNOWN_KINDS:
        notes = ["no_history"]
        current = observations(rule, kpi, values, stale=False)
        table = pd.DataFrame(
            [[current[s].value if s in current else None for s in subjects]], index=[now_hour], columns=subjects
        )
        times = [now]
    else:
        frame, full_history = _replay_frame(dataset, snapshot, crosswalk, per_entity)
        span_hours = days * 24 if full_history else min(days * 24, ENTITY_PREVIEW_HOURS)
        if not full_history:
            notes.append("entity_48h")
        hours = np.arange(now_hour - (span_hours - 1) * HOUR, now_hour + HOUR, HOUR)
        if _window_reaches_before_history(kpi, snapshot, int(hours[0])):
            notes.append("window_partial")
        table = _hourly_values(rule, dataset, kpi, frame, hours, subjects)
        times = [from_local_naive(bucket_start(int(h) + HOUR - 1)) for h in table.index]
    episodes: list[Episode] = []
    for subject in subjects:
        state = AlertState()
        warning, critical = thresholds[subject]
        open_episode: dict[str, Any] | None = None
        column = table[subject] if subject in table else pd.Series(np.nan, index=table.index)
        for moment, raw in zip(times, column.tolist(), strict=True):
            value = None if raw is None or pd.isna(raw) else float(raw)
            state, events = evaluate(rule, subject, Observation(value, warning, critical), state, moment)
            if open_episode is not None:
                if value is not None and open_episode["peak"] is not None:
                    worse = value > open_episode["peak"] if rule.rising else value < open_episode["peak"]
                    open_episode["peak"] = value if worse else open_episode["peak"]
                if state.severity and RANK[state.severity] > RANK[open_episode["severity"]]:
                    open_episode["severity"] = state.severity
            for event in events:
                if event.kind == FIRED:
                    open_episode = {"fired_at": moment, "severity": state.severity, "peak": value}
                elif event.kind == RESOLVED_EVENT and open_episode is not None:
                    episodes.append(
                        Episode(
                            subject, open_episode["fired_at"], moment, open_episode["severity"], open_episode["peak"]
                        )
                    )
                    open_episode = None
        if open_episode is not None:
            episodes.append(
                Episode(subject, open_episode["fired_at"], None, open_episode["severity"], open_episode["peak"])
            )
    series = {s: [None if pd.isna(v) else float(v) for v in table[s].tolist()] for s in subjects if s in table}
    return Preview(
        times=times,
        series=series,
        episodes=sorted(episodes, key=lambda e: (e.fired_at, e.subject)),
        notes=tuple(notes),
        warning={s: thresholds[s][0] for s in subjects},
        critical={s: thresholds[s][1] for s in subjects},
    )


def observations_for_subject(rule: Rule, values: SubjectValues, subject: str) -> tuple[float | None, float | None]:
    """(warning, critical) numbers for one subject (entity attributes resolved)."""
    kind, code = subject_parts(subject)
    attributes = values.attributes(code) if kind == "entity" and code else {}
    warning = rule.warning.resolve(attributes) if rule.warning else None
    critical = rule.critical.resolve(attributes) if rule.critical else None
    return warning, critical


def is_stale(dataset: Dataset, snapshot: Snapshot | None, now: datetime, *, poll_factor: float = 2) -> bool:
    """True when the dataset has had no successful poll for ``poll_factor`` poll intervals.

    The same rule as the freshness badge. A sensor that stops reporting is caught per subject
    instead: its latest value falls out of the KPI's "now" horizon and the subject has no value.
    """
    if snapshot is None:
        return True
    polled_at = snapshot.meta.get("polled_at")
    if not polled_at:
        return True
    polled = datetime.fromisoformat(polled_at) if isinstance(polled_at, str) else polled_at
    if polled.tzinfo is None:
        polled = from_local_naive(polled)
    return now - polled > timedelta(seconds=poll_factor * dataset.poll_seconds)
