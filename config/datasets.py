"""Datasets and KPIs as code: a warehouse table becomes a dashboard dataset by configuration alone.

``config/datasets.toml`` declares, per dataset, where the rows live, which column is the watermark,
how rows map to wards and entities, the additive measures the poller rolls up, the current-state
measures it recounts each poll, and the KPIs built from them. Everything is validated at start-up;
a problem stops start-up with one line naming the file and the key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from config.errors import ConfigError, read_toml

SECTORS = ("traffic", "health", "environment", "public_services", "feedback")
AGGREGATES = ("count", "sum", "min", "max")
OPERATORS = ("eq", "ne", "in", "not_in", "lt", "le", "gt", "ge", "is_null", "not_null")
KPI_KINDS = ("sum", "ratio", "state", "state_ratio", "latest_ratio", "latest_max", "mean")
WINDOWS = ("today", "24h", "7d", "30d", "all", "latest")
NOW = "now"
"""A filter value meaning "the poll's current local time", bound as a parameter."""
COLUMN_PREFIX = "@"
"""A filter value "@due_at" compares with another column of the same row."""

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_DURATION = re.compile(r"^(\d+)\s*(s|m|h|d)$")
_DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
DEFAULT_SENTINELS = (-999.0, -9999.0)

DEFAULT_FILE = Path(__file__).with_name("datasets.toml")


@dataclass(frozen=True)
class Filter:
    """``column <op> value``; ``value == "now"`` binds the poll time."""

    column: str
    op: str
    value: Any = None


@dataclass(frozen=True)
class Measure:
    """An aggregate over rows, optionally filtered: additive across buckets when count or sum."""

    name: str
    agg: str
    column: str | None = None
    where: tuple[Filter, ...] = ()


@dataclass(frozen=True)
class Kpi:
    """A figure shown on tiles and cards, built from measures over a time window."""

    id: str
    kind: str
    measures: tuple[str, ...]
    window: str = "all"
    unit: str = ""
    good: str = "up"
    scale: float = 1.0
    decimals: int = 0


@dataclass(frozen=True)
class Reference:
    """A reference table of entities (sensors, facilities) joined to readings by ``key``."""

    table: str
    key: str
    name: str
    lat: str | None = None
    lon: str | None = None
    attributes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Dataset:
    """One warehouse table or view as the dashboards see it."""

    id: str
    sector: str
    table: str
    key: str
    event_time: str
    watermark: str
    unit: str
    bucket_seconds: int
    poll_seconds: int
    expected_seconds: int
    late_window_seconds: int
    measures: tuple[Measure, ...]
    state: tuple[Measure, ...] = ()
    kpis: tuple[Kpi, ...] = ()
    entity: str | None = None
    reference: Reference | None = None
    latitude: str | None = None
    longitude: str | None = None
    required: tuple[str, ...] = ()
    valid_ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    records_columns: tuple[str, ...] = ()
    sortable: tuple[str, ...] = ()
    personal: tuple[str, ...] = ()
    headline_kpi: str | None = None
    natural_key: tuple[str, ...] = ()
    """Columns that identify one real-world row (sensor + time): a second row with the same values is a
    duplicate, counted on Data health and left out of every figure. Must include ``event_time``."""
    sentinels: tuple[float, ...] = DEFAULT_SENTINELS
    """Values of ``valid.*`` columns that mean "no value" (-999): counted apart from out-of-range ones."""
    statement_timeout_seconds: int = 30
    """Longest a single poll statement may run before the warehouse cancels it."""

    def kpi(self, kpi_id: str) -> Kpi:
        """The KPI with this id; ``KeyError`` otherwise."""
        for kpi in self.kpis:
            if kpi.id == kpi_id:
                return kpi
        raise KeyError(f"dataset {self.id!r} has no KPI {kpi_id!r}")

    @property
    def columns_used(self) -> set[str]:
        """Every column of the table this dataset reads: checked against the reflected schema."""
        used = {self.key, self.event_time, self.watermark, self.unit, *self.required, *self.records_columns}
        used |= {c for c in (self.entity, self.latitude, self.longitude) if c}
        for measure in (*self.measures, *self.state):
            used |= {f.column for f in measure.where}
            used |= {f.value[1:] for f in measure.where if isinstance(f.value, str) and f.value[:1] == "@"}
            if measure.column:
                used.add(measure.column)
        used |= set(self.valid_ranges)
        used |= set(self.natural_key)
        return used


@dataclass(frozen=True)
class DatasetCatalogue:
    """All datasets of a deployment."""

    datasets: tuple[Dataset, ...]
    path: Path

    def __iter__(self):
        return iter(self.datasets)

    def get(self, dataset_id: str) -> Dataset:
        """The dataset with this id; ``KeyError`` otherwise."""
        for dataset in self.datasets:
            if dataset.id == dataset_id:
                return dataset
        raise KeyError(f"no dataset {dataset_id!r}")

    def for_sector(self, sector: str) -> tuple[Dataset, ...]:
        """The datasets shown on one sector's pages."""
        return tuple(d for d in self.datasets if d.sector == sector)


