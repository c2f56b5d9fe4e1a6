"""Card: how the sector's main measures moved over the selected time range."""

from __future__ import annotations

import json
from functools import lru_cache

import numpy as np
import pandas as pd
from dash import Output, dcc

from config.roles import VIEW
from dashboards.registry import callback
from dashboards.security import secured
from dashboards.view import SECTOR_CARD_INPUTS, SectorView, resolve_sector_view
from data_sources.figures import line_array, series_table
from layouts import ids
from layouts.i18n import DEFAULT_LANGUAGE, t
from layouts.theme import base_layout, date_axis, graph_config


def layout(lang: str = DEFAULT_LANGUAGE) -> dcc.Graph:
    """The series graph, filled by the callback; Plotly's locale follows the interface language."""
    return dcc.Graph(id=ids.SERIES, config=graph_config(lang), className="series-graph")


@lru_cache(maxsize=16)
def _layout_json(lang: str) -> str:
    """The series layout (validated by plotly once per language), as JSON to copy from."""
    layout = base_layout(uirevision="series", hovermode="x unified").to_plotly_json()
    layout["xaxis"] = {**layout.get("xaxis", {}), **date_axis(lang)}
    return json.dumps(layout)


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
    lines = {c: series[c].to_numpy(dtype="float64", na_value=np.nan) for c in labels if c in series}
    times = series["time"].to_numpy() if "time" in series and not series.empty else np.array([], "datetime64[s]")
    return series_figure(times, lines, labels, empty_message, secondary=secondary, lang=lang)


def series_figure(
    times: np.ndarray,
    lines: dict[str, np.ndarray],
    labels: dict[str, str],
    empty_message: str,
    *,
    secondary: frozenset[str] = frozenset(),
    lang: str = DEFAULT_LANGUAGE,
) -> dict:
    """``build_series_figure`` from bucket times and one array per line."""
    layout = json.loads(_layout_json(lang))
    columns = [c for c in labels if c in lines]
    if not len(times) or not columns or not any(np.any(np.nan_to_num(lines[c], nan=0.0) != 0) for c in columns):
        layout["annotations"] = [
            {"text": empty_message, "showarrow": False, "xref": "paper", "yref": "paper", "x": 0.5, "y": 0.5}
        ]
        layout["xaxis"] = {**layout.get("xaxis", {}), "visible": False}
        layout["yaxis"] = {**layout.get("yaxis", {}), "visible": False}
        return {"data": [], "layout": layout}
    stamps = np.datetime_as_string(times.astype("datetime64[us]"), unit="us").tolist()
    x = [stamp.removesuffix(".000000") for stamp in stamps]  # as Timestamp.isoformat() writes them
    traces = [
        {
            "type": "scatter",
            "x": x,
            "y": [None if v != v else v for v in lines[column].tolist()],
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


def view_lines(view: SectorView) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Bucket times and one array per declared line, every line on the same (sorted) buckets."""
    context, page = view.context, view.page
    by_dataset: dict[str, list] = {}
    for line in page.series:
        by_dataset.setdefault(line.dataset, []).append(line)
    parts: list[tuple[np.ndarray, dict[str, np.ndarray]]] = []
    for dataset_id, dataset_lines in by_dataset.items():
        snapshot = context.snapshot(dataset_id)
        if snapshot is None:
            continue
        measures = list(dict.fromkeys(m for line in dataset_lines for m in (line.measure, line.over) if m))
        table = series_table(
            context.catalogue.get(dataset_id),
            measures,
            snapshot,
            context.now(),
            context.crosswalk,
            wards=view.wards,
            window=view.state.window if view.span is None else "all",
            span=view.span,
        )
        if table is None:
            continue
        times = table["time"].to_numpy()
        parts.append(
            (times, {line.name: line_array(table, line.measure, line.over, line.scale) for line in dataset_lines})
        )
    if not parts:
        return np.array([], dtype="datetime64[s]"), {}
    every = parts[0][0]
    for times, _ in parts[1:]:
        if len(times) != len(every) or (times != every).any():
            every = np.union1d(every, times)  # an outer join on the buckets, missing values NaN
    order = np.argsort(every, kind="stable")
    every = every[order]
    lines = {}
    for times, values in parts:
        where = np.searchsorted(every, times)
        for name, array in values.items():
            column = np.full(len(every), np.nan)
            column[where] = array
            lines[name] = column
    return every, lines


def view_series(view: SectorView) -> pd.DataFrame:
    """One column per declared line (``time`` first), every line on the same buckets."""
    times, lines = view_lines(view)
    if not lines:
        return pd.DataFrame()
    return pd.DataFrame({"time": times, **lines})


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
    times, lines = view_lines(view)
    return series_figure(times, lines, labels, empty, secondary=secondary, lang=view.lang)
