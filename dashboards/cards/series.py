"""Card: how the sector's main measures moved over the selected time range."""

from __future__ import annotations

import pandas as pd
from dash import Output, dcc

from config.roles import VIEW
from dashboards.registry import callback
from dashboards.security import secured
from dashboards.view import SECTOR_CARD_INPUTS, SectorView, resolve_sector_view
from data_sources.figures import line_values, series_frame
from layouts import ids
from layouts.i18n import DEFAULT_LANGUAGE, t
from layouts.theme import base_layout, date_axis, graph_config


def layout(lang: str = DEFAULT_LANGUAGE) -> dcc.Graph:
    """The series graph, filled by the callback; Plotly's locale follows the interface language."""
    return dcc.Graph(id=ids.SERIES, config=graph_config(lang), className="series-graph")


def build_series_figure(
    series: pd.DataFrame,
    labels: dict[str, str],
    empty_message: str,
    *,
    secondary: frozenset[str] = frozenset(),
    lang: str = DEFAULT_LANGUAGE,
) -> dict:
    """Lines per column of ``series`` (besides ``time``); an annotated empty figure when there is nothing to draw.

    ``labels`` maps column -> legend label; columns in ``secondary`` use a right-hand axis. A line
    whose values are all zero or missing counts as nothing to draw; when every line is like that,
    the figure says so in words. A plain figure dict: built on every refresh, never validated.
    """
    layout = base_layout(uirevision="series", hovermode="x unified").to_plotly_json()
    layout["xaxis"] = {**layout.get("xaxis", {}), **date_axis(lang)}
    columns = [c for c in labels if c in series]
    values = series[columns].astype("float64") if columns else pd.DataFrame()
    if series.empty or not columns or not (values.fillna(0) != 0).to_numpy().any():
        layout["annotations"] = [
            {"text": empty_message, "showarrow": False, "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5}
        ]
        layout["xaxis"] = {**layout.get("xaxis", {}), "visible": False}
        layout["yaxis"] = {**layout.get("yaxis", {}), "visible": False}
        return {"data": [], "layout": layout}
    times = [moment.isoformat() for moment in pd.to_datetime(series["time"])]
    traces = [
        {
            "type": "scatter",
            "x": times,
            "y": [None if pd.isna(v) else float(v) for v in values[column]],
            "name": labels[column],
            "mode": "lines",
            "connectgaps": True,
            "yaxis": "y2" if column in secondary else "y",
        }
        for column in columns
    ]
    if secondary & set(columns):
        layout["yaxis2"] = {"overlaying": "y", "side": "right", "rangemode": "tozero", "showgrid": False}
        layout["margin"] = {**layout["margin"], "r": 48}
    return {"data": traces, "layout": layout}


def view_series(view: SectorView) -> pd.DataFrame:
    """One column per declared line (``time`` first), every line on the same buckets."""
    context, page = view.context, view.page
    by_dataset: dict[str, list] = {}
    for line in page.series:
        by_dataset.setdefault(line.dataset, []).append(line)
    lines = pd.DataFrame()
    for dataset_id, dataset_lines in by_dataset.items():
        snapshot = context.snapshot(dataset_id)
        if snapshot is None:
            continue
        measures = list(dict.fromkeys(m for line in dataset_lines for m in (line.measure, line.over) if m))
        frame = series_frame(
            context.catalogue.get(dataset_id),
            measures,
            snapshot,
            context.now(),
            context.crosswalk,
            wards=view.wards,
            window=view.state.window if view.span is None else "all",
            span=view.span,
        )
        if frame.empty:
            continue
        values = pd.DataFrame({"time": frame["time"]})
        for line in dataset_lines:
            values[line.name] = line_values(frame, line.measure, line.over, line.scale)
        lines = values if lines.empty else lines.merge(values, on="time", how="outer")
    return lines.sort_values("time").reset_index(drop=True) if not lines.empty else lines


@callback(
    Output(ids.SERIES, "figure"),
    *SECTOR_CARD_INPUTS,
)
@secured(VIEW)
def update_series(_versions, search, pathname):
    """Rebuild the series when a snapshot or the view changes."""
    view = resolve_sector_view(pathname, search)
    labels = {line.name: t(f"series.{line.name}", view.lang) for line in view.page.series}
    empty = t(f"empty.{view.page.sector}", view.lang, place=view.place_label(), window=view.window_label())
    secondary = frozenset(line.name for line in view.page.series if line.axis == 2)
    return build_series_figure(view_series(view), labels, empty, secondary=secondary, lang=view.lang)
