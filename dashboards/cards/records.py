"""Card: the selected ward's individual records: filter, keyset pages, sort on indexed columns, CSV.

The one card that reads the warehouse (through ``data_sources.records``): parameterised, keyset-
paged on an indexed column, personal data masked unless the role may see it (an unmasked page is
audited). Clicking a row opens the record's detail (``record_detail``) by writing it into the URL.
"""

from __future__ import annotations

import re
from dataclasses import replace
from urllib.parse import urlencode

import pandas as pd
from dash import Input, Output, State, ctx, dash_table, dcc, html, no_update

from config.roles import VIEW
from dashboards.context import AppContext
from dashboards.registry import callback
from dashboards.sectors import SectorPage, ViewState
from dashboards.security import audit_unmasked_view, secured
from dashboards.view import SectorView, resolve_sector_view
from data_sources.clock import to_local_naive
from data_sources.records import (
    ColumnFilter,
    RecordsError,
    RecordsQuery,
    check_filters,
    fetch_records,
    row_cursor,
)
from data_sources.sql import ReflectedDataset, reflect_dataset
from layouts import ids
from layouts.components import empty_state
from layouts.i18n import catalogue, format_datetime, t
from layouts.theme import FONT

PAGE_SIZE = 100
EXPORT_PATH = "/export"
CODED_COLUMNS = ("status", "kind", "category", "channel", "disease")
"""Columns holding codes shown (and searchable) by their translated label: ``value.<column>.<code>``."""

_FILTER_PART = re.compile(r"^\{(?P<column>[^}]+)\}\s+(?P<op>\S+)\s+(?P<value>.+)$", re.DOTALL)
_OPERATORS = {
    "=": "eq",
    "s=": "eq",
    "i=": "eq",
    "eq": "eq",
    "!=": "ne",
    "s!=": "ne",
    "ne": "ne",
    "<": "lt",
    "s<": "lt",
    "lt": "lt",
    "<=": "le",
    "s<=": "le",
    "le": "le",
    ">": "gt",
    "s>": "gt",
    "gt": "gt",
    ">=": "ge",
    "s>=": "ge",
    "ge": "ge",
    "contains": "contains",
    "scontains": "contains",
    "icontains": "contains",
    "datestartswith": "datestartswith",
    "sdatestartswith": "datestartswith",
}


def layout(page: SectorPage, lang: str) -> html.Div:
    """Dataset choice, grid with filter row, pager and export link; the detail panel beside it."""
    options = [{"label": t(f"records.dataset.{d}", lang), "value": d} for d in page.records]
    return html.Div(
        [
            dcc.RadioItems(
                id=ids.RECORDS_DATASET,
                options=options,
                value=page.records[0],
                inline=True,
                className="records-dataset" + ("" if len(page.records) > 1 else " hidden"),
            ),
            html.Div(id=ids.RECORDS_TITLE, className="records-title"),
            html.Div(id=ids.RECORDS_ERROR, className="records-error", role="alert"),
            html.Div(
                [
                    dash_table.DataTable(
                        id=ids.RECORDS,
                        data=[],
                        columns=[],
                        sort_action="custom",
                        sort_mode="single",
                        sort_by=[],
                        filter_action="custom",
                        filter_query="",
                        filter_options={
                            "case": "insensitive",
                            "placeholder_text": t("records.filter_placeholder", lang),
                        },
                        page_action="none",
                        style_table={"overflowX": "auto"},
                        style_cell={
                            "fontFamily": FONT,
                            "fontSize": 13,
                            "textAlign": "left",
                            "maxWidth": 280,
                            "overflow": "hidden",
                            "textOverflow": "ellipsis",
                            "cursor": "pointer",
                        },
                        style_filter={"backgroundColor": "#f6f8fa"},
                        style_header={"fontWeight": "600"},
                    ),
                    html.Div(
                        [
                            html.A(
                                t("records.export", lang),
                                id=ids.RECORDS_EXPORT,
                                href="",
                                className="export-link",
                                **{"data-testid": "export"},
                            ),
                            html.Span(className="pager-spacer"),
                            html.Button(
                                "‹", id=ids.RECORDS_PREV, n_clicks=0, className="pager", title=t("records.prev", lang)
                            ),
                            html.Span(id=ids.RECORDS_PAGE, className="pager-label"),
                            html.Button(
                                "›", id=ids.RECORDS_NEXT, n_clicks=0, className="pager", title=t("records.next", lang)
                            ),
                        ],
                        className="pager-row",
                    ),
                ],
                id=ids.RECORDS_LIST,
                style={"display": "none"},
            ),
            html.Div(id=ids.RECORD_DETAIL, className="record-detail"),
            dcc.Store(id=ids.RECORDS_CURSOR, data=None),
        ]
    )


