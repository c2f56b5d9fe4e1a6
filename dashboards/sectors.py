"""Sector pages as declarations, and the view state every sector page keeps in its URL.

A sector page is one ``SectorPage`` value: adding a KPI tile, a series line, a marker layer or a
league-table column is one line in its spec. Ids refer to ``config/datasets.toml`` (dataset ids,
KPI ids, measure names); labels come from ``layouts/catalogue/sectors.<lang>.json``:

* ``Tile(dataset, kpi)``: a KPI tile, computed over the selected time range; ``fixed=True`` keeps
  the KPI's own window (a "cases in 7 days" tile stays 7 days whatever the range).
* ``Line(name, dataset, measure, over=None)``: a series line, the measure summed per time bucket
  (divided by ``over`` per bucket when given, e.g. average speed = speed_sum / readings); label key
  ``series.<name>``.
* ``Choropleth(dataset, kpi, per_capita=False)``: the ward colouring (per 10,000 residents when
  ``per_capita``); label key ``map.<dataset>.<kpi>``.
* ``Markers(name, dataset, value=..., colour=...)``: one marker per entity of the dataset's
  reference table (sensors, facilities, stations, gauges) at its latest value; ``colour`` names a
  colour function in ``dashboards/cards/map_layers.COLOURS`` (injectable).
* ``Points(name, dataset, state, style="markers"|"density", colour=...)``: rows matching a state
  measure (open incidents, open reports) at their own coordinates, published by the poller.
* ``league``: (dataset, kpi) columns of the ward league table (sortable, a row opens the ward).
* ``records``: datasets whose rows the drill-down lists (the first one by default).
"""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass, replace
from datetime import date, datetime, timedelta
from urllib.parse import parse_qs, urlencode

WINDOWS = ("24h", "7d", "30d", "custom")
FIXED_WINDOWS = ("24h", "7d", "30d")
CUSTOM = "custom"
DEFAULT_WINDOW = "7d"
MAX_CUSTOM_DAYS = 366
"""Longest custom range (days, both ends included)."""


@dataclass(frozen=True)
class Tile:
    """One KPI tile."""

    dataset: str
    kpi: str
    fixed: bool = False
    """Keep the KPI's own window instead of the selected time range."""


@dataclass(frozen=True)
class Line:
    """One series line: a measure per bucket, or a ratio of two measures per bucket."""

    name: str
    dataset: str
    measure: str
    over: str | None = None
    scale: float = 1.0
    axis: int = 1
    """1: left axis; 2: right axis (a measure on another scale, e.g. speed beside vehicle counts)."""


@dataclass(frozen=True)
class Choropleth:
    """The value that colours each ward."""

    dataset: str
    kpi: str
    per_capita: bool = False


@dataclass(frozen=True)
class Markers:
    """One marker per entity (sensor, facility, station, gauge) at its latest value."""

    name: str
    dataset: str
    value: str
    """A ``latest_ratio``/``latest_max`` KPI id (per entity), or a measure name (its latest value)."""
    colour: str
    """Key of a colour function in ``dashboards.cards.map_layers.COLOURS``."""


@dataclass(frozen=True)
class Points:
    """Rows matching a state measure at their own coordinates (open incidents, open reports)."""

    name: str
    dataset: str
    state: str
    style: str = "markers"
    """``markers`` (one marker per row) or ``density`` (a heat layer)."""
    colour_by: str | None = None
    """A column whose values pick marker colours (incident kind)."""


@dataclass(frozen=True)
class SectorPage:
    """What one sector page shows."""

    sector: str
    path: str
    kpis: tuple[Tile, ...]
    series: tuple[Line, ...]
    choropleth: Choropleth
    records: tuple[str, ...]
    markers: tuple[Markers | Points, ...] = ()
    league: tuple[tuple[str, str], ...] = ()
    """(dataset, KPI) columns of the ward league table; empty: the choropleth's KPI only."""

    def __post_init__(self) -> None:
        tiles = tuple(k if isinstance(k, Tile) else Tile(*k) for k in self.kpis)
        object.__setattr__(self, "kpis", tiles)
        if not self.records:
            raise ValueError(f"sector page {self.path}: declare at least one records dataset")

    @property
    def league_columns(self) -> tuple[tuple[str, str], ...]:
        """League-table columns: the declared ones, else the choropleth's KPI."""
        return self.league or ((self.choropleth.dataset, self.choropleth.kpi),)

    @property
    def datasets(self) -> tuple[str, ...]:
        """Every dataset the page reads (for refresh ticks and freshness)."""
        names = [t.dataset for t in self.kpis]
        names += [line.dataset for line in self.series]
        names += [self.choropleth.dataset, *(layer.dataset for layer in self.markers)]
        names += [d for d, _ in self.league_columns] + list(self.records)
        return tuple(dict.fromkeys(names))