def parse_duration(text: Any, path: Path, key: str) -> int:
    """'30s', '5m', '2h', '1d' -> seconds."""
    if isinstance(text, int) and text > 0:
        return text
    match = _DURATION.match(str(text).strip())
    if not match or int(match.group(1)) <= 0:
        raise ConfigError(path, key, f"expected a duration like '30s', '5m', '1h' or '1d', got {text!r}")
    return int(match.group(1)) * _DURATION_UNITS[match.group(2)]


class _Reader:
    """Reads one TOML table with key paths kept for error messages."""

    def __init__(self, path: Path, data: dict[str, Any], prefix: str) -> None:
        self.path = path
        self.data = data
        self.prefix = prefix

    def key(self, name: str) -> str:
        return f"{self.prefix}.{name}"

    def error(self, name: str, problem: str) -> ConfigError:
        return ConfigError(self.path, self.key(name), problem)

    def identifier(self, name: str, *, required: bool = True) -> str | None:
        value = self.data.get(name)
        if value is None:
            if required:
                raise self.error(name, "is required")
            return None
        if not isinstance(value, str) or not _IDENTIFIER.match(value):
            raise self.error(name, f"expected a table or column name (letters, digits, _), got {value!r}")
        return value

    def identifiers(self, name: str) -> tuple[str, ...]:
        values = self.data.get(name, [])
        if not isinstance(values, list):
            raise self.error(name, f"expected a list of column names, got {values!r}")
        for value in values:
            if not isinstance(value, str) or not _IDENTIFIER.match(value):
                raise self.error(name, f"{value!r} is not a column name")
        return tuple(values)

    def choice(self, name: str, choices: tuple[str, ...], default: str | None = None) -> str:
        value = self.data.get(name, default)
        if value not in choices:
            raise self.error(name, f"expected one of {', '.join(choices)}; got {value!r}")
        return value

    def duration(self, name: str, default: str | None = None) -> int:
        value = self.data.get(name, default)
        if value is None:
            raise self.error(name, "is required (a duration like '30s', '5m', '1h')")
        return parse_duration(value, self.path, self.key(name))

    def table(self, name: str) -> dict[str, Any]:
        value = self.data.get(name, {})
        if not isinstance(value, dict):
            raise self.error(name, "expected a table")
        return value

    def child(self, name: str, data: Any) -> _Reader:
        if not isinstance(data, dict):
            raise self.error(name, "expected a table")
        return _Reader(self.path, data, self.key(name))


