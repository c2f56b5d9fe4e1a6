"""Card: the ward league table. Sortable on every column; a row opens its ward (the drill-down)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from dash import Output, dash_table, html
from dash.dash_table.Format import Format, Group, Scheme

from config.roles import VIEW
from dashboards.registry import callback
from dashboards.sectors import SectorPage
from dashboards.security import secured
from dashboards.view import SECTOR_CARD_INPUTS, SectorView, resolve_sector_view
from layouts import ids
from layouts.components import empty_state
from layouts.i18n import catalogue, t
from layouts.theme import FONT

WARD_COLUMN = "ward_name"
LOCALES = {"vi": {"decimal": ",", "group": "."}, "en": {"decimal": ".", "group": ","}}


def default_sort(page, catalogue) -> list[dict]:
    """Worst first on the first column: highest for "lower is better" KPIs, lowest otherwise."""
    dataset_id, kpi_id = page.league_columns[0]
    kpi = catalogue.get(dataset_id).kpi(kpi_id)
    return [{"column_id": column_id(dataset_id, kpi_id), "direction": "desc" if kpi.good == "down" else "asc"}]


def layout(page: SectorPage, catalogue) -> html.Div:
    """The table, filled by the callback; sorted worst first until the user sorts otherwise."""
    return html.Div(
        [
            html.Div(id=ids.LEAGUE_NOTE, className="league-note"),
            dash_table.DataTable(
                id=ids.LEAGUE,
                data=[],
                columns=[],
                sort_action="native",
                sort_mode="single",
                sort_by=default_sort(page, catalogue),
                page_action="none",
                style_table={"maxHeight": "460px", "overflowY": "auto"},
                style_cell={"fontFamily": FONT, "fontSize": 13, "textAlign": "right", "cursor": "pointer"},
                style_cell_conditional=[{"if": {"column_id": WARD_COLUMN}, "textAlign": "left", "minWidth": 150}],
                style_header={"fontWeight": "600", "whiteSpace": "normal", "height": "auto", "textAlign": "center"},
            ),
        ]
    )


def column_id(dataset: str, kpi: str) -> str:
    """Table column id of one (dataset, KPI) column."""
    return f"{dataset}__{kpi}"


def league_values(view: SectorView) -> tuple[list[str], list[str], dict[str, np.ndarray]]:
    """Codes and names of the wards in scope, and each declared KPI's value per ward (column id -> array)."""
    units = view.context.units_in_scope(view.account.scope)
    codes = list(units["code"])
    names = list(units["name" if view.lang != "en" else "name_en"])
    values = {column_id(d, k): view.per_ward_values(d, k, codes) for d, k in view.page.league_columns}
    return codes, names, values


def league_frame(view: SectorView) -> pd.DataFrame:
    """One row per ward in scope: its name and each declared KPI."""
    codes, names, values = league_values(view)
    return pd.DataFrame({"id": codes, WARD_COLUMN: names, **values})


def league_columns(view: SectorView) -> list[dict]:
    """Table columns: the ward, then each KPI with its unit (numbers in the interface's format)."""
    lang = view.lang
    columns = [{"name": t("league.ward", lang), "id": WARD_COLUMN}]
    for dataset_id, kpi_id in view.page.league_columns:
        kpi = view.context.catalogue.get(dataset_id).kpi(kpi_id)
        own = catalogue(lang).get(f"league.{dataset_id}.{kpi_id}")  # the KPI's name without its own window
        label = own or t(f"kpi.{dataset_id}.{kpi_id}", lang)
        label = t("text.with_unit", lang, label=label, unit=kpi.unit) if kpi.unit else label
        columns.append(
            {
                "name": label,
                "id": column_id(dataset_id, kpi_id),
                "type": "numeric",
                "format": Format(precision=kpi.decimals, scheme=Scheme.fixed, group=Group.yes),
            }
        )
    return columns


def league_rows(codes: list[str], names: list[str], values: dict[str, np.ndarray]) -> list[dict]:
    """One row per ward: id, name and each KPI (None where there is no value)."""
    columns = {name: [None if v != v else v for v in array.tolist()] for name, array in values.items()}
    return [
        {"id": code, WARD_COLUMN: name, **{column: cells[i] for column, cells in columns.items()}}
        for i, (code, name) in enumerate(zip(codes, names, strict=True))
    ]


def build_league(view: SectorView, frame: pd.DataFrame) -> tuple[list, list]:
    """Columns (numbers in the interface's format) and rows of a ``league_frame``."""
    values = {c: frame[c].to_numpy(dtype="float64") for c in frame.columns if c not in ("id", WARD_COLUMN)}
    return league_columns(view), league_rows(list(frame["id"]), list(frame[WARD_COLUMN]), values)


@callback(
    Output(ids.LEAGUE, "data"),
    Output(ids.LEAGUE, "columns"),
    Output(ids.LEAGUE, "locale_format"),
    Output(ids.LEAGUE, "style_data_conditional"),
    Output(ids.LEAGUE_NOTE, "children"),
    *SECTOR_CARD_INPUTS,
)
@secured(VIEW)
def update_league(_versions, search, pathname):
    """Rebuild the league table when a snapshot or the view changes; the selected ward is highlighted."""
    view = resolve_sector_view(pathname, search)
    codes, names, values = league_values(view)
    columns, rows = league_columns(view), league_rows(codes, names, values)
    nothing = not codes or not values or all(np.isnan(array).all() for array in values.values())
    note = (
        empty_state(t("league.empty", view.lang, window=view.window_label()))
        if nothing
        else t("league.hint", view.lang, window=view.window_label())
    )
    highlight = (
        [{"if": {"filter_query": f'{{id}} = "{view.state.ward}"'}, "backgroundColor": "#ddf4ff", "fontWeight": 600}]
        if view.state.ward
        else []
    )
    return rows, columns, LOCALES.get(view.lang, LOCALES["vi"]), highlight, note