def value_labels(column: str, lang: str) -> dict[str, str]:
    """Code -> label of a coded column in ``lang`` (empty for free-text columns)."""
    if column not in CODED_COLUMNS:
        return {}
    prefix = f"value.{column}."
    return {key[len(prefix) :]: text for key, text in catalogue(lang).items() if key.startswith(prefix)}


def _unquote(text: str) -> str:
    text = text.strip()
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'`":
        text = text[1:-1].replace("\\" + text[0], text[0])
    return text


def parse_filter_query(query: str | None, lang: str) -> tuple[ColumnFilter, ...]:
    """The grid's filter row (``{status} scontains open && {rating} >= 4``) as column filters.

    Coded columns are searched by label too: "đang xử lý" in the status column matches the codes
    whose label contains it. ``RecordsError`` names a part it cannot read.
    """
    filters = []
    for part in (query or "").split(" && "):
        part = part.strip()
        if not part:
            continue
        match = _FILTER_PART.match(part)
        if not match or match.group("op").lower() not in _OPERATORS:
            raise RecordsError(f"cannot read the filter {part!r}")
        column, op, value = match.group("column"), _OPERATORS[match.group("op").lower()], _unquote(match.group("value"))
        labels = value_labels(column, lang)
        if labels and op in ("contains", "eq"):
            needle = value.casefold()
            codes = sorted(
                code
                for code, label in labels.items()
                if (needle in label.casefold() or needle in code.casefold())
                if op == "contains" or needle in (label.casefold(), code.casefold())
            )
            filters.append(ColumnFilter(column, "in", tuple(codes) or (value,)))
            continue
        filters.append(ColumnFilter(column, op, value))
    return tuple(filters)


def reflected_for(context: AppContext, dataset_id: str) -> ReflectedDataset:
    """The dataset's reflected table, reflected once per process."""
    reflected = context.reflected.get(dataset_id)
    if reflected is None:
        reflected = context.reflected[dataset_id] = reflect_dataset(
            context.warehouse, context.catalogue.get(dataset_id)
        )
    return reflected


def may_unmask(view_or_role, context: AppContext) -> bool:
    """True when the account's role may see personal data unmasked (``unmasked_roles`` setting)."""
    role = view_or_role if isinstance(view_or_role, str) else view_or_role.account.role
    return role in context.settings.unmasked_roles


def sort_choice(dataset, sort_by: list | None) -> tuple[str, bool]:
    """(column, descending): a requested sort on a ``sortable`` (indexed) column, else the first sortable."""
    if sort_by and sort_by[0].get("column_id") in dataset.sortable:
        return sort_by[0]["column_id"], sort_by[0].get("direction") != "asc"
    return dataset.sortable[0], True


