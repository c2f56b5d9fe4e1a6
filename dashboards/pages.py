"""Routing, the overview page, the sector page frame, and the shell's server callbacks."""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from typing import Any

from dash import ALL, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate
from flask import abort

from config.roles import VIEW
from dashboards.cards import kpi_row, league, record_detail, records, series, ward_map  # noqa: F401
from dashboards.context import AppContext, get_context
from dashboards.registry import callback, clientside_callback
from dashboards.routes import PageRequest, page_at, registered_pages
from dashboards.sectors import CUSTOM, SECTOR_PAGES, WINDOWS, SectorPage, ViewState, sector_page_for
from dashboards.security import current_account, request_language, secured
from dashboards.view import view_state_for
from data_sources.clock import to_local_naive
from data_sources.figures import kpi_value
from data_sources.scheduler import STATUS_NAME
from data_sources.users import Account
from layouts import ids
from layouts.components import card, empty_state, kpi_tile
from layouts.i18n import catalogue, format_datetime, t
from layouts.shell import navigation

OVERVIEW_PATH = "/"
LATE_FACTOR = 1.5
STALE_FACTOR = 2
"""A dataset is late after 1.5 and stale after 2 poll intervals without a poll (browser-side clock)."""


def nav_items(account: Account, lang: str) -> list[tuple[str, str]]:
    """Pages the account may open, in menu order."""
    items = [(OVERVIEW_PATH, t("nav.overview", lang))]
    items += [(p.path, t(f"nav.{p.sector}", lang)) for p in SECTOR_PAGES if account.scope.allows_sector(p.sector)]
    items += [(p.path, t(p.nav_key, lang)) for p in registered_pages() if p.allows(account)]
    return items


def headline_datasets(context: AppContext, account: Account) -> list[tuple[str, str]]:
    """(sector, dataset id) with the headline KPI of each visible sector's first dataset."""
    chosen = []
    for sector in account.scope.visible_sectors:
        dataset = next((d for d in context.catalogue.for_sector(sector) if d.headline_kpi), None)
        if dataset is not None:
            chosen.append((sector, dataset.id))
    return chosen


def page_datasets(pathname: str, context: AppContext, account: Account) -> tuple[str, ...]:
    """Datasets whose snapshot versions the page's refresh tick watches."""
    page = sector_page_for(pathname or "")
    if page is not None:
        return page.datasets
    other = page_at(pathname or "")
    if other is not None:
        return other.datasets(account) if other.datasets and other.allows(account) else ()
    return tuple(d for _, d in headline_datasets(context, account))


def overview_layout(lang: str) -> html.Div:
    """Overview: one KPI tile per sector the account may see."""
    return html.Div(
        [html.H1(t("nav.overview", lang)), html.Div(id=ids.OVERVIEW_TILES, className="kpi-row overview-row")]
    )


def freshness_label(panel: str, datasets: tuple[str, ...]) -> html.Span:
    """A panel's own freshness (live/late/stale and age), aged in the browser like the header badge."""
    return html.Span(id=ids.panel_freshness(panel, datasets), className="panel-freshness freshness unknown")


