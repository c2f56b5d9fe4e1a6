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
KPI_KINDS = (
    "sum",
    "ratio",
    "state",
    "state_ratio",
    "latest_ratio",
    "latest_max",
    "mean",
    "median",
    "versus",
    "entity_max",
    "entity_count",
)
BASELINES = ("same_hour_last_week", "same_time_7d_mean")
"""What a ``versus`` KPI compares with (see data_sources/kpis.py)."""
ENTITY_VALUES = ("aqi",)
"""Per-entity values computed from several measures rather than one or two (``value = "aqi"``)."""
THRESHOLD_OPERATORS = ("gt", "ge", "lt", "le")
TIME_UNITS = {"days": 86400, "hours": 3600, "minutes": 60}
AQI_POLLUTANTS = ("pm25", "pm10", "no2", "o3", "co", "so2")
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
    baseline: str | None = None
    value: str | None = None
    op: str = "gt"
    threshold: float | str | None = None

    @property
    def threshold_attribute(self) -> str | None:
        """The reference attribute an ``entity_count`` threshold names ("@alert_level_1"), if any."""
        if isinstance(self.threshold, str):
            return self.threshold[1:]
        return None


@dataclass(frozen=True)
class Duration:
    """Time from ``start`` to ``end`` of each finished record, in ``time_unit``: the input of medians.

    Records count when ``end`` lies in the KPI window and ``start`` within ``lookback`` of the poll
    (the bound that lets the query use the index on ``start``); ``where`` filters them further.
    """

    name: str
    start: str
    end: str
    time_unit: str = "days"
    lookback_seconds: int = 90 * 86400
    where: tuple[Filter, ...] = ()

    @property
    def unit_seconds(self) -> int:
        """Seconds in one ``time_unit``."""
        return TIME_UNITS[self.time_unit]


@dataclass(frozen=True)
class Positions:
    """Where rows are (lat/lon and a few columns), for map markers: either the rows one state
    measure counts (open reports) or the rows whose event time lies within ``since_seconds``."""

    state: str | None = None
    since_seconds: int | None = None
    columns: tuple[str, ...] = ()


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
    durations: tuple[Duration, ...] = ()
    aqi: dict[str, tuple[str, str]] = field(default_factory=dict)
    by_entity: bool = False
    positions: Positions | None = None

    def duration(self, name: str) -> Duration:
        """The duration declaration with this name; ``KeyError`` otherwise."""
        for duration in self.durations:
            if duration.name == name:
                return duration
        raise KeyError(f"dataset {self.id!r} has no duration {name!r}")

    natural_key: tuple[str, ...] = ()
    """Columns that identify one real-world row (sensor + time): a second row with the same values is a
    duplicate, counted on Data health and left out of every figure. Must include ``event_time``."""
    sentinels: tuple[float, ...] = DEFAULT_SENTINELS
    """Values of ``valid.*`` columns that mean "no value" (-999): counted apart from out-of-range ones."""
    statement_timeout_seconds: int = 30
    """Longest a single poll statement may run before the warehouse cancels it."""
    reconcile_seconds: int = 3600
    """How often a poll also compares every day's row count with the rollups and re-aggregates the days
    that differ (rows deleted from history, rows written with a stale watermark)."""

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
        for duration in self.durations:
            used |= {duration.start, duration.end, *(f.column for f in duration.where)}
        if self.positions is not None:
            used |= set(self.positions.columns)
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


@dataclass(frozen=True)
class _KpiContext:
    """What a KPI may refer to in its dataset."""

    measures: set[str]
    state: set[str]
    durations: set[str]
    has_entity: bool
    has_aqi: bool
    attributes: set[str]