def records_query(
    view_state: ViewState,
    context: AppContext,
    dataset_id: str,
    *,
    wards: frozenset[str] | None,
    sort_by: list | None,
    filters: tuple[ColumnFilter, ...],
    after=None,
    limit: int = PAGE_SIZE,
) -> RecordsQuery:
    """The warehouse query for a view: the wards' unit codes (old and new), the time range, filters, sort."""
    dataset = context.catalogue.get(dataset_id)
    sort_column, descending = sort_choice(dataset, sort_by)
    start, end = view_state.local_bounds(to_local_naive(context.now()))
    if view_state.ward:
        units = context.old_codes_of(view_state.ward)
    elif wards is not None:
        units = tuple(sorted(code for ward in wards for code in context.old_codes_of(ward)))
    else:
        units = None
    return RecordsQuery(
        unit_codes=units,
        start=start,
        end=end,
        sort_column=sort_column,
        descending=descending,
        after=tuple(after) if after else None,
        limit=limit,
        filters=filters,
    )


def build_records_table(
    frame: pd.DataFrame, lang: str, datetime_columns: set[str], *, key: str, sortable, shown_columns
):
    """Grid columns (catalogue labels, sort arrows only where sorting is offered) and display rows."""
    columns = []
    for column in shown_columns:
        kind = (
            "datetime"
            if column in datetime_columns
            else ("numeric" if pd.api.types.is_numeric_dtype(frame[column]) else "text")
        )
        columns.append({"name": t(f"column.{column}", lang), "id": column, "type": kind})
    shown = frame.copy()
    for column in datetime_columns & set(shown.columns):
        shown[column] = [format_datetime(v, lang) if pd.notna(v) else "" for v in shown[column]]
    for column in shown_columns:
        labels = value_labels(column, lang)
        if labels:
            shown[column] = [labels.get(v, v) if isinstance(v, str) else v for v in shown[column]]
    rows = shown.astype(object).where(shown.notna(), None).to_dict("records")
    for row, key_value in zip(rows, frame[key], strict=True):
        row["id"] = key_value.item() if hasattr(key_value, "item") else key_value
    css = [
        {"selector": f'th[data-dash-column="{c}"] .column-header--sort', "rule": "display: none"}
        for c in shown_columns
        if c not in sortable
    ]
    return columns, rows, css


def export_href(page: SectorPage, state: ViewState, dataset_id: str, sort_by: list | None, filter_query: str) -> str:
    """The CSV export link for the current view: every matching row, checked again on the server."""
    params = state.with_(record=None).params() | {"data": dataset_id}
    if sort_by:
        params["sort"] = f"{sort_by[0].get('column_id')}:{sort_by[0].get('direction', 'desc')}"
    if filter_query:
        params["q"] = filter_query
    return f"{EXPORT_PATH}{page.path}.csv?{urlencode(params)}"


def page_step(position: dict | None, signature: dict, trigger) -> tuple[int, list | None, bool, bool] | None:
    """Which page to read: (page index, cursor, cursor row included, read backwards); None: stay.

    Keyset both ways: the next page starts after the current page's last row; the previous page is
    read backwards from the current page's first row; a reload (a record opened or closed) reads the
    current page again from its first row. Nothing but the current page's two edge rows is kept, so
    page 2,000 costs what page 1 costs and the browser sends back a few bytes.
    """
    if not position or position.get("signature") != signature:
        return 0, None, False, False
    page = position["page"]
    if trigger == ids.RECORDS_NEXT:
        if not position.get("more") or not position.get("last"):
            return None
        return page + 1, position["last"], False, False
    if trigger == ids.RECORDS_PREV:
        if page == 0:
            return None
        if page == 1 or not position.get("first"):
            return 0, None, False, False
        return page - 1, position["first"], False, True
    return page, position.get("first"), page > 0 and bool(position.get("first")), False


def list_signature(view: SectorView, sort_by, filter_query) -> dict:
    """What defines the list (not the opened record): a change starts again at page 1."""
    return {"view": view.state.with_(record=None).query(), "sort": sort_by or [], "q": filter_query or ""}