def sector_layout(page: SectorPage, state: ViewState, context: AppContext, account: Account, lang: str) -> html.Div:
    """A sector page: controls, KPI tiles, series, map, league table and the drill-down records."""
    units = context.units_in_scope(account.scope)
    name_column = "name" if lang != "en" else "name_en"
    today = to_local_naive(context.now()).date()
    custom_start, custom_end = state.start or today - timedelta(days=6), state.end or today
    controls = html.Div(
        [
            dcc.RadioItems(
                id=ids.WINDOW,
                options=[{"label": t(f"window.{w}", lang), "value": w} for w in WINDOWS],
                value=state.window,
                inline=True,
                className="window-select",
            ),
            html.Div(
                dcc.DatePickerRange(
                    id=ids.DATE_RANGE,
                    start_date=custom_start.isoformat(),
                    end_date=custom_end.isoformat(),
                    max_date_allowed=today.isoformat(),
                    display_format="DD/MM/YYYY" if lang != "en" else "YYYY-MM-DD",
                    first_day_of_week=1,
                    minimum_nights=0,
                    start_date_placeholder_text=t("range.from", lang),
                    end_date_placeholder_text=t("range.to", lang),
                ),
                id=ids.DATE_RANGE_BOX,
                className="date-range",
                style={} if state.window == CUSTOM else {"display": "none"},
            ),
            dcc.Dropdown(
                id=ids.WARD,
                options=[{"label": n, "value": c} for c, n in zip(units["code"], units[name_column], strict=True)],
                value=state.ward,
                placeholder=t("filter.all_wards", lang),
                className="ward-select",
            ),
        ],
        className="controls",
    )
    map_datasets = (page.choropleth.dataset, *(layer.dataset for layer in page.markers))
    return html.Div(
        [
            html.H1(t(f"sector.{page.sector}", lang)),
            html.Nav(id=ids.BREADCRUMB, className="breadcrumb", **{"aria-label": "breadcrumb"}),
            controls,
            html.Div(
                [
                    html.Span(t("card.kpis", lang), className="row-title"),
                    freshness_label("kpis", tuple(dict.fromkeys(tile.dataset for tile in page.kpis))),
                ],
                className="row-header",
            ),
            kpi_row.layout(),
            html.Div(
                [
                    card(
                        t("card.series", lang),
                        series.layout(lang),
                        extra=freshness_label("series", tuple(dict.fromkeys(line.dataset for line in page.series))),
                    ),
                    card(
                        ward_map.map_title_static(page, lang),
                        ward_map.layout(lang),
                        extra=freshness_label("map", tuple(dict.fromkeys(map_datasets))),
                    ),
                ],
                className="grid-2",
            ),
            html.Div(
                [
                    card(
                        t("card.league", lang),
                        league.layout(page, context.catalogue),
                        extra=freshness_label("league", tuple(dict.fromkeys(d for d, _ in page.league_columns))),
                    ),
                    card(
                        t("card.records", lang),
                        records.layout(page, lang),
                        extra=freshness_label("records", page.records),
                    ),
                ],
                className="grid-league",
            ),
        ]
    )


@callback(
    Output(ids.PAGE, "children"),
    Output(ids.NAV, "children"),
    Input(ids.URL, "pathname"),
    State(ids.URL, "search"),
)
@secured(VIEW)
def display_page(pathname, search):
    """Route a path to its page; a sector outside the account's scope is refused on the server."""
    context = get_context()
    account = current_account()
    lang = request_language()
    nav = navigation(nav_items(account, lang), pathname or OVERVIEW_PATH)
    if pathname in (None, "", OVERVIEW_PATH):
        return overview_layout(lang), nav
    other = page_at(pathname)
    if other is not None:
        if not other.allows(account):
            abort(403)
        return other.render(PageRequest(account=account, lang=lang, search=search or "")), nav
    page = sector_page_for(pathname)
    if page is None:
        return empty_state(t("page.not_found", lang)), nav
    if not account.scope.allows_sector(page.sector):
        abort(403)
    state = view_state_for(page, search, context)
    if state.ward and not account.scope.allows_ward(state.ward):
        abort(403)
    return sector_layout(page, state, context, account, lang), nav


@callback(
    Output(ids.OVERVIEW_TILES, "children"),
    Input(ids.VERSIONS, "data"),
)
@secured(VIEW)
def update_overview(_versions):
    """Headline KPI of every visible sector, each linking to its page."""
    context = get_context()
    account = current_account()
    lang = request_language()
    tiles = []
    pages = {p.sector: p.path for p in SECTOR_PAGES}
    for sector, dataset_id in headline_datasets(context, account):
        dataset = context.catalogue.get(dataset_id)
        kpi = dataset.kpi(dataset.headline_kpi)
        snapshot = context.snapshot(dataset_id)
        figure = (
            kpi_value(
                dataset, kpi, snapshot, context.now(), context.crosswalk, wards=account.scope.wards, window=kpi.window
            )
            if snapshot
            else None
        )
        tiles.append(
            kpi_tile(
                ids.kpi_tile(dataset_id, kpi.id),
                t(f"sector.{sector}", lang),
                figure.value if figure else None,
                lang,
                unit=kpi.unit,
                decimals=kpi.decimals,
                caption=t(f"kpi.{dataset_id}.{kpi.id}", lang),
                href=pages.get(sector),
            )
        )
    return tiles


def _clicked_ward(click: dict | None) -> str | None:
    """The ward of a map click: a ward polygon's location, or a marker's ward (customdata[0])."""
    if not click or not click.get("points"):
        return None
    point = click["points"][0]
    if point.get("location"):
        return str(point["location"])
    custom = point.get("customdata")
    if isinstance(custom, list) and custom and isinstance(custom[0], str):
        return custom[0]
    return None


