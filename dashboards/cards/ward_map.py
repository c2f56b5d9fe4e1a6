"""Card: the ward map. Boundaries go to the browser once; refreshes patch only the values.

Traces, in a fixed order so a refresh can patch them by index:
0. every ward in scope, a light fill (clickable, "no data" where the value trace has none);
1. the choropleth values (wards with a value);
2. the selected ward's outline;
3... the page's marker layers (entities at their latest value, row points, density).
Blank background by default (no tiles, no vendor key, works offline); ``map_tile_url`` adds a
raster base map. ``uirevision`` keeps the user's zoom and pan across refreshes.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from dash import Output, Patch, State, ctx, dcc, html, no_update

from config.roles import VIEW
from dashboards.cards import map_layers
from dashboards.registry import callback
from dashboards.sectors import Markers, Points, SectorPage
from dashboards.security import secured
from dashboards.view import SECTOR_CARD_INPUTS, SectorView, resolve_sector_view
from data_sources.figures import entity_latest, entity_latest_key, shared_figure
from data_sources.kpis import WARD
from data_sources.points import read_points
from layouts import ids
from layouts.i18n import DEFAULT_LANGUAGE, format_number, t
from layouts.theme import SEQUENTIAL, base_layout, graph_config

PER_CAPITA = 10_000
BASE, VALUES, SELECTION = 0, 1, 2
FIRST_LAYER = 3
BASE_FILL = "#eef1f4"


def layout(lang: str = DEFAULT_LANGUAGE) -> html.Div:
    """The map graph and its legend/notes, filled by the callback; Plotly's locale follows the language."""
    return html.Div(
        [
            dcc.Graph(id=ids.MAP, config=graph_config(lang, scrollZoom=True), className="ward-map"),
            html.Div(id=ids.MAP_NOTE, className="map-note"),
            dcc.Store(id=ids.MAP_DRAWN, data=None),
        ]
    )


def build_ward_values(view: SectorView) -> pd.DataFrame:
    """Per current ward in scope: code, name, count, value (per 10,000 residents when configured)."""
    codes, names, counts, values = ward_values(view)
    return pd.DataFrame({"code": codes, "name": names, "count": counts, "value": values})


def ward_values(view: SectorView) -> tuple[list[str], list[str], np.ndarray, np.ndarray]:
    """``build_ward_values`` as codes, names, counts and values (arrays shared: read only)."""
    context, choropleth = view.context, view.page.choropleth
    units = context.units_in_scope(view.account.scope)
    codes = list(units["code"])
    counts = view.per_ward_values(choropleth.dataset, choropleth.kpi, codes)
    values = counts
    if choropleth.per_capita:
        values = counts / context.population.reindex(codes).to_numpy(dtype="float64") * PER_CAPITA
    return codes, list(units["name" if view.lang != "en" else "name_en"]), counts, values


@dataclass(frozen=True)
class LayerData:
    """One marker layer's trace and its legend entries (colour, label)."""

    trace: dict
    legend: list[tuple[str, str]]
    empty_message: str | None = None
    fingerprint: str = ""
    """Equal fingerprints: the browser already has this layer (thousands of points are not resent)."""


LAYERS_KEPT = 64
"""Point layers kept per process (by points digest, language and scope), least recently used dropped first."""
_point_layers: OrderedDict[tuple, LayerData] = OrderedDict()
_point_layers_lock = threading.Lock()