@callback(
    Output(ids.RECORDS, "data"),
    Output(ids.RECORDS, "columns"),
    Output(ids.RECORDS, "css"),
    Output(ids.RECORDS, "active_cell"),
    Output(ids.RECORDS_TITLE, "children"),
    Output(ids.RECORDS_ERROR, "children"),
    Output(ids.RECORDS_CURSOR, "data"),
    Output(ids.RECORDS_PAGE, "children"),
    Output(ids.RECORDS_EXPORT, "href"),
    Output(ids.RECORDS_LIST, "style"),
    Input(ids.URL, "search"),
    Input(ids.RECORDS, "sort_by"),
    Input(ids.RECORDS, "filter_query"),
    Input(ids.RECORDS_PREV, "n_clicks"),
    Input(ids.RECORDS_NEXT, "n_clicks"),
    State(ids.URL, "pathname"),
    State(ids.RECORDS_CURSOR, "data"),
)
@secured(VIEW)
def update_records(search, sort_by, filter_query, _prev, _next, pathname, cursor):
    """Records of the selected ward; ‹ › move one keyset page back or forward."""
    view = resolve_sector_view(pathname, search)
    lang, context = view.lang, view.context
    hidden = {"display": "none"} if view.state.record else {}
    if not view.state.ward:
        message = empty_state(t("records.pick_ward", lang))
        return [], [], [], None, message, "", None, "", "", {"display": "none"}
    dataset_id = view.records_dataset
    dataset = context.catalogue.get(dataset_id)
    unmasked = may_unmask(view, context)
    signature = list_signature(view, sort_by, filter_query)
    step = page_step(cursor, signature, ctx.triggered_id)
    if step is None:
        return (no_update,) * 10
    page, after, inclusive, backwards = step
    reflected = reflected_for(context, dataset_id)
    try:
        filters = parse_filter_query(filter_query, lang)
        check_filters(dataset, filters, unmasked=unmasked)
        query = records_query(
            view.state, context, dataset_id, wards=view.wards, sort_by=sort_by, filters=filters, after=after
        )
        query = replace(query, limit=PAGE_SIZE + 1, inclusive=inclusive, descending=query.descending != backwards)
        frame = fetch_records(context.warehouse, reflected, query, unmasked=unmasked)
    except RecordsError as error:
        return [], [], [], None, no_update, t("records.bad_filter", lang, problem=str(error)), None, "", "", hidden
    more = backwards or len(frame) > PAGE_SIZE
    frame = frame.iloc[:PAGE_SIZE]
    if backwards:
        frame = frame.iloc[::-1].reset_index(drop=True)
    if unmasked and dataset.personal and not frame.empty:
        audit_unmasked_view(
            context.app_db,
            view.account,
            f"{dataset_id} ward={view.state.ward} window={view.state.window} page={page + 1} rows={len(frame)}",
        )
    position = {"page": page, "more": more, "signature": signature, "first": None, "last": None}
    if not frame.empty:
        position["first"] = row_cursor(frame, 0, query.sort_column, dataset.key)
        position["last"] = row_cursor(frame, -1, query.sort_column, dataset.key)
    shown_columns = [c for c in (dataset.records_columns or frame.columns) if c in frame.columns]
    datetime_columns = {c for c in frame.columns if pd.api.types.is_datetime64_any_dtype(frame[c])}
    columns, rows, css = build_records_table(
        frame, lang, datetime_columns, key=dataset.key, sortable=dataset.sortable, shown_columns=shown_columns
    )
    place, window = context.ward_name(view.state.ward, lang), view.window_label()
    if rows:
        title = html.H3(t("records.title", lang, ward=place, window=window))
    else:
        key = "records.none_filtered" if filters else f"records.none.{dataset_id}"
        title = empty_state(t(key, lang, ward=place, window=window))
    label = t("records.page_of", lang, page=page + 1) + ("" if more else " · " + t("records.last_page", lang))
    href = export_href(view.page, view.state, dataset_id, sort_by, filter_query or "")
    return (
        rows,
        columns,
        css,
        None,
        title,
        "",
        position,
        label,
        href,
        hidden,
    )
