"""Card: how the sector's main measures moved over the selected time range."""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from dash import Output, dcc

from config.roles import VIEW
from dashboards.registry import callback
from dashboards.security import secured
from dashboards.view import SECTOR_CARD_INPUTS, resolve_sector_view
from data_sources.kpis import measure_series
from layouts import ids
from layouts.i18n import DEFAULT_LANGUAGE, t
from layouts.theme import base_layout, date_axis, graph_config


def layout(lang: str = DEFAULT_LANGUAGE) -> dcc.Graph:
    """The series graph, filled by the callback; Plotly's locale follows the interface language."""
    return dcc.Graph(id=ids.SERIES, config=graph_config(lang), className="series-graph")


def build_series_figure(
    series: pd.DataFrame, labels: dict[str, str], empty_message: str, lang: str = DEFAULT_LANGUAGE
) -> go.Figure:
    """Lines per measure over time; an annotated empty figure when there is nothing to draw."""
    figure = go.Figure(layout=base_layout(uirevision="series", hovermode="x unified"))
    figure.update_xaxes(**date_axis(lang))
    measures = [m for m in labels if m in series]
    if series.empty or not measures or float(series[measures].to_numpy().sum()) == 0:
        figure.add_annotation(text=empty_message, showarrow=False, xref="paper", yref="paper", x=0.5, y=0.5)
        figure.update_xaxes(visible=False)
        figure.update_yaxes(visible=False)
        return figure
    for measure in measures:
        figure.add_trace(go.Scatter(x=series["time"], y=series[measure], name=labels[measure], mode="lines"))
    return figure


@callback(
    Output(ids.SERIES, "figure"),
    *SECTOR_CARD_INPUTS,
)
@secured(VIEW)
def update_series(_versions, search, pathname):
    """Rebuild the series when a snapshot or the view changes."""
    view = resolve_sector_view(pathname, search)
    context, page = view.context, view.page
    dataset = context.catalogue.get(page.series_dataset)
    snapshot = context.snapshot(dataset.id)
    labels = {m: t(f"measure.{dataset.id}.{m}", view.lang) for m in page.series_measures}
    empty = t("empty.no_data_window", view.lang, window=t(f"window.{view.state.window}", view.lang))
    if snapshot is None:
        return build_series_figure(pd.DataFrame(), labels, empty, view.lang)
    series = measure_series(
        dataset,
        list(page.series_measures),
        snapshot,
        context.now(),
        context.crosswalk,
        window=view.state.window,
        wards=view.wards,
    )
    return build_series_figure(series, labels, empty, view.lang)
