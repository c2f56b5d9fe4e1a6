"""Card: ward choropleth. Boundaries go to the browser once; refreshes patch only the values."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from dash import Output, Patch, State, ctx, dcc

from config.roles import VIEW
from dashboards.registry import callback
from dashboards.sectors import SectorPage
from dashboards.security import secured
from dashboards.view import SECTOR_CARD_INPUTS, SectorView, resolve_sector_view
from data_sources.kpis import kpi_by_ward
from layouts import ids
from layouts.i18n import DEFAULT_LANGUAGE, format_number, t
from layouts.theme import SEQUENTIAL, base_layout, graph_config

PER_CAPITA = 10_000


def layout(lang: str = DEFAULT_LANGUAGE) -> dcc.Graph:
    """The map graph, filled by the callback; Plotly's locale follows the interface language."""
    return dcc.Graph(id=ids.MAP, config=graph_config(lang, scrollZoom=True), className="ward-map")


def build_ward_values(view: SectorView) -> pd.DataFrame:
    """Per current ward in scope: code, name, value (per 10,000 residents when configured)."""
    context, page = view.context, view.page
    dataset = context.catalogue.get(page.map_dataset)
    kpi = dataset.kpi(page.map_kpi)
    units = context.units_in_scope(view.account.scope)
    codes = list(units["code"])
    snapshot = context.snapshot(dataset.id)
    if snapshot is None:
        values = pd.Series(float("nan"), index=codes)
    else:
        values = kpi_by_ward(dataset, kpi, snapshot, context.now(), context.crosswalk, codes, window=view.state.window)
    frame = pd.DataFrame({"code": codes, "name": list(units["name" if view.lang != "en" else "name_en"])})
    frame["count"] = values.reindex(codes).to_numpy()
    if page.map_per_capita:
        population = context.population.reindex(codes).to_numpy()
        frame["value"] = frame["count"] / population * PER_CAPITA
    else:
        frame["value"] = frame["count"]
    return frame


def build_ward_map(
    geojson: dict,
    values: pd.DataFrame,
    *,
    title: str,
    hover_count: str,
    lang: str,
    selected: str | None,
    approximate_note: str | None,
    center: dict[str, float],
) -> go.Figure:
    """A choropleth on a blank background (no tiles, no vendor key, works offline)."""
    text = [
        f"{name}<br>{title}: {format_number(value, lang, 1)}<br>{hover_count}: {format_number(count, lang)}"
        for name, value, count in zip(values["name"], values["value"], values["count"], strict=True)
    ]
    selected_points = [i for i, code in enumerate(values["code"]) if code == selected] if selected else None
    figure = go.Figure(
        go.Choroplethmap(
            geojson=geojson,
            locations=values["code"],
            z=values["value"].fillna(0),
            featureidkey="id",
            colorscale=SEQUENTIAL,
            marker={"opacity": 0.8, "line": {"width": 0.8, "color": "#ffffff"}},
            colorbar={"thickness": 12, "len": 0.8},
            text=text,
            hoverinfo="text",
            selectedpoints=selected_points,
            selected={"marker": {"opacity": 1.0}},
            unselected={"marker": {"opacity": 0.35}},
        ),
        layout=base_layout(
            uirevision="ward-map",
            margin={"l": 0, "r": 0, "t": 0, "b": 0},
            map={"style": "white-bg", "center": center, "zoom": 8.1},
        ),
    )
    if approximate_note:
        figure.add_annotation(
            text=approximate_note,
            showarrow=False,
            xref="paper",
            yref="paper",
            x=0.01,
            y=0.01,
            xanchor="left",
            yanchor="bottom",
            bgcolor="rgba(255,255,255,0.85)",
            font={"size": 12},
        )
    return figure


def map_title_static(page: SectorPage, lang: str) -> str:
    """Map title, e.g. "Open reports per 10,000 residents"."""
    base = t(f"kpi.{page.map_dataset}.{page.map_kpi}", lang)
    return t("map.per_capita", lang, measure=base) if page.map_per_capita else base


def map_title(view: SectorView) -> str:
    """Map title (used in hover text) for the view's page."""
    return map_title_static(view.page, view.lang)


@callback(
    Output(ids.MAP, "figure"),
    *SECTOR_CARD_INPUTS,
    State(ids.MAP, "figure"),
)
@secured(VIEW)
def update_ward_map(_versions, search, pathname, current_figure):
    """First call draws boundaries and values; later calls patch values and selection only."""
    view = resolve_sector_view(pathname, search)
    values = build_ward_values(view)
    if current_figure and current_figure.get("data") and ctx.triggered_id is not None:
        patch = Patch()
        patch["data"][0]["z"] = values["value"].fillna(0).tolist()
        patch["data"][0]["selectedpoints"] = (
            [i for i, code in enumerate(values["code"]) if code == view.state.ward] if view.state.ward else None
        )
        return patch
    context = view.context
    note = t("map.approximate", view.lang) if context.wards_approximate else None
    center = {"lat": float(context.units["lat"].mean()), "lon": float(context.units["lon"].mean())}
    return build_ward_map(
        context.ward_geojson,
        values,
        title=map_title(view),
        hover_count=t("map.count", view.lang),
        lang=view.lang,
        selected=view.state.ward,
        approximate_note=note,
        center=center,
    )