def next_view(
    state: ViewState,
    trigger,
    *,
    window: str | None,
    start_date: str | None,
    end_date: str | None,
    ward: str | None,
    map_ward: str | None,
    league_cell: dict | None,
    record_cell: dict | None,
    records_dataset: str | None,
    crumb_clicks: int,
    today: date,
    records_datasets: tuple[str, ...] = (),
) -> ViewState:
    """The view after one user action (pure: what ``navigate`` writes into the URL)."""
    if trigger == ids.WINDOW and window in WINDOWS and window != state.window:
        if window == CUSTOM:
            start = state.start or today - timedelta(days=6)
            return replace(state, window=CUSTOM, start=start, end=state.end or today)
        return replace(state, window=window, start=None, end=None)
    if trigger == ids.DATE_RANGE and state.window == CUSTOM and start_date and end_date:
        try:
            start, end = date.fromisoformat(start_date[:10]), date.fromisoformat(end_date[:10])
        except ValueError:
            return state
        if start <= end <= today:
            return replace(state, start=start, end=end)
        return state
    if trigger == ids.WARD and ward != state.ward:
        return state.with_(ward=ward)
    if trigger == ids.MAP and map_ward and map_ward != state.ward:
        return state.with_(ward=map_ward)
    if trigger == ids.LEAGUE and league_cell and league_cell.get("row_id"):
        row_ward = str(league_cell["row_id"])
        return state.with_(ward=row_ward) if row_ward != state.ward else state
    if trigger == ids.RECORDS and record_cell and record_cell.get("row_id") is not None and state.ward:
        return state.with_(record=str(record_cell["row_id"]))
    if trigger == ids.RECORDS_DATASET and records_dataset in records_datasets:
        chosen = None if records_dataset == records_datasets[0] else records_dataset
        return state.with_(records=chosen) if chosen != state.records else state
    if isinstance(trigger, dict) and trigger.get("type") == "breadcrumb" and crumb_clicks:
        if trigger.get("level") == "ward":
            return state.with_(record=None)
        return state.with_(ward=None)
    return state


@callback(
    Output(ids.URL, "search"),
    Input(ids.WINDOW, "value"),
    Input(ids.DATE_RANGE, "start_date"),
    Input(ids.DATE_RANGE, "end_date"),
    Input(ids.WARD, "value"),
    Input(ids.MAP, "clickData"),
    Input(ids.LEAGUE, "active_cell"),
    Input(ids.RECORDS, "active_cell"),
    Input(ids.RECORDS_DATASET, "value"),
    Input(ids.breadcrumb_link(ALL), "n_clicks"),
    State(ids.URL, "search"),
    State(ids.URL, "pathname"),
    prevent_initial_call=True,
)
@secured(VIEW)
def navigate(
    window, start_date, end_date, ward, click, league_cell, record_cell, records_dataset, _crumbs, search, pathname
):
    """Controls, map and league clicks, row clicks and breadcrumbs write the view into the URL.

    Each step is a new history entry, so the browser's back button walks the drill-down back and a
    copied link reproduces the view. Wards outside the account's scope are refused on the server.
    """
    context = get_context()
    account = current_account()
    page = sector_page_for(pathname or "")
    if page is None or not account.scope.allows_sector(page.sector):
        abort(403)
    state = view_state_for(page, search, context)
    trigger = ctx.triggered_id
    crumb_clicks = ctx.triggered[0].get("value") if ctx.triggered and isinstance(trigger, dict) else 0
    new = next_view(
        state,
        trigger,
        window=window,
        start_date=start_date,
        end_date=end_date,
        ward=ward,
        map_ward=_clicked_ward(click),
        league_cell=league_cell,
        record_cell=record_cell,
        records_dataset=records_dataset,
        crumb_clicks=crumb_clicks or 0,
        today=to_local_naive(context.now()).date(),
        records_datasets=page.records,
    )
    if new.ward and (new.ward not in context.ward_codes or not account.scope.allows_ward(new.ward)):
        abort(403)
    query = new.query()
    return query if query != search else no_update


