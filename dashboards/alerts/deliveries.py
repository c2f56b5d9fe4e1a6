"""The notification delivery log: every webhook and e-mail attempt, newest first, for the operators.

Same permission as the thresholds page (EDIT_ALERTS: operators and admins; the router refuses the
page and ``secured`` every callback with 403 for anyone else). Filters: result (delivered, failed,
given up), target and a period of local days; 50 attempts a page, keyset-paged on the log's id. A
count of the failed attempts of the last 24 hours stands above the table, with an icon and words.
The refresh tick updates the page only when the log has a new row (one cheap query), and never
moves an operator off an older page.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import Any

from dash import Input, Output, State, ctx, dash_table, dcc, html, no_update
from dash.exceptions import PreventUpdate
from flask import abort

from config.roles import EDIT_ALERTS
from dashboards.alerts.links import DELIVERIES_PATH, alert_page_links
from dashboards.alerts.text import severity_label
from dashboards.context import get_context
from dashboards.registry import callback
from dashboards.routes import Page, PageRequest, register_page
from dashboards.security import request_language, secured
from data_sources.clock import LOCAL_TZ
from data_sources.notify import (
    DELIVERED,
    DELIVERY_STATUSES,
    EMAIL,
    FAILED,
    RETRYING,
    WEBHOOK,
    DeliveryFilter,
    LoggedAttempt,
    delivery_log,
    delivery_targets,
    failures_since,
    newest_attempt_id,
)
from layouts import ids
from layouts.components import card
from layouts.i18n import format_date, format_number, t

PAGE_SIZE = 50
FAILED_WINDOW = timedelta(hours=24)
COLUMNS = ("at", "rule", "alert", "target", "channel", "attempt", "status", "detail", "event_id")
OUTCOMES = (DELIVERED, RETRYING, FAILED)
CHANNELS = (WEBHOOK, EMAIL)
FIRST_PAGE = {"page": 0, "cursors": [None]}


def moment_text(moment: datetime, lang: str) -> str:
    """Local date and time to the second (retries are seconds apart)."""
    return f"{format_date(moment, lang)} {moment.astimezone(LOCAL_TZ):%H:%M:%S}"


def delivery_filter(status: Any, target: Any, start: Any, end: Any) -> DeliveryFilter:
    """The page's filters as a query; 400 with a sentence for a status or date the page never sends."""
    if status not in (None, "", *DELIVERY_STATUSES):
        abort(400, f"status must be one of {', '.join(DELIVERY_STATUSES)}")
    try:
        first = date.fromisoformat(str(start)[:10]) if start else None
        last = date.fromisoformat(str(end)[:10]) if end else None
    except ValueError:
        abort(400, "dates must be YYYY-MM-DD")
    if first and last and last < first:
        first, last = last, first
    return DeliveryFilter(
        status=status or None,
        target=str(target) if target else None,
        start=datetime.combine(first, time(0), LOCAL_TZ) if first else None,
        end=datetime.combine(last + timedelta(days=1), time(0), LOCAL_TZ) if last else None,
    )


def page_position(trigger: Any, cursor: Any) -> tuple[int, list[int | None]]:
    """(page index, keyset cursors) after a click on ‹ or ›; filters and first loads restart at page 1.

    ``cursors[i]`` is the id below which page ``i`` starts (None: the newest). A forged or stale cursor
    falls back to the first page; › past the last known page changes nothing (``PreventUpdate``).
    """
    if trigger not in (ids.DELIVERIES_PREV, ids.DELIVERIES_NEXT) or not isinstance(cursor, dict):
        return 0, [None]
    raw = cursor.get("cursors")
    cursors = [c if isinstance(c, int) and not isinstance(c, bool) else None for c in raw or [None]] or [None]
    page = cursor.get("page")
    page = min(page, len(cursors) - 1) if isinstance(page, int) and not isinstance(page, bool) and page >= 0 else 0
    if trigger == ids.DELIVERIES_NEXT:
        if page + 1 >= len(cursors):
            raise PreventUpdate
        return page + 1, cursors
    return max(0, page - 1), cursors


