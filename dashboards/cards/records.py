"""Card: the selected ward's individual records, keyset-paged, sortable on indexed columns."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
from dash import Input, Output, State, ctx, dash_table, dcc, html, no_update

from config.roles import VIEW
from dashboards.registry import callback
from dashboards.security import audit_unmasked_view, secured
from dashboards.view import SectorView, resolve_sector_view
from data_sources.clock import to_local_naive
from data_sources.kpis import WINDOW_SECONDS
from data_sources.records import RecordsQuery, fetch_records
from data_sources.sql import reflect_dataset
from layouts import ids
from layouts.components import empty_state
from layouts.i18n import format_datetime, t

PAGE_SIZE = 100


def layout() -> html.Div:
    """Title, table, pager; the cursor stack lives in a store."""
    return html.Div(
        [
            html.Div(id=ids.RECORDS_TITLE, className="records-title"),
            dash_table.DataTable(
                id=ids.RECORDS,
                data=[],
                columns=[],
                sort_action="custom",
                sort_mode="single",
                sort_by=[],
                page_action="none",
                style_table={"overflowX": "auto"},
                style_cell={
                    "fontFamily": "inherit",
                    "fontSize": 13,
                    "textAlign": "left",
                    "maxWidth": 280,
                    "overflow": "hidden",
                    "textOverflow": "ellipsis",
                },
                style_header={"fontWeight": "600"},
            ),
            html.Div(
                [
                    html.Button("‹", id=ids.RECORDS_PREV, n_clicks=0, className="pager"),
                    html.Span(id=ids.RECORDS_PAGE, className="pager-label"),
                    html.Button("›", id=ids.RECORDS_NEXT, n_clicks=0, className="pager"),
                ],
                className="pager-row",
            ),
            dcc.Store(id=ids.RECORDS_CURSOR, data={"page": 0, "cursors": [None]}),
        ]
    )


def build_records_table(frame: pd.DataFrame, lang: str, datetime_columns: set[str]) -> tuple[list, list]:
    """Table columns (labelled from the catalogue) and rows with dates in the interface format."""
    columns = [{"name": t(f"column.{c}", lang), "id": c} for c in frame.columns]
    shown = frame.copy()
    for column in datetime_columns & set(shown.columns):
        shown[column] = [format_datetime(v, lang) if pd.notna(v) else "" for v in shown[column]]
    return columns, shown.astype(object).where(shown.notna(), None).to_dict("records")


def _query(view: SectorView, sort_by: list, after) -> RecordsQuery:
    dataset = view.context.catalogue.get(view.page.records_dataset)
    sort_column, descending = dataset.sortable[0], True
    if sort_by and sort_by[0].get("column_id") in dataset.sortable:
        sort_column = sort_by[0]["column_id"]
        descending = sort_by[0].get("direction") != "asc"
    now = to_local_naive(view.context.now())
    start = now - timedelta(seconds=WINDOW_SECONDS[view.state.window])
    return RecordsQuery(
        unit_codes=view.context.old_codes_of(view.state.ward),
        start=start,
        end=None,
        sort_column=sort_column,
        descending=descending,
        after=tuple(after) if after else None,
        limit=PAGE_SIZE,
    )


@callback(
    Output(ids.RECORDS, "data"),
    Output(ids.RECORDS, "columns"),
    Output(ids.RECORDS_TITLE, "children"),
    Output(ids.RECORDS_CURSOR, "data"),
    Output(ids.RECORDS_PAGE, "children"),
    Input(ids.URL, "search"),
    Input(ids.RECORDS, "sort_by"),
    Input(ids.RECORDS_PREV, "n_clicks"),
    Input(ids.RECORDS_NEXT, "n_clicks"),
    State(ids.URL, "pathname"),
    State(ids.RECORDS_CURSOR, "data"),
)
@secured(VIEW)
def update_records(search, sort_by, _prev, _next, pathname, cursor):
    """Records of the selected ward; ‹ › move one keyset page back or forward."""
    view = resolve_sector_view(pathname, search)
    lang = view.lang
    if not view.state.ward:
        return [], [], empty_state(t("records.pick_ward", lang)), {"page": 0, "cursors": [None]}, ""
    context = view.context
    dataset = context.catalogue.get(view.page.records_dataset)
    page, cursors = 0, [None]
    if ctx.triggered_id in (ids.RECORDS_PREV, ids.RECORDS_NEXT) and cursor:
        page, cursors = cursor["page"], cursor["cursors"]
        if ctx.triggered_id == ids.RECORDS_NEXT:
            if page + 1 >= len(cursors):
                return no_update, no_update, no_update, no_update, no_update
            page += 1
        else:
            page = max(0, page - 1)
    reflected = context.reflected.get(dataset.id) or reflect_dataset(context.warehouse, dataset)
    context.reflected[dataset.id] = reflected
    query = _query(view, sort_by or [], cursors[page])
    unmasked = view.account.role in context.settings.unmasked_roles
    frame = fetch_records(context.warehouse, reflected, query, unmasked=unmasked)
    if unmasked and dataset.personal:
        detail = f"{dataset.id} ward={view.state.ward} window={view.state.window} page={page + 1} rows={len(frame)}"
        audit_unmasked_view(context.app_db, view.account, detail)
    if len(frame) == PAGE_SIZE:
        last = frame.iloc[-1]
        next_cursor = [last[query.sort_column], int(last[dataset.key])]
        if isinstance(next_cursor[0], pd.Timestamp):
            next_cursor[0] = next_cursor[0].isoformat()
        cursors = cursors[: page + 1] + [next_cursor]
    else:
        cursors = cursors[: page + 1]
    datetime_columns = {c for c in frame.columns if pd.api.types.is_datetime64_any_dtype(frame[c])}
    columns, rows = build_records_table(frame, lang, datetime_columns)
    title = t(
        "records.title",
        lang,
        ward=context.ward_name(view.state.ward, lang),
        window=t(f"window.{view.state.window}", lang),
    )
    body = (
        html.Div([html.H3(title)])
        if rows
        else empty_state(
            t(
                "records.none",
                lang,
                ward=context.ward_name(view.state.ward, lang),
                window=t(f"window.{view.state.window}", lang),
            )
        )
    )
    return rows, columns, body, {"page": page, "cursors": cursors}, t("records.page", lang, page=page + 1)
