"""Page "Đơn vị hành chính" (administrative units): the registry the dashboards aggregate to.

Today's wards and communes of the province with their type, area, population (and where it comes
from: the demo's is synthetic and says so), centroid and the pre-2025 units each absorbed; how the
ward boundaries were obtained and which codes did not match; the split-ward rule in force.
"""

from __future__ import annotations

import pandas as pd
from dash import dash_table, html

from config.roles import VIEW
from dashboards.context import AppContext, get_context
from dashboards.routes import Page, PageRequest, register_page
from data_sources.admin_units import REFORM_DATE, unit_registry
from data_sources.population import is_synthetic
from layouts.components import card
from layouts.i18n import format_date, format_number, t

PATH = "/units"
PAGE_SIZE = 50


def build_units_table(registry: pd.DataFrame, legacy: pd.DataFrame, lang: str) -> tuple[list[dict], list[dict]]:
    """Columns and rows: code, name, type (translated), area, population, centroid, former units."""
    name_column = "name_en" if lang == "en" else "name"
    absorbed = legacy.groupby("new_code")["old_name"].agg(lambda names: ", ".join(sorted(names))) if len(legacy) else {}
    rows = [
        {
            "code": unit.code,
            "name": getattr(unit, name_column),
            "type": t(f"unit_type.{unit.type_key}", lang),
            "area": format_number(unit.area_km2, lang, 2),
            "population": format_number(unit.population, lang),
            "centroid": f"{format_number(unit.lat, lang, 4)}; {format_number(unit.lon, lang, 4)}",
            "former": absorbed.get(unit.code, "") if len(legacy) else "",
        }
        for unit in registry.itertuples(index=False)
    ]
    columns = [
        {"id": key, "name": t(f"units.column.{key}", lang)}
        for key in ("code", "name", "type", "area", "population", "centroid", "former")
    ]
    return columns, rows


def build_summary(context: AppContext, registry: pd.DataFrame, lang: str) -> list[html.P]:
    """Counts by type, the boundary source and mismatches, the crosswalk and its split rule, the population."""
    counts = registry["type_key"].value_counts()
    kinds = ", ".join(
        f"{format_number(counts[key], lang)} {t(f'unit_type.{key}', lang).lower()}" for key in counts.index
    )
    lines = [t("units.summary", lang, n=format_number(len(registry), lang), kinds=kinds)]
    report = context.boundary_report
    if context.wards_approximate:
        lines.append(t("units.boundaries_approximate", lang))
    else:
        lines.append(t("units.boundaries_official", lang, n=format_number(len(report.get("matched", [])), lang)))
    missing, unknown = report.get("missing_in_boundaries", []), report.get("unknown_in_registry", [])
    if missing:
        lines.append(t("units.boundaries_missing", lang, n=format_number(len(missing), lang), codes=", ".join(missing)))
    if unknown:
        lines.append(t("units.boundaries_unknown", lang, n=format_number(len(unknown), lang), codes=", ".join(unknown)))
    legacy = context.legacy
    if len(legacy):
        partial = int((legacy["merge_kind"] == "partial").sum())
        lines.append(
            t(
                "units.crosswalk",
                lang,
                n=format_number(len(legacy), lang),
                date=format_date(REFORM_DATE, lang),
                whole=format_number(len(legacy) - partial, lang),
                partial=format_number(partial, lang),
                rule=t(f"units.split_rule.{context.split_rule}", lang),
            )
        )
    if context.population.empty:
        lines.append(t("units.population_none", lang))
    elif is_synthetic(context.population_sources):
        lines.append(t("units.population_synthetic", lang))
    else:
        lines.append(t("units.population_source", lang))
        lines += [html.Span(source, className="data-value") for source in context.population_sources]
    return [line if isinstance(line, html.Span) else html.P(line) for line in lines]


def render(request: PageRequest) -> html.Div:
    """The registry of the units the account may see."""
    context, lang = get_context(), request.lang
    registry = unit_registry(context.settings.province_code, context.population)
    if request.account.scope.wards is not None:
        registry = registry.loc[registry["code"].isin(request.account.scope.wards)]
    columns, rows = build_units_table(registry, context.legacy, lang)
    return html.Div(
        [
            html.H1(t("nav.units", lang)),
            card(t("units.card_summary", lang), html.Div(build_summary(context, registry, lang))),
            card(
                t("units.card_table", lang),
                dash_table.DataTable(
                    columns=columns,
                    data=rows,
                    page_action="native",
                    page_size=PAGE_SIZE,
                    filter_action="native",
                    filter_options={"case": "insensitive", "placeholder_text": t("old_units.filter", lang)},
                    style_table={"overflowX": "auto"},
                    style_cell={"fontSize": 13, "textAlign": "left", "whiteSpace": "normal", "height": "auto"},
                    style_cell_conditional=[
                        {"if": {"column_id": c}, "textAlign": "right"} for c in ("area", "population")
                    ],
                    style_header={"fontWeight": "600"},
                ),
            ),
        ]
    )


register_page(Page(PATH, "nav.units", VIEW, render, order=70))
