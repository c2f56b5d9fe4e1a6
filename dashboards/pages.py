"""Routing, the overview page, the sector page frame, and the shell's server callbacks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from dash import ALL, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate
from flask import abort

from config.roles import VIEW
from dashboards.cards import kpi_row, records, series, ward_map
from dashboards.context import AppContext, get_context
from dashboards.registry import callback, clientside_callback
from dashboards.routes import PageRequest, page_at, registered_pages
from dashboards.sectors import SECTOR_PAGES, WINDOWS, SectorPage, ViewState, parse_view_state, sector_page_for
from dashboards.security import current_account, request_language, secured
from data_sources.kpis import compute_kpi
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


def sector_layout(page: SectorPage, state: ViewState, context: AppContext, account: Account, lang: str) -> html.Div:
    """A sector page: controls, KPI tiles, series, map, and the drill-down records."""
    units = context.units_in_scope(account.scope)
    name_column = "name" if lang != "en" else "name_en"
    controls = html.Div(
        [
            dcc.RadioItems(
                id=ids.WINDOW,
                options=[{"label": t(f"window.{w}", lang), "value": w} for w in WINDOWS],
                value=state.window,
                inline=True,
                className="window-select",
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
    return html.Div(
        [
            html.H1(t(f"sector.{page.sector}", lang)),
            html.Nav(id=ids.BREADCRUMB, className="breadcrumb", **{"aria-label": "breadcrumb"}),
            controls,
            kpi_row.layout(),
            html.Div(
                [
                    card(t("card.series", lang), series.layout(lang)),
                    card(ward_map.map_title_static(page, lang), ward_map.layout(lang)),
                ],
                className="grid-2",
            ),
            card(t("card.records", lang), records.layout()),
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
    state = parse_view_state(search, context.ward_codes)
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
            compute_kpi(dataset, kpi, snapshot, context.now(), context.crosswalk, wards=account.scope.wards)
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


@callback(
    Output(ids.URL, "search"),
    Input(ids.WINDOW, "value"),
    Input(ids.WARD, "value"),
    Input(ids.MAP, "clickData"),
    Input(ids.breadcrumb_link(ALL), "n_clicks"),
    State(ids.URL, "search"),
    State(ids.URL, "pathname"),
    prevent_initial_call=True,
)
@secured(VIEW)
def navigate(window, ward, click, _crumbs, search, pathname):
    """Controls, map clicks and breadcrumbs write the view into the URL (links reproduce it)."""
    context = get_context()
    account = current_account()
    page = sector_page_for(pathname or "")
    if page is None or not account.scope.allows_sector(page.sector):
        abort(403)
    state = parse_view_state(search, context.ward_codes)
    trigger = ctx.triggered_id
    if trigger == ids.WINDOW:
        state = ViewState(window=window if window in WINDOWS else state.window, ward=state.ward)
    elif trigger == ids.WARD:
        state = ViewState(window=state.window, ward=ward)
    elif trigger == ids.MAP and click and click.get("points"):
        state = ViewState(window=state.window, ward=click["points"][0].get("location"))
    elif isinstance(trigger, dict) and trigger.get("type") == "breadcrumb":
        if not any(_crumbs or []):
            raise PreventUpdate
        state = ViewState(window=state.window, ward=None)
    if state.ward and not account.scope.allows_ward(state.ward):
        abort(403)
    query = state.query()
    return query if query != search else no_update


@callback(
    Output(ids.BREADCRUMB, "children"),
    Output(ids.WARD, "value"),
    Input(ids.URL, "search"),
    State(ids.URL, "pathname"),
)
@secured(VIEW)
def update_breadcrumb(search, pathname):
    """Province › ward; the province step goes back up. Keeps the ward filter in step with the URL."""
    context = get_context()
    lang = request_language()
    page = sector_page_for(pathname or "")
    if page is None:
        raise PreventUpdate
    state = parse_view_state(search, context.ward_codes)
    scope = current_account().scope
    if not scope.allows_sector(page.sector) or (state.ward and not scope.allows_ward(state.ward)):
        abort(403)
    province = html.Button(
        t("breadcrumb.province", lang), id=ids.breadcrumb_link("province"), n_clicks=0, className="crumb"
    )
    if not state.ward:
        return [html.Span(t("breadcrumb.province", lang), className="crumb current")], None
    ward = html.Span(context.ward_name(state.ward, lang), className="crumb current")
    return [province, html.Span(" › ", className="crumb-sep"), ward], state.ward


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
    strings = catalogue(lang)  # raw templates: the browser fills {age} and {n} itself
    labels = {key: strings[f"freshness.{key}"] for key in ("live", "late", "stale", "unknown", "age")}
    labels |= {unit: strings[f"units.{unit}"] for unit in ("seconds", "minutes", "hours", "days")}
    return {"datasets": datasets, "labels": labels}


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
