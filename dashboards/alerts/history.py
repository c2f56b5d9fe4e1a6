"""The alerts page: active alerts (acknowledge from here too) and the history with filters and CSV export.

Everyone with VIEW opens it; every query is cut to the account's sectors and wards on the server, and
a filter naming a sector or ward outside the scope is refused with 403.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from datetime import date, datetime, timedelta

from dash import Input, Output, State, dash_table, dcc, html
from dash.exceptions import PreventUpdate
from flask import abort

from config.roles import EDIT_ALERTS, VIEW, has_permission
from dashboards.alerts.banner import ALERTS_PATH, alert_line, kpi_decimals, visible_alerts, ward_names
from dashboards.alerts.links import alert_page_links
from dashboards.alerts.text import severity_label, subject_label, value_text, when_text
from dashboards.context import AppContext, get_context
from dashboards.registry import callback
from dashboards.routes import Page, PageRequest, register_page
from dashboards.security import current_account, request_language, secured
from data_sources.alerts.evaluate import EVENT_KINDS, SEVERITIES
from data_sources.alerts.store import HistoryFilter, alert_history
from data_sources.clock import LOCAL_TZ
from data_sources.users import Account
from layouts import ids
from layouts.components import card, empty_state
from layouts.i18n import format_number, t

PAGE_ROWS = 500
EXPORT_ROWS = 100_000
DEFAULT_DAYS = 7
HISTORY_COLUMNS = ("at", "kind", "severity", "rule", "sector", "subject", "value", "threshold", "actor", "comment")


def _day(text: str | None) -> date | None:
    try:
        return date.fromisoformat(str(text)[:10]) if text else None
    except ValueError:
        return None


def history_filter(account: Account, context: AppContext, start, end, sector, ward, severity, kind) -> HistoryFilter:
    """The filters of a request, refused with 403 when they reach outside the account's scope."""
    if sector and not account.scope.allows_sector(sector):
        abort(403)
    if ward and (not account.scope.allows_ward(ward) or ward not in context.ward_codes):
        abort(403)
    first, last = _day(start), _day(end)
    return HistoryFilter(
        start=datetime.combine(first, datetime.min.time(), LOCAL_TZ) if first else None,
        end=datetime.combine(last + timedelta(days=1), datetime.min.time(), LOCAL_TZ) if last else None,
        sector=sector or None,
        ward=ward or None,
        severity=severity if severity in SEVERITIES else None,
        kind=kind if kind in EVENT_KINDS else None,
    )


def history_rows(rows: list[dict], lang: str, names: Mapping[str, str]) -> list[dict[str, str]]:
    """Events as the table and the CSV show them."""
    return [
        {
            "at": when_text(row["at"], lang),
            "kind": t(f"alerts.kind.{row['kind']}", lang),
            "severity": severity_label(row["severity"], lang),
            "rule": row["rule_name"],
            "sector": t(f"sector.{row['sector']}", lang),
            "subject": subject_label(row["subject"], row["subject_label"], names, lang)
            + (
                f" ({names.get(row['ward'], row['ward'])})"
                if row["subject"].startswith("entity:") and row["ward"]
                else ""
            ),
            "value": value_text(row["value"], lang),
            "threshold": value_text(row["threshold"], lang) if row["threshold"] is not None else "",
            "actor": row["actor"] or "",
            "comment": (row["comment"] or "") + (f" [{t('alerts.muted', lang)}]" if row["silenced"] else ""),
            "event_id": row["event_id"],
            "alert_id": row["alert_id"] or "",
        }
        for row in rows
    ]


def build_csv(rows: list[dict[str, str]], lang: str) -> bytes:
    """UTF-8 with a byte-order mark (Excel opens Vietnamese text correctly), translated headers."""
    buffer = io.StringIO()
    columns = (*HISTORY_COLUMNS, "event_id", "alert_id")
    writer = csv.writer(buffer)
    writer.writerow([t(f"alerts.column.{c}", lang) for c in columns])
    for row in rows:
        writer.writerow([row[c] for c in columns])
    return buffer.getvalue().encode("utf-8-sig")


def _options(pairs) -> list[dict[str, str]]:
    return [{"label": label, "value": value} for value, label in pairs]


