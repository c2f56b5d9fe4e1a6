"""Sector pages as declarations, and the view state every sector page keeps in its URL."""

from __future__ import annotations

from collections.abc import Set as AbstractSet
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode

WINDOWS = ("24h", "7d", "30d")
DEFAULT_WINDOW = "7d"


@dataclass(frozen=True)
class SectorPage:
    """What one sector page shows: its KPI tiles, series, map figure and drill-down dataset."""

    sector: str
    path: str
    kpis: tuple[tuple[str, str], ...]
    series_dataset: str
    series_measures: tuple[str, ...]
    map_dataset: str
    map_kpi: str
    map_per_capita: bool
    records_dataset: str

    @property
    def datasets(self) -> tuple[str, ...]:
        """Every dataset the page reads (for refresh ticks and freshness)."""
        names = [d for d, _ in self.kpis] + [self.series_dataset, self.map_dataset, self.records_dataset]
        return tuple(dict.fromkeys(names))


SECTOR_PAGES: tuple[SectorPage, ...] = (
    SectorPage(
        sector="feedback",
        path="/feedback",
        kpis=(
            ("feedback", "new_today"),
            ("feedback", "open"),
            ("feedback", "overdue"),
            ("feedback", "resolution_rate"),
            ("feedback", "on_time_rate"),
            ("feedback", "satisfaction"),
        ),
        series_dataset="feedback",
        series_measures=("reports", "closed"),
        map_dataset="feedback",
        map_kpi="open",
        map_per_capita=True,
        records_dataset="feedback",
    ),
)


def sector_page_for(path: str) -> SectorPage | None:
    """The sector page served at ``path``."""
    return next((page for page in SECTOR_PAGES if page.path == path.rstrip("/")), None)


@dataclass(frozen=True)
class ViewState:
    """Time window and ward of a sector page, as kept in the URL query string."""

    window: str = DEFAULT_WINDOW
    ward: str | None = None

    def query(self) -> str:
        """The URL query string for this state (with the leading '?')."""
        params = {"window": self.window}
        if self.ward:
            params["ward"] = self.ward
        return "?" + urlencode(params)


def parse_view_state(search: str | None, known_wards: AbstractSet[str]) -> ViewState:
    """Read the URL query; anything unknown falls back to the default rather than failing."""
    params = parse_qs((search or "").lstrip("?"))
    window = (params.get("window") or [DEFAULT_WINDOW])[0]
    ward = (params.get("ward") or [None])[0]
    return ViewState(
        window=window if window in WINDOWS else DEFAULT_WINDOW,
        ward=ward if ward in known_wards else None,
    )
