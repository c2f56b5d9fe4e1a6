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
LOGOUT = "logout-button"

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

# admin: users and the audit log (dashboards/admin.py)
ADMIN_USERS_TABLE = "admin-users-table"
ADMIN_BLOCKS = "admin-blocks"
ADMIN_CREATE_USERNAME = "admin-create-username"
ADMIN_CREATE_NAME = "admin-create-name"
ADMIN_CREATE_ROLE = "admin-create-role"
ADMIN_CREATE_SECTORS = "admin-create-sectors"
ADMIN_CREATE_WARDS = "admin-create-wards"
ADMIN_CREATE_PASSWORD = "admin-create-password"
ADMIN_CREATE_SUBMIT = "admin-create-submit"
ADMIN_CREATE_MESSAGE = "admin-create-message"
ADMIN_CREATE_DONE = "admin-create-done"
ADMIN_EDIT_USER = "admin-edit-user"
ADMIN_EDIT_STATUS = "admin-edit-status"
ADMIN_EDIT_NAME = "admin-edit-name"
ADMIN_EDIT_ROLE = "admin-edit-role"
ADMIN_EDIT_SECTORS = "admin-edit-sectors"
ADMIN_EDIT_WARDS = "admin-edit-wards"
ADMIN_EDIT_SAVE = "admin-edit-save"
ADMIN_EDIT_PASSWORD = "admin-edit-password"
ADMIN_EDIT_RESET = "admin-edit-reset"
ADMIN_EDIT_DISABLE = "admin-edit-disable"
ADMIN_EDIT_ENABLE = "admin-edit-enable"
ADMIN_EDIT_UNLOCK = "admin-edit-unlock"
ADMIN_EDIT_MESSAGE = "admin-edit-message"
ADMIN_EDIT_DONE = "admin-edit-done"
AUDIT_WHO = "audit-who"
AUDIT_ACTION = "audit-action"
AUDIT_CONTAINS = "audit-contains"
AUDIT_DATES = "audit-dates"
AUDIT_TABLE = "audit-table"
AUDIT_PREV = "audit-prev"
AUDIT_NEXT = "audit-next"
AUDIT_PAGE = "audit-page-label"
AUDIT_CURSOR = "audit-cursor"


def kpi_tile(dataset: str, kpi: str) -> dict[str, str]:
    """Id of one KPI tile."""
    return {"type": "kpi-tile", "dataset": dataset, "kpi": kpi}


def breadcrumb_link(level: str) -> dict[str, str]:
    """Id of one breadcrumb step ("province" or a ward code)."""
    return {"type": "breadcrumb", "level": level}


# pre-merger data (units-i18n): figures before 1 July 2025 by old unit or by today's ward
OLD_UNITS_DATASET = "old-units-dataset"
OLD_UNITS_MEASURE = "old-units-measure"
OLD_UNITS_FIRST = "old-units-first-month"
OLD_UNITS_LAST = "old-units-last-month"
OLD_UNITS_VIEW = "old-units-view"
OLD_UNITS_TABLE = "old-units-table"
OLD_UNITS_SUMMARY = "old-units-summary"
OLD_UNITS_EXPORT = "old-units-export"
OLD_UNITS_DOWNLOAD = "old-units-download"