@callback(
    Output(ids.BREADCRUMB, "children"),
    Output(ids.WARD, "value"),
    Output(ids.WINDOW, "value"),
    Output(ids.DATE_RANGE_BOX, "style"),
    Output(ids.DATE_RANGE, "start_date"),
    Output(ids.DATE_RANGE, "end_date"),
    Output(ids.RECORDS_DATASET, "value"),
    Input(ids.URL, "search"),
    State(ids.URL, "pathname"),
)
@secured(VIEW)
def update_breadcrumb(search, pathname):
    """Province › ward › record; each earlier step goes back up. Keeps the controls in step with the URL

    (the browser's back and forward buttons change the URL, the controls follow)."""
    context = get_context()
    lang = request_language()
    page = sector_page_for(pathname or "")
    if page is None:
        raise PreventUpdate
    state = view_state_for(page, search, context)
    scope = current_account().scope
    if not scope.allows_sector(page.sector) or (state.ward and not scope.allows_ward(state.ward)):
        abort(403)
    controls = (
        state.ward,
        state.window,
        {} if state.window == CUSTOM else {"display": "none"},
        state.start.isoformat() if state.start else no_update,
        state.end.isoformat() if state.end else no_update,
        state.records or page.records[0],
    )
    if not state.ward:
        return [html.Span(t("breadcrumb.province", lang), className="crumb current")], *controls
    province = html.Button(
        t("breadcrumb.province", lang), id=ids.breadcrumb_link("province"), n_clicks=0, className="crumb"
    )
    separator = html.Span(" › ", className="crumb-sep")
    ward_name = context.ward_name(state.ward, lang)
    if not state.record:
        return [province, separator, html.Span(ward_name, className="crumb current")], *controls
    ward = html.Button(ward_name, id=ids.breadcrumb_link("ward"), n_clicks=0, className="crumb")
    record = html.Span(t("breadcrumb.record", lang, number=state.record), className="crumb current")
    return [province, separator, ward, html.Span(" › ", className="crumb-sep"), record], *controls


def _freshness(context: AppContext, dataset_ids: tuple[str, ...], lang: str) -> dict[str, Any]:
    """What the browser needs to age the data on its own clock."""
    datasets = {}
    for dataset_id in dataset_ids:
        snapshot = context.snapshot(dataset_id)
        if snapshot is None or not snapshot.meta.get("polled_at"):
            continue
        poll_seconds = context.catalogue.get(dataset_id).poll_seconds
        datasets[dataset_id] = {
            "polled_at_ms": int(datetime.fromisoformat(snapshot.meta["polled_at"]).timestamp() * 1000),
            "late_after_s": poll_seconds * LATE_FACTOR,
            "stale_after_s": poll_seconds * STALE_FACTOR,
        }
    return {"datasets": datasets, "labels": freshness_labels(lang)}


def freshness_labels(lang: str) -> dict[str, str]:
    """Raw catalogue templates for the browser's freshness labels (it fills {age} and {n} itself)."""
    strings = catalogue(lang)
    labels = {key: strings[f"freshness.{key}"] for key in ("live", "late", "stale", "unknown", "age")}
    return labels | {unit: strings[f"units.{unit}"] for unit in ("seconds", "minutes", "hours", "days")}


@callback(
    Output(ids.VERSIONS, "data"),
    Output(ids.FRESHNESS_STORE, "data"),
    Output(ids.UNAVAILABLE, "children"),
    Input(ids.REFRESH, "n_intervals"),
    Input(ids.URL, "pathname"),
    State(ids.VERSIONS, "data"),
)
@secured(VIEW)
def refresh_tick(_n, pathname, known_versions):
    """The page's one refresh tick: a cheap version check; nothing is sent when nothing changed."""
    context = get_context()
    account = current_account()
    lang = request_language()
    page = sector_page_for(pathname or "")
    if page is not None and not account.scope.allows_sector(page.sector):
        abort(403)
    wanted = page_datasets(pathname, context, account)
    all_versions = context.store.versions()
    versions = {d: all_versions.get(d) for d in wanted}
    status = context.store.get_status(STATUS_NAME) or {}
    since = status.get("unavailable_since")
    if not any(v is not None for v in versions.values()) and since is None and not all_versions:
        since = "never"
    banner = ""
    if since == "never":
        banner = t("freshness.unavailable_never", lang)
    elif since:
        banner = t("freshness.unavailable_since", lang, since=format_datetime(datetime.fromisoformat(since), lang))
    state = {"versions": versions, "banner": banner}
    if known_versions == state and ctx.triggered_id == ids.REFRESH:
        raise PreventUpdate
    return state, _freshness(context, wanted, lang), banner


clientside_callback(
    "function (tick, info) { return window.dash_clientside.ioc.freshness(tick, info); }",
    Output(ids.FRESHNESS_BADGE, "children"),
    Output(ids.FRESHNESS_BADGE, "className"),
    Input(ids.CLOCK_TICK, "n_intervals"),
    Input(ids.FRESHNESS_STORE, "data"),
)


clientside_callback(
    "function (tick, info) { return window.dash_clientside.ioc.panelFreshness(tick, info); }",
    Output(ids.panel_freshness(ALL, ALL), "children"),
    Output(ids.panel_freshness(ALL, ALL), "className"),
    Input(ids.CLOCK_TICK, "n_intervals"),
    Input(ids.FRESHNESS_STORE, "data"),
)