def _kpi_measures(item: _Reader, spec: dict[str, Any], kind: str, context: _KpiContext) -> tuple[str, ...]:
    """The KPI's measure names, checked against its kind and the dataset's declarations."""
    names = spec.get("measures")
    if isinstance(names, str):
        names = [names]
    if kind in ("entity_max", "entity_count") and spec.get("value") is not None:
        if names:
            raise item.error("measures", f"a {kind} KPI takes either value or measures, not both")
        return ()
    if not isinstance(names, list) or not names:
        raise item.error("measures", "expected a measure name or a list of them")
    arity = {
        "ratio": (2,),
        "state_ratio": (2,),
        "latest_ratio": (2,),
        "mean": (2,),
        "latest_max": (1, 2),
        "versus": (1, 2),
        "entity_max": (1, 2),
        "entity_count": (1, 2),
    }
    allowed = arity.get(kind, (1,))
    if len(names) not in allowed:
        expected = " or ".join(str(n) for n in allowed)
        raise item.error("measures", f"a {kind} KPI takes {expected} measure(s), got {len(names)}")
    if kind.startswith("state"):
        pool, where = context.state, "state"
    elif kind == "median":
        pool, where = context.durations, "durations"
    else:
        pool, where = context.measures, "measures"
    for measure in names:
        if measure not in pool:
            raise item.error("measures", f"{measure!r} is not declared under {where}")
    return tuple(names)


def _kpi_extras(item: _Reader, spec: dict[str, Any], kind: str, context: _KpiContext) -> dict[str, Any]:
    """Baseline, entity value, operator and threshold: each only where the kind uses it."""
    extras: dict[str, Any] = {}
    for key, kinds in (
        ("baseline", ("versus",)),
        ("value", ("entity_max", "entity_count")),
        ("threshold", ("entity_count",)),
        ("op", ("entity_count",)),
    ):
        if key in spec and kind not in kinds:
            raise item.error(key, f"only a {' or '.join(kinds)} KPI takes {key}")
    if kind == "versus":
        extras["baseline"] = item.choice("baseline", BASELINES)
    if kind in ("entity_max", "entity_count"):
        if not context.has_entity:
            raise item.error("kind", f"a {kind} KPI needs the dataset to declare entity")
        value = spec.get("value")
        if value is not None:
            extras["value"] = item.choice("value", ENTITY_VALUES)
            if value == "aqi" and not context.has_aqi:
                raise item.error("value", "value = 'aqi' needs an aqi table on the dataset")
    if kind == "entity_count":
        extras["op"] = item.choice("op", THRESHOLD_OPERATORS, "gt")
        threshold = spec.get("threshold")
        if isinstance(threshold, bool) or not isinstance(threshold, int | float | str):
            raise item.error("threshold", "expected a number or '@<reference attribute>'")
        if isinstance(threshold, str):
            if not threshold.startswith(COLUMN_PREFIX) or threshold[1:] not in context.attributes:
                known = ", ".join(sorted(context.attributes)) or "none declared"
                raise item.error(
                    "threshold", f"{threshold!r} is not '@' + an attribute of the reference table ({known})"
                )
        else:
            threshold = float(threshold)
        extras["threshold"] = threshold
    return extras


def _kpis(reader: _Reader, context: _KpiContext) -> tuple[Kpi, ...]:
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
        names = _kpi_measures(item, spec, kind, context)
        extras = _kpi_extras(item, spec, kind, context)
        good = item.choice("good", ("up", "down"), "up")
        window = item.choice("window", WINDOWS, "all")
        if kind == "median" and window in ("all", "today"):
            raise item.error("window", "a median KPI reads a window of 24h, 7d or 30d")
        for number in ("scale", "decimals"):
            if number in spec and (isinstance(spec[number], bool) or not isinstance(spec[number], int | float)):
                raise item.error(number, f"expected a number, got {spec[number]!r}")
        kpis.append(
            Kpi(
                id=kpi_id,
                kind=kind,
                measures=names,
                window=window,
                unit=str(spec.get("unit", "")),
                good=good,
                scale=float(spec.get("scale", 1.0)),
                decimals=int(spec.get("decimals", 0)),
                **extras,
            )
        )
    return tuple(kpis)


