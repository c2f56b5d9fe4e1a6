"""Card: the row of KPI tiles at the top of a sector page."""

from __future__ import annotations

from dash import Output, html

from config.roles import VIEW
from dashboards.registry import callback
from dashboards.security import secured
from dashboards.view import SECTOR_CARD_INPUTS, SectorView, resolve_sector_view
from data_sources.figures import kpi_value, shared_figure
from data_sources.kpis import KpiFigure
from layouts import ids
from layouts.components import kpi_tile
from layouts.i18n import format_number, t

NOW_KINDS = ("state", "state_ratio", "latest_ratio", "latest_max", "entity_max", "entity_count")
OWN_WINDOWS = ("today", "all", "latest")
"""KPI windows a tile always keeps: "today" stays today whatever the selected range."""


def layout() -> html.Div:
    """Placeholder filled by the callback."""
    return html.Div(id=ids.KPI_ROW, className="kpi-row")


def tile_window(kpi_window: str, selected: str, fixed: bool) -> str:
    """The window a tile covers: its own for fixed tiles and today/all KPIs, else the selected one."""
    if fixed or kpi_window in OWN_WINDOWS:
        return kpi_window
    return selected


def kpi_caption(figure: KpiFigure, window: str, lang: str, *, range_label: str | None = None) -> str:
    """What the figure covers: "now" for current-state and latest values, else its window; a
    comparison says against what, the baseline's value and the change in words and numbers."""
    if figure.kpi.kind in NOW_KINDS:
        return t("window.now", lang)
    if figure.kpi.kind == "versus":
        return versus_caption(figure, lang)
    if window == "custom" and range_label:
        return range_label
    return t(f"window.{window}", lang)


def versus_caption(figure: KpiFigure, lang: str) -> str:
    """ "vs same hour last week: 41.2 (▼ 8.3%)"; the arrow and the sign carry the direction, not colour."""
    against = t(f"kpi.baseline.{figure.kpi.baseline}", lang)
    if figure.baseline is None:
        return t("kpi.versus_none", lang, against=against)
    baseline = format_number(figure.baseline, lang, figure.kpi.decimals)
    if figure.change is None:
        return t("kpi.versus", lang, against=against, baseline=baseline, change="")
    arrow = "▲" if figure.change > 0 else "▼" if figure.change < 0 else "="
    change = f" ({arrow} {format_number(abs(figure.change), lang, 1)}%)"
    return t("kpi.versus", lang, against=against, baseline=baseline, change=change)


def build_kpi_tiles(figures: list[tuple[str, KpiFigure, str]], lang: str, *, entity_names=None) -> list[html.Div]:
    """Tiles from (dataset id, figure, caption) triples; a figure naming its entity says which."""
    tiles = []
    for dataset, figure, caption in figures:
        if figure.entity and entity_names:
            caption = t("kpi.at_entity", lang, when=caption, name=entity_names(dataset, figure.entity))
        tiles.append(
            kpi_tile(
                ids.kpi_tile(dataset, figure.kpi.id),
                t(f"kpi.{dataset}.{figure.kpi.id}", lang),
                figure.value,
                lang,
                unit=figure.kpi.unit,
                decimals=figure.kpi.decimals,
                caption=caption,
            )
        )
    return tiles


def sector_figures(view: SectorView) -> list[tuple[str, KpiFigure, str]]:
    """The page's KPIs over the selected range and wards, each with its caption."""
    context = view.context
    figures = []
    for tile in view.page.kpis:
        dataset = context.catalogue.get(tile.dataset)
        kpi = dataset.kpi(tile.kpi)
        window = tile_window(kpi.window, view.state.window, tile.fixed)
        span = view.span if window == "custom" else None
        snapshot = context.snapshot(tile.dataset)
        if snapshot is None:
            figure = KpiFigure(kpi, None)
        else:
            figure = kpi_value(
                dataset,
                kpi,
                snapshot,
                context.now(),
                context.crosswalk,
                wards=view.wards,
                window=window if window != "custom" else "all",
                span=span,
            )
        figures.append((tile.dataset, figure, kpi_caption(figure, window, view.lang, range_label=view.window_label())))
    return figures


def entity_namer(view: SectorView):
    """Name of an entity (station, sensor) from its dataset's snapshot."""

    def names_of(snapshot) -> dict[str, str]:
        entities = snapshot.frames.get("entities")
        if entities is None or entities.empty:
            return {}
        names: dict[str, str] = {}
        for key, value in zip(entities["entity"].astype(str), entities["name"], strict=True):
            names.setdefault(key, str(value))  # the first row of an entity, as before
        return names

    def name(dataset_id: str, entity: str) -> str:
        snapshot = view.context.snapshot(dataset_id)
        if snapshot is None:
            return entity
        names = shared_figure(snapshot, view.context.crosswalk, ("entity names",), lambda: names_of(snapshot))
        return names.get(str(entity), entity)

    return name


@callback(
    Output(ids.KPI_ROW, "children"),
    *SECTOR_CARD_INPUTS,
)
@secured(VIEW)
def update_kpi_row(_versions, search, pathname):
    """Rebuild the tiles when a snapshot or the view changes."""
    view = resolve_sector_view(pathname, search)
    return build_kpi_tiles(sector_figures(view), view.lang, entity_names=entity_namer(view))