SECTOR_PAGES: tuple[SectorPage, ...] = (
    SectorPage(
        sector="traffic",
        path="/traffic",
        kpis=(
            Tile("traffic_readings", "congestion_index"),
            Tile("traffic_readings", "segments_congested"),
            Tile("traffic_incidents", "open_incidents"),
            Tile("traffic_readings", "speed_vs_last_week"),
            Tile("traffic_incidents", "incidents_today"),
            Tile("traffic_readings", "vehicles_today"),
        ),
        series=(
            Line("traffic.vehicles", "traffic_readings", "vehicles"),
            Line("traffic.avg_speed", "traffic_readings", "speed_sum", over="readings", axis=2),
        ),
        choropleth=Choropleth("traffic_incidents", "incidents_today"),
        markers=(
            Markers("traffic.sensors", "traffic_readings", value="congestion_index", colour="congestion"),
            Points("traffic.incidents", "traffic_incidents", state="open", colour_by="kind"),
        ),
        league=(("traffic_incidents", "incidents_today"), ("traffic_incidents", "open_incidents")),
        records=("traffic_incidents", "traffic_readings"),
    ),
    SectorPage(
        sector="health",
        path="/health",
        kpis=(
            Tile("health_occupancy", "occupancy"),
            Tile("health_occupancy", "facilities_above_90"),
            Tile("health_occupancy", "emergency_vs_7d"),
            Tile("health_cases", "cases_7d", fixed=True),
            Tile("health_occupancy", "emergency_today"),
        ),
        series=(
            Line("health.emergency", "health_occupancy", "emergency"),
            Line("health.cases", "health_cases", "cases", axis=2),
        ),
        choropleth=Choropleth("health_cases", "cases_7d", per_capita=True),
        markers=(Markers("health.facilities", "health_occupancy", value="occupancy", colour="occupancy"),),
        league=(("health_cases", "cases_7d"), ("health_occupancy", "occupancy")),
        records=("health_cases", "health_occupancy"),
    ),
    SectorPage(
        sector="environment",
        path="/environment",
        kpis=(
            Tile("env_air", "aqi_max"),
            Tile("env_air", "stations_above_moderate"),
            Tile("env_river", "gauges_above_level1"),
            Tile("env_river", "rain_24h", fixed=True),
            Tile("env_air", "pm25_mean_24h", fixed=True),
        ),
        series=(
            Line("environment.pm25", "env_air", "pm25_sum", over="pm25_count"),
            Line("environment.rain", "env_river", "rain", axis=2),
        ),
        choropleth=Choropleth("env_air", "pm25_mean_24h"),
        markers=(
            Markers("environment.air", "env_air", value="aqi_max", colour="aqi"),
            Markers("environment.gauges", "env_river", value="level_max", colour="flood_level"),
        ),
        league=(("env_air", "pm25_mean_24h"), ("env_river", "rain_24h")),
        records=("env_air", "env_river"),
    ),
    SectorPage(
        sector="public_services",
        path="/public-services",
        kpis=(
            Tile("dossiers", "on_time_rate"),
            Tile("dossiers", "overdue_now"),
            Tile("dossiers", "online_rate"),
            Tile("dossiers", "median_processing_days"),
        ),
        series=(
            Line("public_services.received", "dossiers", "received"),
            Line("public_services.resolved", "dossiers", "resolved"),
            Line("public_services.on_time", "dossiers", "on_time"),
        ),
        choropleth=Choropleth("dossiers", "on_time_rate"),
        league=(("dossiers", "on_time_rate"), ("dossiers", "overdue_now"), ("dossiers", "online_rate")),
        records=("dossiers",),
    ),
    SectorPage(
        sector="feedback",
        path="/feedback",
        kpis=(
            Tile("feedback", "new_today"),
            Tile("feedback", "open"),
            Tile("feedback", "overdue"),
            Tile("feedback", "resolution_rate"),
            Tile("feedback", "median_resolution_days"),
            Tile("feedback", "satisfaction"),
            Tile("feedback", "on_time_rate"),
        ),
        series=(
            Line("feedback.reports", "feedback", "reports"),
            Line("feedback.closed", "feedback", "closed"),
        ),
        choropleth=Choropleth("feedback", "overdue"),
        markers=(Points("feedback.open", "feedback", state="open", style="density"),),
        league=(("feedback", "overdue"), ("feedback", "open"), ("feedback", "resolution_rate")),
        records=("feedback",),
    ),
)