def build_layer(view: SectorView, layer: Markers | Points) -> LayerData:
    """The trace of one declared layer for the view (scope-filtered), built once per snapshot version
    (markers) or per published points (rows), language and scope, and shared (never modify it)."""
    context, lang = view.context, view.lang
    scope = view.account.scope.wards
    if isinstance(layer, Markers):
        snapshot = context.snapshot(layer.dataset)
        if snapshot is None:
            return _build_layer(view, layer, None, "")
        dataset = context.catalogue.get(layer.dataset)
        key = ("layer", layer, lang) + entity_latest_key(
            dataset, layer.value, snapshot, context.now(), context.crosswalk, wards=scope
        )
        return shared_figure(snapshot, context.crosswalk, key, lambda: _build_layer(view, layer, None, ""))
    points, digest = read_points(context.store, layer.dataset, layer.state)
    key = (layer, digest, lang, scope)
    with _point_layers_lock:
        found = _point_layers.get(key) if digest else None
        if found is not None:
            _point_layers.move_to_end(key)
            return found
    built = _build_layer(view, layer, points, digest)
    if digest:
        with _point_layers_lock:
            _point_layers[key] = built
            while len(_point_layers) > LAYERS_KEPT:
                _point_layers.popitem(last=False)
    return built


def _build_layer(view: SectorView, layer: Markers | Points, points: pd.DataFrame | None, digest: str) -> LayerData:
    context, lang = view.context, view.lang
    dataset = context.catalogue.get(layer.dataset)
    name = t(f"layer.{layer.name}", lang)
    scope = view.account.scope.wards
    if isinstance(layer, Markers):
        snapshot = context.snapshot(layer.dataset)
        rows = (
            entity_latest(dataset, layer.value, snapshot, context.now(), context.crosswalk, wards=scope, shared=True)
            if snapshot is not None
            else pd.DataFrame(columns=["entity", "name", "lat", "lon", WARD, "value"])
        )
        categories = map_layers.COLOURS[layer.colour](rows) if not rows.empty else []
        kpi = next((k for k in dataset.kpis if k.id == layer.value), None)
        trace = map_layers.entity_trace(
            rows if WARD == "ward" else rows.rename(columns={WARD: "ward"}),
            categories,
            name=name,
            value_label=t(f"kpi.{dataset.id}.{layer.value}", lang) if kpi else name,
            unit=kpi.unit if kpi else "",
            decimals=kpi.decimals if kpi else 1,
            lang=lang,
        )
        seen = {c.key: c for c in categories if c is not None}
        legend = [(c.colour, map_layers.category_label(c, lang)) for c in seen.values()]
        if any(c is None for c in categories):
            legend.append((map_layers.NO_DATA_COLOUR, map_layers.category_label(None, lang)))
        empty = t("layer.none", lang, layer=name) if rows.empty else None
        return LayerData(trace, legend, empty, layer_fingerprint(trace))
    if not points.empty:
        points = points.assign(ward=points[dataset.unit].astype("string").map(context.crosswalk))
        points = points.loc[points["ward"].notna()]
        if scope is not None:
            points = points.loc[points["ward"].isin(scope)]
    else:
        points = pd.DataFrame(columns=[dataset.latitude, dataset.longitude, "ward", dataset.event_time])
    if layer.style == "density":
        trace = map_layers.density_trace(points, name=name, lat=dataset.latitude, lon=dataset.longitude)
        legend = [("#f98e09", name)]
    else:

        def kind_label(value: str) -> str:
            return t(f"value.{layer.colour_by}.{value}", lang) if layer.colour_by else value

        trace = map_layers.points_trace(
            points,
            name=name,
            lat=dataset.latitude,
            lon=dataset.longitude,
            ward="ward",
            colour_by=layer.colour_by,
            label=kind_label,
            lang=lang,
            event_time=dataset.event_time,
        )
        kinds = map_layers.point_kind_colours(points[layer.colour_by]) if layer.colour_by in points else {}
        legend = [(colour, f"{name}: {kind_label(kind)}") for kind, colour in kinds.items()] or []
    empty = t("layer.none", lang, layer=name) if points.empty else None
    scope_key = ",".join(sorted(scope)) if scope is not None else "*"
    fingerprint = hashlib.blake2b(f"{digest}|{lang}|{scope_key}".encode(), digest_size=8).hexdigest()
    return LayerData(trace, legend, empty, fingerprint if digest else "")