def _filters(reader: _Reader) -> tuple[Filter, ...]:
    where = reader.table("where")
    filters = []
    for column, condition in where.items():
        key = f"where.{column}"
        if not _IDENTIFIER.match(column):
            raise reader.error(key, "is not a column name")
        if isinstance(condition, list):
            filters.append(Filter(column, "in", tuple(condition)))
        elif isinstance(condition, dict):
            if len(condition) != 1:
                raise reader.error(key, 'expected one operator, e.g. { lt = "now" }')
            op, value = next(iter(condition.items()))
            if op not in OPERATORS:
                raise reader.error(f"{key}.{op}", f"unknown operator; expected one of {', '.join(OPERATORS)}")
            if op in ("in", "not_in") and not isinstance(value, list):
                raise reader.error(f"{key}.{op}", "expected a list")
            if isinstance(value, str) and value.startswith(COLUMN_PREFIX) and not _IDENTIFIER.match(value[1:]):
                raise reader.error(f"{key}.{op}", f"{value!r} is not a column reference")
            filters.append(Filter(column, op, tuple(value) if isinstance(value, list) else value))
        else:
            filters.append(Filter(column, "eq", condition))
    return tuple(filters)


def _measures(reader: _Reader, name: str) -> tuple[Measure, ...]:
    measures = []
    for measure_name, spec in reader.table(name).items():
        if not _IDENTIFIER.match(measure_name):
            raise reader.error(f"{name}.{measure_name}", "is not a valid measure name")
        item = reader.child(f"{name}.{measure_name}", spec)
        agg = item.choice("agg", AGGREGATES)
        column = item.identifier("column", required=agg != "count")
        measures.append(Measure(measure_name, agg, column, _filters(item)))
    return tuple(measures)


def _kpis(reader: _Reader, measure_names: set[str], state_names: set[str]) -> tuple[Kpi, ...]:
    specs = reader.data.get("kpis", [])
    if not isinstance(specs, list):
        raise reader.error("kpis", "expected an array of tables ([[datasets.<id>.kpis]])")
    kpis = []
    seen: set[str] = set()
    for index, spec in enumerate(specs):
        item = reader.child(f"kpis[{index}]", spec)
        kpi_id = item.identifier("id")
        if kpi_id in seen:
            raise item.error("id", f"KPI {kpi_id!r} is declared twice")
        seen.add(kpi_id)
        kind = item.choice("kind", KPI_KINDS)
        names = spec.get("measures")
        if isinstance(names, str):
            names = [names]
        if not isinstance(names, list) or not names:
            raise item.error("measures", "expected a measure name or a list of them")
        arity = {"ratio": (2,), "state_ratio": (2,), "latest_ratio": (2,), "mean": (2,), "latest_max": (1, 2)}
        allowed = arity.get(kind, (1,))
        if len(names) not in allowed:
            expected = " or ".join(str(n) for n in allowed)
            raise item.error("measures", f"a {kind} KPI takes {expected} measure(s), got {len(names)}")
        pool = state_names if kind.startswith("state") else measure_names
        for measure in names:
            if measure not in pool:
                where = "state" if kind.startswith("state") else "measures"
                raise item.error("measures", f"{measure!r} is not declared under {where}")
        good = item.choice("good", ("up", "down"), "up")
        window = item.choice("window", WINDOWS, "all")
        kpis.append(
            Kpi(
                id=kpi_id,
                kind=kind,
                measures=tuple(names),
                window=window,
                unit=str(spec.get("unit", "")),
                good=good,
                scale=float(spec.get("scale", 1.0)),
                decimals=int(spec.get("decimals", 0)),
            )
        )
    return tuple(kpis)


def _valid_ranges(reader: _Reader) -> dict[str, tuple[float | None, float | None]]:
    ranges = {}
    for column, spec in reader.table("valid").items():
        item = reader.child(f"valid.{column}", spec)
        low, high = spec.get("min"), spec.get("max")
        for bound_name, bound in (("min", low), ("max", high)):
            if bound is not None and not isinstance(bound, int | float):
                raise item.error(bound_name, f"expected a number, got {bound!r}")
        ranges[column] = (low, high)
    return ranges