def _durations(reader: _Reader) -> tuple[Duration, ...]:
    durations = []
    for name, spec in reader.table("durations").items():
        if not _IDENTIFIER.match(name):
            raise reader.error(f"durations.{name}", "is not a valid name")
        item = reader.child(f"durations.{name}", spec)
        unit = spec.get("time_unit", "days")
        if unit not in TIME_UNITS:
            raise item.error("time_unit", f"expected one of {', '.join(TIME_UNITS)}; got {unit!r}")
        durations.append(
            Duration(
                name=name,
                start=item.identifier("start"),
                end=item.identifier("end"),
                time_unit=unit,
                lookback_seconds=item.duration("lookback", "90d"),
                where=_filters(item),
            )
        )
    return tuple(durations)


def _aqi(reader: _Reader, measures: dict[str, Measure]) -> dict[str, tuple[str, str]]:
    """``aqi.<pollutant> = ["<sum measure>", "<count measure>"]``: hourly means for VN_AQI."""
    spec = reader.table("aqi")
    pairs: dict[str, tuple[str, str]] = {}
    for pollutant, names in spec.items():
        key = f"aqi.{pollutant}"
        if pollutant not in AQI_POLLUTANTS:
            raise reader.error(key, f"unknown pollutant; expected one of {', '.join(AQI_POLLUTANTS)}")
        if not isinstance(names, list) or len(names) != 2:
            raise reader.error(key, 'expected ["<sum measure>", "<count measure>"] giving the hourly mean')
        for name, agg in zip(names, ("sum", "count"), strict=True):
            if name not in measures:
                raise reader.error(key, f"{name!r} is not declared under measures")
            if measures[name].agg != agg:
                raise reader.error(key, f"{name!r} must be a {agg} measure, it is {measures[name].agg}")
        pairs[pollutant] = (names[0], names[1])
    if pairs and not {"pm25", "pm10"} & set(pairs):
        raise reader.error("aqi", "VN_AQI needs pm25 or pm10 (Decision 1459/QĐ-TCMT, section 2.1 b)")
    return pairs


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
    durations = _durations(reader)
    aqi = _aqi(reader, {m.name: m for m in measures})
    entity = reader.identifier("entity", required=False)
    bucket_seconds = reader.duration("bucket", "1h")
    if aqi and (entity is None or bucket_seconds != 3600):
        raise reader.error("aqi", "VN_AQI is hourly per station: the dataset needs entity and bucket = '1h'")
    by_entity = spec.get("by_entity", False)
    if not isinstance(by_entity, bool):
        raise reader.error("by_entity", f"expected true or false, got {by_entity!r}")
    if by_entity and entity is None:
        raise reader.error("by_entity", "needs the dataset to declare entity")
    positions = None
    if "positions" in spec:
        item = reader.child("positions", spec["positions"])
        state_name = spec["positions"].get("state")
        since = spec["positions"].get("since")
        if (state_name is None) == (since is None):
            raise item.error("state", "declare either state = '<state measure>' or since = '<duration>'")
        if state_name is not None and state_name not in {m.name for m in state}:
            raise item.error("state", f"{state_name!r} is not declared under state")
        if not (spec.get("latitude") and spec.get("longitude")):
            raise item.error("state", "positions need the dataset's latitude and longitude columns")
        since_seconds = item.duration("since") if since is not None else None
        positions = Positions(state_name, since_seconds, item.identifiers("columns"))
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
    context = _KpiContext(
        measures={m.name for m in measures},
        state={m.name for m in state},
        durations={d.name for d in durations},
        has_entity=entity is not None,
        has_aqi=bool(aqi),
        attributes=set(reference.attributes) if reference else set(),
    )
    kpis = _kpis(reader, context)
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
        entity=entity,
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
        durations=durations,
        aqi=aqi,
        by_entity=by_entity,
        positions=positions,
        natural_key=natural_key,
        sentinels=tuple(float(v) for v in sentinels),
        statement_timeout_seconds=reader.duration("statement_timeout", "30s"),
        reconcile_seconds=reader.duration("reconcile_every", "1h"),
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