def value_text(values: pd.DataFrame, title: str, hover_count: str, lang: str, decimals: int) -> list[str]:
    """Hover text of the value trace."""
    return value_lines(values["name"], values["value"], values["count"], title, hover_count, lang, decimals)


def value_lines(names, values, counts, title: str, hover_count: str, lang: str, decimals: int) -> list[str]:
    """Hover text of the value trace from parallel sequences of names, values and counts."""
    return [
        f"<b>{name}</b><br>{title}: {format_number(value, lang, decimals)}"
        f"<br>{hover_count}: {format_number(count, lang)}"
        for name, value, count in zip(names, values, counts, strict=True)
    ]


def build_ward_map(
    geojson: dict,
    values: pd.DataFrame,
    layers: list[dict],
    *,
    title: str,
    hover_count: str,
    no_data: str,
    lang: str,
    decimals: int,
    selected: str | None,
    center: dict[str, float],
    tile_url: str | None = None,
    higher_is_better: bool = False,
) -> go.Figure:
    """The full map figure: boundaries (sent once), values, selection outline, marker layers.

    Red always means "look here": the colour scale runs the other way for a KPI where higher is
    better (an on-time rate), so its worst wards are the red ones.
    """
    with_value = values.loc[values["value"].notna()]
    base = go.Choroplethmap(
        geojson=geojson,
        locations=values["code"].tolist(),
        z=[0] * len(values),
        featureidkey="id",
        colorscale=[[0, BASE_FILL], [1, BASE_FILL]],
        showscale=False,
        marker={"opacity": 0.9, "line": {"width": 0.6, "color": "#9aa4ae"}},
        text=[f"<b>{n}</b><br>{no_data}" for n in values["name"]],
        hoverinfo="text",
        name="base",
    )
    coloured = go.Choroplethmap(
        geojson=geojson,
        locations=with_value["code"].tolist(),
        z=with_value["value"].tolist(),
        featureidkey="id",
        colorscale=SEQUENTIAL,
        reversescale=higher_is_better,
        zmin=None if higher_is_better else 0,
        marker={"opacity": 0.8, "line": {"width": 0.8, "color": "#ffffff"}},
        colorbar={"thickness": 12, "len": 0.7, "title": {"text": ""}},
        text=value_text(with_value, title, hover_count, lang, decimals),
        hoverinfo="text",
        name="values",
    )
    outline = go.Choroplethmap(
        geojson=geojson,
        locations=[selected] if selected else [],
        z=[1] if selected else [],
        featureidkey="id",
        colorscale=[[0, "rgba(0,0,0,0)"], [1, "rgba(0,0,0,0)"]],
        showscale=False,
        marker={"line": {"width": 3, "color": "#0d2847"}},
        hoverinfo="skip",
        name="selection",
    )
    style: dict = {"style": "white-bg", "center": center, "zoom": 8.1}
    if tile_url:
        style["layers"] = [{"below": "traces", "sourcetype": "raster", "source": [tile_url], "sourceattribution": ""}]
    layout = base_layout(uirevision="ward-map", margin={"l": 0, "r": 0, "t": 0, "b": 0}, map=style)
    return go.Figure([base, coloured, outline], layout=layout).add_traces(layers)


def layer_fingerprint(trace: dict) -> str:
    """A short digest of a layer's points and looks: equal digests mean nothing to resend."""
    payload = json.dumps([trace.get(k) for k in ("lat", "lon", "text", "marker")], default=str, separators=(",", ":"))
    return hashlib.blake2b(payload.encode("utf-8"), digest_size=8).hexdigest()


def map_title_static(page: SectorPage, lang: str) -> str:
    """Map title, e.g. "Ca bệnh trên 10.000 dân"."""
    return t(f"map.{page.choropleth.dataset}.{page.choropleth.kpi}", lang)