def next_cursors(cursors: list[int | None], page: int, shown: list[LoggedAttempt], more: bool) -> list[int | None]:
    """Cursors known after showing ``shown`` on ``page``: the next page starts below its last row."""
    return cursors[: page + 1] + ([shown[-1].id] if more and shown else [])


def outcome_text(outcome: str, lang: str) -> str:
    """``✔ Đã gửi``, ``↻ Lỗi, sẽ thử lại``, ``✖ Lỗi, đã ngừng thử`` (an icon and words, not colour alone)."""
    return t(f"alerts.deliveries.outcome.{outcome}", lang) if outcome in OUTCOMES else outcome


def detail_text(attempt: LoggedAttempt, lang: str) -> str:
    """The error as the notifier logged it (``HTTP 503``, ``SMTP 550: …``, ``TimeoutError: timed out``),
    else the receiver's answer (``HTTP 200``); empty for an e-mail the server accepted."""
    if attempt.error:
        return attempt.error
    if attempt.status_code is not None:
        return t("alerts.deliveries.http", lang, code=attempt.status_code)
    return ""


def alert_text(attempt: LoggedAttempt, lang: str) -> str:
    """What the notification was about: the event kind and severity (the event may have been removed)."""
    if attempt.kind is None:
        return t("alerts.deliveries.event_gone", lang)
    kind = t(f"alerts.kind.{attempt.kind}", lang)
    severity = severity_label(attempt.severity, lang)
    return f"{kind} · {severity}" if severity else kind


def delivery_rows(attempts: list[LoggedAttempt], lang: str) -> list[dict[str, str]]:
    """Attempts as the table shows them; times in Asia/Ho_Chi_Minh."""
    return [
        {
            "at": moment_text(a.at, lang),
            "rule": a.rule_name or "",
            "alert": alert_text(a, lang),
            "target": a.target,
            "channel": t(f"alerts.deliveries.channel.{a.channel}", lang) if a.channel in CHANNELS else a.channel,
            "attempt": format_number(a.attempt, lang),
            "status": outcome_text(a.outcome, lang),
            "detail": detail_text(a, lang),
            "event_id": a.event_id,
            "outcome": a.outcome,
        }
        for a in attempts
    ]


def failed_summary(failed: int, gave_up: int, lang: str) -> html.Div:
    """The count of failed attempts in the last 24 hours, with an icon and words."""
    if not failed:
        return html.Div(t("alerts.deliveries.no_failures_24h", lang), className="delivery-summary ok", role="status")
    text = t(
        "alerts.deliveries.failures_24h",
        lang,
        failed=format_number(failed, lang),
        gave_up=format_number(gave_up, lang),
    )
    return html.Div(text, className="delivery-summary failed", role="status", **{"data-failed": str(failed)})


def _options(pairs) -> list[dict[str, str]]:
    return [{"label": label, "value": value} for value, label in pairs]


