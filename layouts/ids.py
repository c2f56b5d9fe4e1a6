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

# data health (issue 3)
HEALTH_DATASET = "health-dataset"
HEALTH_WINDOW = "health-window"
HEALTH_OVERVIEW = "health-overview"
HEALTH_DETAIL = "health-detail"
HEALTH_POLLS = "health-polls"
HEALTH_FRESHNESS = "health-freshness-store"


def kpi_tile(dataset: str, kpi: str) -> dict[str, str]:
    """Id of one KPI tile."""
    return {"type": "kpi-tile", "dataset": dataset, "kpi": kpi}


def breadcrumb_link(level: str) -> dict[str, str]:
    """Id of one breadcrumb step ("province" or a ward code)."""
    return {"type": "breadcrumb", "level": level}


def health_age(dataset, kind) -> dict:
    """Id of one freshness label on Data health (``kind`` is "source" or "poll"); ALL in callbacks."""
    return {"type": "health-age", "dataset": dataset, "kind": kind}