def build_legend(title: str, layers: list[LayerData], lang: str) -> list:
    """The legend and notes under the map: colour chips per layer, empty layers said in words."""
    chips = [
        html.Span([html.Span(className="chip", style={"background": colour}), label], className="legend-item")
        for layer in layers
        for colour, label in layer.legend
    ]
    notes = [html.Div(layer.empty_message, className="layer-empty") for layer in layers if layer.empty_message]
    return [html.Div([html.Span(title, className="legend-title"), *chips], className="legend"), *notes]


@callback(
    Output(ids.MAP, "figure"),
    Output(ids.MAP_NOTE, "children"),
    Output(ids.MAP_DRAWN, "data"),
    *SECTOR_CARD_INPUTS,
    State(ids.MAP_DRAWN, "data"),
)
@secured(VIEW)
def update_ward_map(_versions, search, pathname, drawn):
    """First call draws boundaries, values and layers; later calls patch values, selection and layers only.

    Whether the browser already holds the full figure is told by a small store written with it, so
    the figure (with its boundaries) never travels back to the server.
    """
    view = resolve_sector_view(pathname, search)
    context, lang = view.context, view.lang
    codes, names, counts, values = ward_values(view)
    layers = [build_layer(view, layer) for layer in view.page.markers]
    kpi = context.catalogue.get(view.page.choropleth.dataset).kpi(view.page.choropleth.kpi)
    decimals = 1 if view.page.choropleth.per_capita else kpi.decimals
    title = map_title_static(view.page, lang)
    shown = np.flatnonzero(~np.isnan(values))
    legend = build_legend(title, layers, lang)
    if not len(shown):
        legend.append(
            html.Div(
                t("map.no_values", lang, measure=title, window=view.window_label()),
                className="layer-empty",
            )
        )
    if context.wards_approximate:  # on every refresh: the legend is replaced, not patched
        legend.append(html.Div(t("map.approximate", lang), className="map-approximate"))
    fingerprints = [layer.fingerprint for layer in layers]
    signature = {"path": view.page.path, "traces": FIRST_LAYER + len(layers), "layers": fingerprints}
    if (
        drawn
        and drawn.get("path") == signature["path"]
        and drawn.get("traces") == signature["traces"]
        and ctx.triggered_id
    ):
        patch = Patch()
        shown_values = values[shown].tolist()
        patch["data"][VALUES]["locations"] = [codes[i] for i in shown]
        patch["data"][VALUES]["z"] = shown_values
        patch["data"][VALUES]["text"] = value_lines(
            [names[i] for i in shown], shown_values, counts[shown].tolist(), title, t("map.count", lang), lang, decimals
        )
        patch["data"][SELECTION]["locations"] = [view.state.ward] if view.state.ward else []
        patch["data"][SELECTION]["z"] = [1] if view.state.ward else []
        sent = drawn.get("layers") or []
        for offset, layer in enumerate(layers):
            if offset < len(sent) and fingerprints[offset] and sent[offset] == fingerprints[offset]:
                continue  # an unchanged layer (thousands of points) is not sent again
            for key in ("lat", "lon", "text", "customdata", "marker"):
                if key in layer.trace:
                    patch["data"][FIRST_LAYER + offset][key] = layer.trace[key]
        return patch, legend, signature if signature != drawn else no_update
    center = {"lat": float(context.units["lat"].mean()), "lon": float(context.units["lon"].mean())}
    figure = build_ward_map(
        context.ward_geojson,
        pd.DataFrame({"code": codes, "name": names, "count": counts, "value": values}),
        [layer.trace for layer in layers],
        title=title,
        hover_count=t("map.count", lang),
        no_data=t("legend.no_data", lang),
        lang=lang,
        decimals=decimals,
        selected=view.state.ward,
        center=center,
        tile_url=context.settings.map_tile_url,
        higher_is_better=kpi.good == "up",
    )
    return figure, legend, signature