def sector_page_for(path: str) -> SectorPage | None:
    """The sector page served at ``path``."""
    return next((page for page in SECTOR_PAGES if page.path == (path or "").rstrip("/")), None)


@dataclass(frozen=True)
class ViewState:
    """What a sector page shows, as kept in the URL query string (a link reproduces the view).

    ``window`` is 24h, 7d, 30d or custom; a custom range covers the Asia/Ho_Chi_Minh days
    ``start``..``end``, both included. ``records`` is the drill-down dataset (None: the page's
    first), ``record`` one record's key opened in the detail panel.
    """

    window: str = DEFAULT_WINDOW
    ward: str | None = None
    start: date | None = None
    end: date | None = None
    records: str | None = None
    record: str | None = None

    def query(self) -> str:
        """The URL query string for this state (with the leading '?')."""
        return "?" + urlencode(self.params())

    def params(self) -> dict[str, str]:
        """The URL query parameters of this state."""
        params: dict[str, str] = {"window": self.window}
        if self.window == CUSTOM and self.start and self.end:
            params["from"] = self.start.isoformat()
            params["to"] = self.end.isoformat()
        if self.ward:
            params["ward"] = self.ward
        if self.records:
            params["data"] = self.records
        if self.ward and self.record:
            params["record"] = self.record
        return params

    def with_(self, **changes) -> ViewState:
        """A copy with ``changes``; leaving a ward closes its record."""
        state = replace(self, **changes)
        if state.ward != self.ward or state.records != self.records:
            state = replace(state, record=changes.get("record"))
        return state

    def local_bounds(self, now: datetime) -> tuple[datetime, datetime | None]:
        """[start, end) of the view as naive local wall times (end None: up to now)."""
        if self.window == CUSTOM and self.start and self.end:
            return datetime.combine(self.start, datetime.min.time()), datetime.combine(
                self.end + timedelta(days=1), datetime.min.time()
            )
        seconds = {"24h": 86400, "7d": 7 * 86400, "30d": 30 * 86400}[self.window]
        return now - timedelta(seconds=seconds), None


def _parse_day(text: str | None) -> date | None:
    try:
        return date.fromisoformat(text) if text else None
    except ValueError:
        return None


def parse_view_state(
    search: str | None,
    known_wards: AbstractSet[str],
    *,
    today: date | None = None,
    records_datasets: tuple[str, ...] = (),
) -> ViewState:
    """Read the URL query; anything unknown or malformed falls back to the default rather than failing.

    A custom range needs both days, start <= end, end not after ``today`` (local) and at most
    ``MAX_CUSTOM_DAYS`` days; otherwise the default window applies.
    """
    params = parse_qs((search or "").lstrip("?"))

    def first(name: str) -> str | None:
        return (params.get(name) or [None])[0]

    window = first("window") or DEFAULT_WINDOW
    window = window if window in WINDOWS else DEFAULT_WINDOW
    start = end = None
    if window == CUSTOM:
        start, end = _parse_day(first("from")), _parse_day(first("to"))
        valid = start is not None and end is not None and start <= end
        if valid and today is not None and end > today:
            valid = False
        if valid and (end - start).days + 1 > MAX_CUSTOM_DAYS:
            valid = False
        if not valid:
            window, start, end = DEFAULT_WINDOW, None, None
    ward = first("ward")
    ward = ward if ward in known_wards else None
    records = first("data")
    records = records if records in records_datasets[1:] else None
    record = first("record") if ward else None
    if record is not None and (len(record) > 64 or not record.replace("-", "").replace("_", "").isalnum()):
        record = None
    return ViewState(window=window, ward=ward, start=start, end=end, records=records, record=record)
