"""Card: the row of KPI tiles at the top of a sector page."""

from __future__ import annotations

from dash import Output, html

from config.roles import VIEW
from dashboards.registry import callback
from dashboards.security import secured
from dashboards.view import SECTOR_CARD_INPUTS, SectorView, resolve_sector_view
from data_sources.kpis import KpiFigure, compute_kpi
from layouts import ids
from layouts.components import kpi_tile
from layouts.i18n import t


def layout() -> html.Div:
    """Placeholder filled by the callback."""
    return html.Div(id=ids.KPI_ROW, className="kpi-row")


def kpi_caption(figure: KpiFigure, window: str, lang: str) -> str:
    """What the figure covers: its window, or "now" for current-state and latest values."""
    kind = figure.kpi.kind
    if kind.startswith("state") or kind.startswith("latest"):
        return t("window.now", lang)
    return t(f"window.{window}", lang)


def build_kpi_tiles(figures: list[tuple[str, KpiFigure, str]], lang: str) -> list[html.Div]:
    """Tiles from (dataset id, figure, window) triples."""
    return [
        kpi_tile(
            ids.kpi_tile(dataset, figure.kpi.id),
            t(f"kpi.{dataset}.{figure.kpi.id}", lang),
            figure.value,
            lang,
            unit=figure.kpi.unit,
            decimals=figure.kpi.decimals,
            caption=kpi_caption(figure, window, lang),
        )
        for dataset, figure, window in figures
    ]


def sector_figures(view: SectorView) -> list[tuple[str, KpiFigure, str]]:
    """The page's KPIs over the selected window and wards."""
    context = view.context
    figures = []
    for dataset_id, kpi_id in view.page.kpis:
        dataset = context.catalogue.get(dataset_id)
        kpi = dataset.kpi(kpi_id)
        snapshot = context.snapshot(dataset_id)
        # today's count stays "today"; window KPIs follow the selected time range
        window = kpi.window if kpi.window in ("today", "all", "latest") else view.state.window
        if snapshot is None:
            figures.append((dataset_id, KpiFigure(kpi, None), window))
            continue
        figure = compute_kpi(dataset, kpi, snapshot, context.now(), context.crosswalk, wards=view.wards, window=window)
        figures.append((dataset_id, figure, window))
    return figures


@callback(
    Output(ids.KPI_ROW, "children"),
    *SECTOR_CARD_INPUTS,
)
@secured(VIEW)
def update_kpi_row(_versions, search, pathname):
    """Rebuild the tiles when a snapshot or the view changes."""
    view = resolve_sector_view(pathname, search)
    return build_kpi_tiles(sector_figures(view), view.lang)