def render(page: PageRequest) -> html.Div:
    """Failed count, links, filters, the paged table."""
    context, lang = get_context(), page.lang
    filters = html.Div(
        [
            dcc.Dropdown(
                id=ids.DELIVERIES_STATUS,
                options=_options((s, t(f"alerts.deliveries.status.{s}", lang)) for s in DELIVERY_STATUSES),
                placeholder=t("alerts.deliveries.filter.all_statuses", lang),
                className="filter",
            ),
            dcc.Dropdown(
                id=ids.DELIVERIES_TARGET,
                options=_options((target, target) for target in delivery_targets(context.app_db)),
                placeholder=t("alerts.deliveries.filter.all_targets", lang),
                className="filter filter-wide",
            ),
            dcc.DatePickerRange(
                id=ids.DELIVERIES_DATES,
                display_format="DD/MM/YYYY" if lang != "en" else "YYYY-MM-DD",
                start_date_placeholder_text=t("alerts.deliveries.filter.from", lang),
                end_date_placeholder_text=t("alerts.deliveries.filter.to", lang),
                first_day_of_week=1,
                clearable=True,
            ),
        ],
        className="controls alert-filters",
    )
    table = dash_table.DataTable(
        id=ids.DELIVERIES_TABLE,
        columns=[{"name": t(f"alerts.deliveries.column.{c}", lang), "id": c} for c in COLUMNS],
        data=[],
        page_action="none",
        style_table={"overflowX": "auto"},
        style_cell={"fontFamily": "inherit", "fontSize": 13, "textAlign": "left", "whiteSpace": "normal"},
        style_header={"fontWeight": "600"},
        style_data_conditional=[
            {"if": {"filter_query": f'{{outcome}} = "{o}"', "column_id": "status"}, "fontWeight": "600"}
            for o in (RETRYING, FAILED)
        ],
    )
    pager = html.Div(
        [
            html.Button("‹", id=ids.DELIVERIES_PREV, n_clicks=0, className="pager"),
            html.Span(id=ids.DELIVERIES_PAGE, className="pager-label"),
            html.Button("›", id=ids.DELIVERIES_NEXT, n_clicks=0, className="pager"),
        ],
        className="pager-row",
    )
    return html.Div(
        [
            html.H1(t("nav.alert_deliveries", lang)),
            alert_page_links(page.account, DELIVERIES_PATH, lang),
            html.Div(id=ids.DELIVERIES_FAILED),
            html.P(t("alerts.deliveries.hint", lang), className="muted"),
            filters,
            card(t("alerts.deliveries.title", lang), [table, pager]),
            dcc.Store(id=ids.DELIVERIES_CURSOR, data=FIRST_PAGE),
            dcc.Store(id=ids.DELIVERIES_SEEN, data=None),
        ]
    )


register_page(Page(DELIVERIES_PATH, "nav.alert_deliveries", EDIT_ALERTS, render, order=52))


@callback(
    Output(ids.DELIVERIES_TABLE, "data"),
    Output(ids.DELIVERIES_PAGE, "children"),
    Output(ids.DELIVERIES_CURSOR, "data"),
    Output(ids.DELIVERIES_FAILED, "children"),
    Output(ids.DELIVERIES_SEEN, "data"),
    Input(ids.DELIVERIES_STATUS, "value"),
    Input(ids.DELIVERIES_TARGET, "value"),
    Input(ids.DELIVERIES_DATES, "start_date"),
    Input(ids.DELIVERIES_DATES, "end_date"),
    Input(ids.DELIVERIES_PREV, "n_clicks"),
    Input(ids.DELIVERIES_NEXT, "n_clicks"),
    Input(ids.REFRESH, "n_intervals"),
    State(ids.DELIVERIES_CURSOR, "data"),
    State(ids.DELIVERIES_SEEN, "data"),
)
@secured(EDIT_ALERTS)
def update_deliveries(status, target, start, end, _prev, _next, _tick, cursor, seen):
    """One page of the delivery log and the failed count; on a refresh tick only when the log grew."""
    context = get_context()
    lang = request_language()
    filters = delivery_filter(status, target, start, end)
    now = context.now()
    signature = [newest_attempt_id(context.app_db), *failures_since(context.app_db, now - FAILED_WINDOW)]
    summary = failed_summary(signature[1], signature[2], lang)
    if ctx.triggered_id == ids.REFRESH:
        if signature == seen:
            raise PreventUpdate
        on_later_page = isinstance(cursor, Mapping) and cursor.get("page") not in (0, None)
        if on_later_page:  # the operator is reading older rows: only the count moves
            return no_update, no_update, no_update, summary, signature
    page, cursors = page_position(ctx.triggered_id, cursor)
    found = delivery_log(context.app_db, filters, before_id=cursors[page], limit=PAGE_SIZE + 1)
    shown, more = found[:PAGE_SIZE], len(found) > PAGE_SIZE
    cursors = next_cursors(cursors, page, shown, more)
    label = t("alerts.deliveries.page", lang, page=page + 1) if shown else t("alerts.deliveries.none", lang)
    return delivery_rows(shown, lang), label, {"page": page, "cursors": cursors}, summary, signature