def _dataset(path: Path, dataset_id: str, spec: Any) -> Dataset:
    reader = _Reader(path, spec, f"datasets.{dataset_id}") if isinstance(spec, dict) else None
    if reader is None:
        raise ConfigError(path, f"datasets.{dataset_id}", "expected a table")
    measures = _measures(reader, "measures")
    if not measures:
        raise reader.error("measures", "declare at least one measure")
    state = _measures(reader, "state")
    kpis = _kpis(reader, {m.name for m in measures}, {m.name for m in state})
    reference = None
    if "reference" in spec:
        ref = reader.child("reference", spec["reference"])
        reference = Reference(
            table=ref.identifier("table"),
            key=ref.identifier("key"),
            name=ref.identifier("name"),
            lat=ref.identifier("lat", required=False),
            lon=ref.identifier("lon", required=False),
            attributes=ref.identifiers("attributes"),
        )
    natural_key = reader.identifiers("natural_key")
    event_time = reader.identifier("event_time")
    if natural_key and event_time not in natural_key:
        raise reader.error(
            "natural_key",
            f"must include the event_time column {event_time!r} (copies are compared within a time bucket)",
        )
    sentinels = spec.get("sentinels", list(DEFAULT_SENTINELS))
    if not isinstance(sentinels, list) or not all(isinstance(v, int | float) for v in sentinels):
        raise reader.error("sentinels", f"expected a list of numbers such as [-999], got {sentinels!r}")
    bucket_seconds = reader.duration("bucket", "1h")
    if 86400 % bucket_seconds or (3600 % bucket_seconds and bucket_seconds % 3600):
        raise reader.error("bucket", "must divide an hour (1m, 5m, 15m, 1h) or be whole hours dividing a day (2h, 6h)")
    headline = spec.get("headline_kpi")
    if headline is not None and headline not in {k.id for k in kpis}:
        raise reader.error("headline_kpi", f"{headline!r} is not one of this dataset's KPIs")
    return Dataset(
        id=dataset_id,
        sector=reader.choice("sector", SECTORS),
        table=reader.identifier("table"),
        key=reader.identifier("key"),
        event_time=event_time,
        watermark=reader.identifier("watermark"),
        unit=reader.identifier("unit"),
        entity=reader.identifier("entity", required=False),
        reference=reference,
        latitude=reader.identifier("latitude", required=False),
        longitude=reader.identifier("longitude", required=False),
        bucket_seconds=bucket_seconds,
        poll_seconds=reader.duration("poll_every", "30s"),
        expected_seconds=reader.duration("expected_every", "5m"),
        late_window_seconds=reader.duration("late_window", "15m"),
        measures=measures,
        state=state,
        kpis=kpis,
        required=reader.identifiers("required"),
        valid_ranges=_valid_ranges(reader),
        records_columns=reader.identifiers("records_columns"),
        sortable=reader.identifiers("sortable"),
        personal=reader.identifiers("personal"),
        headline_kpi=headline,
        natural_key=natural_key,
        sentinels=tuple(float(v) for v in sentinels),
        statement_timeout_seconds=reader.duration("statement_timeout", "30s"),
    )


def load_datasets(path: Path | str = DEFAULT_FILE) -> DatasetCatalogue:
    """Read and validate the dataset catalogue; ``ConfigError`` names the file and key of a problem."""
    path = Path(path)
    data = read_toml(path)
    datasets_spec = data.get("datasets")
    if not isinstance(datasets_spec, dict) or not datasets_spec:
        raise ConfigError(path, "datasets", "declare at least one [datasets.<id>] table")
    datasets = []
    for dataset_id, spec in datasets_spec.items():
        if not _IDENTIFIER.match(dataset_id):
            raise ConfigError(path, f"datasets.{dataset_id}", "dataset ids are letters, digits and _")
        datasets.append(_dataset(path, dataset_id, spec))
    return DatasetCatalogue(tuple(datasets), path)
