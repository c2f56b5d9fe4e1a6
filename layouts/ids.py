"""Every component id in the app, from one place. Pattern-matching ids are built by functions here."""

from __future__ import annotations

# shell
URL = "url"
PAGE = "page-content"
NAV = "nav"
LANGUAGE = "language-switch"
LANGUAGE_STORE = "language-store"
REFRESH = "refresh-tick"
CLOCK_TICK = "clock-tick"
VERSIONS = "snapshot-versions"
FRESHNESS_STORE = "freshness-store"
FRESHNESS_BADGE = "freshness-badge"
UNAVAILABLE = "data-unavailable"
USER_NAME = "user-name"

# sector page controls
WINDOW = "window-select"
WARD = "ward-select"
BREADCRUMB = "breadcrumb"
KPI_ROW = "kpi-row"
SERIES = "series-graph"
MAP = "ward-map"
RECORDS = "records-table"
RECORDS_TITLE = "records-title"
RECORDS_PREV = "records-prev"
RECORDS_NEXT = "records-next"
RECORDS_CURSOR = "records-cursor"
RECORDS_PAGE = "records-page-label"

# overview
OVERVIEW_TILES = "overview-tiles"


def kpi_tile(dataset: str, kpi: str) -> dict[str, str]:
    """Id of one KPI tile."""
    return {"type": "kpi-tile", "dataset": dataset, "kpi": kpi}


def breadcrumb_link(level: str) -> dict[str, str]:
    """Id of one breadcrumb step ("province" or a ward code)."""
    return {"type": "breadcrumb", "level": level}


# sector pages (issue 4): time range, league table, drill-down, record detail, panel freshness
DATE_RANGE = "date-range"
DATE_RANGE_BOX = "date-range-box"
LEAGUE = "league-table"
LEAGUE_NOTE = "league-note"
MAP_NOTE = "map-note"
MAP_DRAWN = "map-drawn"
SERIES_NOTE = "series-note"
RECORDS_DATASET = "records-dataset"
RECORDS_EXPORT = "records-export"
RECORDS_ERROR = "records-error"
RECORDS_LIST = "records-list"
RECORD_DETAIL = "record-detail"


def panel_freshness(panel, datasets) -> dict:
    """Id of a panel's own freshness label; the datasets it ages travel in the id (comma-separated).

    Pass ``dash.ALL`` for both to address every panel of the page.
    """
    joined = ",".join(datasets) if isinstance(datasets, tuple | list) else datasets
    return {"type": "panel-freshness", "panel": panel, "datasets": joined}