def render(page: PageRequest) -> html.Div:
    """Active alerts, then the history with its filters."""
    context, lang, account = get_context(), page.lang, page.account
    today = context.now().date()
    units = context.units_in_scope(account.scope)
    name_column = "name_en" if lang == "en" and "name_en" in units else "name"
    filters = html.Div(
        [
            dcc.DatePickerRange(
                id=ids.HISTORY_DATES,
                start_date=(today - timedelta(days=DEFAULT_DAYS - 1)).isoformat(),
                end_date=today.isoformat(),
                display_format="DD/MM/YYYY" if lang != "en" else "YYYY-MM-DD",
                first_day_of_week=1,
            ),
            dcc.Dropdown(
                id=ids.HISTORY_SECTOR,
                options=_options((s, t(f"sector.{s}", lang)) for s in account.scope.visible_sectors),
                placeholder=t("alerts.filter.all_sectors", lang),
                className="filter",
            ),
            dcc.Dropdown(
                id=ids.HISTORY_WARD,
                options=_options(zip(units["code"], units[name_column], strict=True)),
                placeholder=t("filter.all_wards", lang),
                className="filter",
            ),
            dcc.Dropdown(
                id=ids.HISTORY_SEVERITY,
                options=_options((s, severity_label(s, lang)) for s in SEVERITIES),
                placeholder=t("alerts.filter.all_severities", lang),
                className="filter",
            ),
            dcc.Dropdown(
                id=ids.HISTORY_KIND,
                options=_options((k, t(f"alerts.kind.{k}", lang)) for k in EVENT_KINDS),
                placeholder=t("alerts.filter.all_kinds", lang),
                className="filter",
            ),
            html.Button(t("alerts.export_csv", lang), id=ids.HISTORY_EXPORT, n_clicks=0),
            dcc.Download(id=ids.HISTORY_DOWNLOAD),
        ],
        className="controls alert-filters",
    )
    table = dash_table.DataTable(
        id=ids.HISTORY_TABLE,
        columns=[{"name": t(f"alerts.column.{c}", lang), "id": c} for c in HISTORY_COLUMNS],
        data=[],
        page_size=50,
        style_table={"overflowX": "auto"},
        style_cell={"fontFamily": "inherit", "fontSize": 13, "textAlign": "left", "whiteSpace": "normal"},
        style_header={"fontWeight": "600"},
    )
    return html.Div(
        [
            html.H1(t("nav.alerts", lang)),
            alert_page_links(account, ALERTS_PATH, lang),
            card(t("alerts.active.title", lang), html.Div(id=ids.ALERTS_ACTIVE, className="alert-list")),
            card(
                t("alerts.history.title", lang),
                [filters, html.Div(id=ids.HISTORY_COUNT, className="history-count"), table],
            ),
        ]
    )


register_page(Page(ALERTS_PATH, "nav.alerts", VIEW, render, order=50))


@callback(
    Output(ids.ALERTS_ACTIVE, "children"),
    Input(ids.ALERT_BANNER_STATE, "data"),
)
@secured(VIEW)
def update_active(_signature):
    """Every active alert in scope, muted ones included (marked)."""
    context = get_context()
    account = current_account()
    lang = request_language()
    alerts = visible_alerts(context, account, include_silenced=True)
    if not alerts:
        return empty_state(t("alerts.active.none", lang))
    names = ward_names(context, lang)
    can_ack = has_permission(account.role, EDIT_ALERTS)
    return [
        alert_line(a, lang, names, kpi_decimals(context, a.dataset, a.kpi), can_ack=can_ack, compact=False)
        for a in alerts
    ]


HISTORY_STATES = (
    State(ids.HISTORY_DATES, "start_date"),
    State(ids.HISTORY_DATES, "end_date"),
    State(ids.HISTORY_SECTOR, "value"),
    State(ids.HISTORY_WARD, "value"),
    State(ids.HISTORY_SEVERITY, "value"),
    State(ids.HISTORY_KIND, "value"),
)


@callback(
    Output(ids.HISTORY_TABLE, "data"),
    Output(ids.HISTORY_COUNT, "children"),
    Input(ids.HISTORY_DATES, "start_date"),
    Input(ids.HISTORY_DATES, "end_date"),
    Input(ids.HISTORY_SECTOR, "value"),
    Input(ids.HISTORY_WARD, "value"),
    Input(ids.HISTORY_SEVERITY, "value"),
    Input(ids.HISTORY_KIND, "value"),
    Input(ids.ALERT_BANNER_STATE, "data"),
)
@secured(VIEW)
def update_history(start, end, sector, ward, severity, kind, _signature):
    """The newest matching events in the account's scope."""
    context = get_context()
    account = current_account()
    lang = request_language()
    filters = history_filter(account, context, start, end, sector, ward, severity, kind)
    rows, total = alert_history(context.app_db, account.scope, filters, limit=PAGE_ROWS)
    shown = t("alerts.history.count", lang, shown=format_number(len(rows), lang), total=format_number(total, lang))
    return history_rows(rows, lang, ward_names(context, lang)), shown


@callback(
    Output(ids.HISTORY_DOWNLOAD, "data"),
    Input(ids.HISTORY_EXPORT, "n_clicks"),
    *HISTORY_STATES,
    prevent_initial_call=True,
)
@secured(VIEW)
def export_history(n_clicks, start, end, sector, ward, severity, kind):
    """The matching history as CSV (UTF-8 with BOM), cut to the account's scope."""
    if not n_clicks:
        raise PreventUpdate
    context = get_context()
    account = current_account()
    lang = request_language()
    filters = history_filter(account, context, start, end, sector, ward, severity, kind)
    rows, _total = alert_history(context.app_db, account.scope, filters, limit=EXPORT_ROWS)
    stamp = context.now().strftime("%Y%m%d-%H%M")
    return dcc.send_bytes(build_csv(history_rows(rows, lang, ward_names(context, lang)), lang), f"alerts-{stamp}.csv")
