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
# alerts: banner on every page, alerts page, rules page
ALERT_BANNER = "alert-banner"
ALERT_BANNER_STATE = "alert-banner-state"
ALERT_TICKER = "alert-ticker"
ALERT_ACK_TARGET = "alert-ack-target"
ALERT_ACK_PANEL = "alert-ack-panel"
ALERT_ACK_TITLE = "alert-ack-title"
ALERT_ACK_COMMENT = "alert-ack-comment"
ALERT_ACK_SUBMIT = "alert-ack-submit"
ALERT_ACK_CANCEL = "alert-ack-cancel"
ALERT_ACK_ERROR = "alert-ack-error"
ALERTS_ACTIVE = "alerts-active"
HISTORY_DATES = "alert-history-dates"
HISTORY_SECTOR = "alert-history-sector"
HISTORY_WARD = "alert-history-ward"
HISTORY_SEVERITY = "alert-history-severity"
HISTORY_KIND = "alert-history-kind"
HISTORY_TABLE = "alert-history-table"
HISTORY_COUNT = "alert-history-count"
HISTORY_EXPORT = "alert-history-export"
HISTORY_DOWNLOAD = "alert-history-download"
RULES_LIST = "alert-rules-list"
RULES_VERSION = "alert-rules-version"
RULE_EDITING = "alert-rule-editing"
RULE_FORM_TITLE = "alert-rule-form-title"
RULE_MESSAGE = "alert-rule-message"
RULE_NEW = "alert-rule-new"
RULE_SAVE = "alert-rule-save"
RULE_PREVIEW = "alert-rule-preview"
RULE_PREVIEW_GRAPH = "alert-rule-preview-graph"
RULE_PREVIEW_RESULT = "alert-rule-preview-result"
RULE_NAME = "alert-rule-name"
RULE_DATASET = "alert-rule-dataset"
RULE_KPI = "alert-rule-kpi"
RULE_SCOPE = "alert-rule-scope"
RULE_WARD = "alert-rule-ward"
RULE_COMPARATOR = "alert-rule-comparator"
RULE_WARNING = "alert-rule-warning"
RULE_WARNING_ATTRIBUTE = "alert-rule-warning-attribute"
RULE_CRITICAL = "alert-rule-critical"
RULE_CRITICAL_ATTRIBUTE = "alert-rule-critical-attribute"
RULE_HOLD = "alert-rule-hold"
RULE_MARGIN = "alert-rule-margin"
RULE_NO_DATA = "alert-rule-no-data"
RULE_ENABLED = "alert-rule-enabled"
RULE_OWNER = "alert-rule-owner"
RULE_DESCRIPTION = "alert-rule-description"
RULE_TARGETS = "alert-rule-targets"
SILENCE_KIND = "alert-silence-kind"
SILENCE_RULE = "alert-silence-rule"
SILENCE_WARD = "alert-silence-ward"
SILENCE_HOURS = "alert-silence-hours"
SILENCE_REASON = "alert-silence-reason"
SILENCE_CREATE = "alert-silence-create"
SILENCE_MESSAGE = "alert-silence-message"
SILENCES_LIST = "alert-silences-list"
SILENCES_VERSION = "alert-silences-version"
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


def alert_ack_open(alert_id: str) -> dict[str, str]:
    """Id of the "acknowledge" button of one active alert (banner and alerts page)."""
    return {"type": "alert-ack-open", "alert": alert_id}


def rule_error(field: str) -> dict[str, str]:
    """Id of the validation message shown next to one rule-form field."""
    return {"type": "alert-rule-error", "field": field}


def rule_edit(rule_id: int | str) -> dict:
    """Id of a rule's "edit" button."""
    return {"type": "alert-rule-edit", "rule": rule_id}


def rule_clone(rule_id: int | str) -> dict:
    """Id of a rule's "clone" button."""
    return {"type": "alert-rule-clone", "rule": rule_id}


def rule_toggle(rule_id: int | str) -> dict:
    """Id of a rule's "disable"/"enable" button."""
    return {"type": "alert-rule-toggle", "rule": rule_id}


def silence_error(field: str) -> dict[str, str]:
    """Id of the validation message next to one silence-form field."""
    return {"type": "alert-silence-error", "field": field}


def silence_end(silence_id: int | str) -> dict:
    """Id of a silence's "end now" button."""
    return {"type": "alert-silence-end", "silence": silence_id}


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


def health_age(dataset, kind) -> dict:
    """Id of one freshness label on Data health (``kind`` is "source" or "poll"); ALL in callbacks."""
    return {"type": "health-age", "dataset": dataset, "kind": kind}


# alert delivery log (issue 6): webhook and e-mail attempts, filters, keyset pages
DELIVERIES_FAILED = "alert-deliveries-failed"
DELIVERIES_STATUS = "alert-deliveries-status"
DELIVERIES_TARGET = "alert-deliveries-target"
DELIVERIES_DATES = "alert-deliveries-dates"
DELIVERIES_TABLE = "alert-deliveries-table"
DELIVERIES_PREV = "alert-deliveries-prev"
DELIVERIES_NEXT = "alert-deliveries-next"
DELIVERIES_PAGE = "alert-deliveries-page"
DELIVERIES_CURSOR = "alert-deliveries-cursor"
DELIVERIES_SEEN = "alert-deliveries-seen"
ALERT_PAGE_LINKS = "alert-page-links"
