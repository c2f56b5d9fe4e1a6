"""Card: figures from before the 1 July 2025 merger, by the old unit they were filed under or by today's ward.

Everything comes from the snapshot's daily rollup (raw unit codes), so the old-unit totals are the
warehouse's own totals for those units. The switch shows either the old units (find and export what a
pre-merger ward reported) or the same months aggregated under today's wards, as every other page does.
An account limited to some wards sees the old units that map into its wards; codes that are neither a
current nor a pre-2025 unit are listed (unscoped accounts only), never dropped.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import date

import pandas as pd
from dash import Input, Output, State, dash_table, dcc, html, no_update
from dash.exceptions import PreventUpdate
from flask import abort

from config.datasets import Dataset
from config.roles import VIEW
from dashboards.context import AppContext, get_context
from dashboards.registry import callback
from dashboards.security import current_account, request_language, secured
from data_sources.admin_units import CURRENT, PRE_2025, REFORM_DATE, UNKNOWN
from data_sources.history import (
    RECORDS,
    Period,
    combined_total,
    measure_how,
    new_unit_totals,
    old_unit_totals,
    parse_period,
    pre_reform_months,
)
from data_sources.users import Account
from layouts import ids
from layouts.components import empty_state
from layouts.i18n import catalogue, format_date, format_month, format_number, t

OLD_VIEW = "old"
NEW_VIEW = "new"
VIEWS = (OLD_VIEW, NEW_VIEW)
PAGE_SIZE = 50
CSV_BOM = "\ufeff"
MEASURE_KEY = "old_units.measure.{dataset}.{measure}"
CHOICES = (ids.OLD_UNITS_DATASET, ids.OLD_UNITS_MEASURE, ids.OLD_UNITS_FIRST, ids.OLD_UNITS_LAST, ids.OLD_UNITS_VIEW)
"""What the table is built from (dataset, measure, first and last month, old/new view), in callback order."""


# --- what the account may pick ---------------------------------------------------------------------


def visible_datasets(context: AppContext, account: Account) -> list[Dataset]:
    """Datasets of the sectors the account may see, in catalogue order."""
    return [d for d in context.catalogue if account.scope.allows_sector(d.sector)]


def offered_measures(dataset: Dataset, lang: str) -> list[str]:
    """The row count, then every measure of the dataset that has a label for this view (totals that mean
    something on their own; sums kept only to compute means are not offered)."""
    labels = catalogue(lang)
    named = [m.name for m in dataset.measures if MEASURE_KEY.format(dataset=dataset.id, measure=m.name) in labels]
    return [RECORDS, *named]


def measure_label(dataset_id: str, measure: str, lang: str) -> str:
    """Label of a measure in this view."""
    if measure == RECORDS:
        return t("old_units.measure.records", lang)
    return t(MEASURE_KEY.format(dataset=dataset_id, measure=measure), lang)


def authorised_dataset(context: AppContext, account: Account, dataset_id: str | None) -> Dataset:
    """The dataset asked for, if the account may see its sector: 404 for no such dataset, 403 outside scope."""
    try:
        dataset = context.catalogue.get(str(dataset_id))
    except KeyError:
        abort(404)
    if not account.scope.allows_sector(dataset.sector):
        abort(403)
    return dataset


# --- pure builders ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class OldUnitsTable:
    """What the card shows and exports: column labels, rows of display values, raw values for CSV."""

    columns: list[dict]
    rows: list[dict]
    export: pd.DataFrame


def _decimals(values: pd.Series) -> int:
    finite = values.dropna()
    return 0 if finite.empty or (finite == finite.round()).all() else 1


def build_old_units_table(
    frame: pd.DataFrame, measure_name: str, ward_names: dict[str, str], lang: str
) -> OldUnitsTable:
    """Rows per old unit: code, old name, old district, current ward, merge kind and the measure's total.

    A code recorded under a unit created by the reform and an unknown code get a label in place of an
    old name, so nothing is left out silently.
    """
    decimals = _decimals(frame["value"])
    names = []
    for status, old_name in zip(frame["status"], frame["old_name"], strict=True):
        if status == PRE_2025:
            names.append(str(old_name))
        elif status == CURRENT:
            names.append(t("old_units.recorded_under_new_code", lang))
        else:
            names.append(t("old_units.unknown_code", lang))
    merge = [t(f"old_units.merge.{kind}", lang) if isinstance(kind, str) else "" for kind in frame["merge_kind"]]
    wards = [ward_names.get(code, "") if isinstance(code, str) else "" for code in frame["new_code"]]
    labels = {
        "code": t("old_units.column.old_code", lang),
        "old_name": t("old_units.column.old_name", lang),
        "old_district": t("old_units.column.old_district", lang),
        "new_ward": t("old_units.column.new_ward", lang),
        "merge_kind": t("old_units.column.merge_kind", lang),
        "value": measure_name,
    }
    export = pd.DataFrame(
        {
            labels["code"]: frame["code"].to_numpy(),
            labels["old_name"]: names,
            labels["old_district"]: frame["old_district"].fillna("").to_numpy(),
            labels["new_ward"]: wards,
            labels["merge_kind"]: merge,
            labels["value"]: frame["value"].to_numpy(),
        }
    )
    rows = [
        {
            "code": code,
            "old_name": name,
            "old_district": district,
            "new_ward": ward,
            "merge_kind": kind,
            "value": format_number(value, lang, decimals),
            "status": status,
        }
        for code, name, district, ward, kind, value, status in zip(
            frame["code"],
            names,
            frame["old_district"].fillna(""),
            wards,
            merge,
            frame["value"],
            frame["status"],
            strict=True,
        )
    ]
    columns = [{"name": label, "id": key} for key, label in labels.items()]
    return OldUnitsTable(columns, rows, export)


def build_new_units_table(frame: pd.DataFrame, measure_name: str, units: pd.DataFrame, lang: str) -> OldUnitsTable:
    """Rows per current ward: code, name, type (translated), how many unit codes carried data, total."""
    decimals = _decimals(frame["value"])
    registry = units.set_index("code")
    name_column = "name_en" if lang == "en" else "name"
    names = [str(registry.at[code, name_column]) for code in frame["code"]]
    kinds = [t(f"unit_type.{registry.at[code, 'type_key']}", lang) for code in frame["code"]]
    labels = {
        "code": t("old_units.column.ward_code", lang),
        "name": t("old_units.column.ward", lang),
        "type": t("old_units.column.type", lang),
        "old_units": t("old_units.column.codes_with_data", lang),
        "value": measure_name,
    }
    export = pd.DataFrame(
        {
            labels["code"]: frame["code"].to_numpy(),
            labels["name"]: names,
            labels["type"]: kinds,
            labels["old_units"]: frame["old_units"].to_numpy(),
            labels["value"]: frame["value"].to_numpy(),
        }
    )
    rows = [
        {
            "code": code,
            "name": name,
            "type": kind,
            "old_units": format_number(count, lang),
            "value": format_number(value, lang, decimals),
        }
        for code, name, kind, count, value in zip(
            frame["code"], names, kinds, frame["old_units"], frame["value"], strict=True
        )
    ]
    columns = [{"name": label, "id": key} for key, label in labels.items()]
    return OldUnitsTable(columns, rows, export)


def build_csv(export: pd.DataFrame) -> bytes:
    """UTF-8 CSV with a byte-order mark (Excel then reads Vietnamese correctly); numbers as plain decimals
    with a point, missing values empty."""
    buffer = io.StringIO()
    buffer.write(CSV_BOM)
    export.to_csv(buffer, index=False, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n", float_format="%.10g")
    return buffer.getvalue().encode("utf-8")


def csv_filename(dataset_id: str, view: str, period: Period) -> str:
    """e.g. ``truoc-sap-nhap_feedback_don-vi-cu_2025-01_2025-06.csv`` (ASCII, safe on every system)."""
    kind = "don-vi-cu" if view == OLD_VIEW else "phuong-xa-hien-nay"
    return f"truoc-sap-nhap_{dataset_id}_{kind}_{period.first:%Y-%m}_{period.last:%Y-%m}.csv"


def build_summary(frame: pd.DataFrame, view: str, how: str, period: Period, lang: str) -> str:
    """One line: how many units, the period, the total, and the unknown codes when there are any."""
    first, last = format_month(period.first, lang), format_month(period.last, lang)
    if view == OLD_VIEW:
        known = frame.loc[frame["status"] != UNKNOWN]
        unknown = frame.loc[frame["status"] == UNKNOWN]
        text = t(
            "old_units.summary_old",
            lang,
            n=format_number(len(known), lang),
            first=first,
            last=last,
            total=format_number(combined_total(known["value"], how), lang, _decimals(known["value"])),
        )
        if not unknown.empty:
            text += " " + t(
                "old_units.summary_unknown",
                lang,
                n=format_number(len(unknown), lang),
                total=format_number(combined_total(unknown["value"], how), lang, _decimals(unknown["value"])),
            )
        return text
    with_data = frame.loc[frame["value"].notna()]
    return t(
        "old_units.summary_new",
        lang,
        n=format_number(len(with_data), lang),
        first=first,
        last=last,
        total=format_number(combined_total(with_data["value"], how), lang, _decimals(with_data["value"])),
    )


def month_options(months: list[date], lang: str) -> list[dict]:
    """Dropdown options for the months with pre-merger data."""
    return [{"label": format_month(m, lang), "value": m.isoformat()} for m in months]


# --- layout ----------------------------------------------------------------------------------------


def layout(context: AppContext, account: Account, lang: str) -> html.Div:
    """Controls (dataset, measure, months, old/new switch), export button, summary and table."""
    datasets = visible_datasets(context, account)
    if not datasets:
        return empty_state(t("old_units.no_dataset", lang))
    controls = html.Div(
        [
            html.Label(
                [
                    html.Span(t("old_units.dataset", lang), className="control-label"),
                    dcc.Dropdown(
                        id=ids.OLD_UNITS_DATASET,
                        options=[{"label": t(f"old_units.dataset.{d.id}", lang), "value": d.id} for d in datasets],
                        value=datasets[0].id,
                        clearable=False,
                        searchable=False,
                    ),
                ],
                className="control",
            ),
            html.Label(
                [
                    html.Span(t("old_units.measure", lang), className="control-label"),
                    dcc.Dropdown(id=ids.OLD_UNITS_MEASURE, clearable=False, searchable=False),
                ],
                className="control",
            ),
            html.Label(
                [
                    html.Span(t("old_units.from_month", lang), className="control-label"),
                    dcc.Dropdown(id=ids.OLD_UNITS_FIRST, clearable=False, searchable=False),
                ],
                className="control control-month",
            ),
            html.Label(
                [
                    html.Span(t("old_units.to_month", lang), className="control-label"),
                    dcc.Dropdown(id=ids.OLD_UNITS_LAST, clearable=False, searchable=False),
                ],
                className="control control-month",
            ),
        ],
        className="controls old-units-controls",
    )
    switch = dcc.RadioItems(
        id=ids.OLD_UNITS_VIEW,
        options=[
            {"label": t(f"old_units.view.{v}", lang, date=format_date(REFORM_DATE, lang)), "value": v} for v in VIEWS
        ],
        value=OLD_VIEW,
        inline=True,
        className="window-select old-units-view",
    )
    return html.Div(
        [
            controls,
            html.Div(
                [
                    switch,
                    html.Button(t("old_units.export", lang), id=ids.OLD_UNITS_EXPORT, n_clicks=0, className="button"),
                    dcc.Download(id=ids.OLD_UNITS_DOWNLOAD),
                ],
                className="controls",
            ),
            html.P(id=ids.OLD_UNITS_SUMMARY, className="old-units-summary", role="status"),
            dash_table.DataTable(
                id=ids.OLD_UNITS_TABLE,
                data=[],
                columns=[],
                page_action="native",
                page_size=PAGE_SIZE,
                sort_action="none",
                filter_action="native",
                filter_options={"case": "insensitive", "placeholder_text": t("old_units.filter", lang)},
                style_table={"overflowX": "auto"},
                style_cell={"fontSize": 13, "textAlign": "left"},
                style_cell_conditional=[{"if": {"column_id": c}, "textAlign": "right"} for c in ("value", "old_units")],
                style_header={"fontWeight": "600"},
            ),
        ],
        className="old-units",
    )


# --- callbacks -------------------------------------------------------------------------------------


def _months(context: AppContext, dataset: Dataset) -> list[date]:
    snapshot = context.snapshot(dataset.id)
    return pre_reform_months(snapshot.frame("daily")) if snapshot is not None else []


@callback(
    Output(ids.OLD_UNITS_MEASURE, "options"),
    Output(ids.OLD_UNITS_MEASURE, "value"),
    Output(ids.OLD_UNITS_FIRST, "options"),
    Output(ids.OLD_UNITS_FIRST, "value"),
    Output(ids.OLD_UNITS_LAST, "options"),
    Output(ids.OLD_UNITS_LAST, "value"),
    Input(ids.OLD_UNITS_DATASET, "value"),
    State(ids.OLD_UNITS_MEASURE, "value"),
    State(ids.OLD_UNITS_FIRST, "value"),
    State(ids.OLD_UNITS_LAST, "value"),
)
@secured(VIEW)
def update_old_unit_choices(dataset_id, measure, first, last):
    """Measures of the chosen dataset and the months before the reform that hold its data."""
    context, account, lang = get_context(), current_account(), request_language()
    dataset = authorised_dataset(context, account, dataset_id)
    measures = offered_measures(dataset, lang)
    months = _months(context, dataset)
    options = month_options(months, lang)
    period = parse_period(first, last, months)
    first_value = period.first.isoformat() if period else None
    last_value = period.last.isoformat() if period else None
    measure_options = [{"label": measure_label(dataset.id, m, lang), "value": m} for m in measures]
    return (
        measure_options,
        measure if measure in measures else measures[0],
        options,
        first_value,
        options,
        last_value,
    )


def old_units_result(
    context: AppContext, account: Account, lang: str, dataset_id, measure, first, last, view
) -> tuple[OldUnitsTable, str, Period] | str:
    """The table for a request, after every scope check; a message when there is nothing to show."""
    dataset = authorised_dataset(context, account, dataset_id)
    if measure not in offered_measures(dataset, lang):
        abort(400)
    view = view if view in VIEWS else OLD_VIEW
    snapshot = context.snapshot(dataset.id)
    if snapshot is None:
        return t("empty.no_data", lang)
    daily = snapshot.frame("daily")
    period = parse_period(first, last, pre_reform_months(daily))
    if period is None:
        return t("old_units.no_pre_merger_data", lang, date=format_date(REFORM_DATE, lang))
    how = measure_how(dataset, measure)
    label = measure_label(dataset.id, measure, lang)
    wards = account.scope.wards
    if view == OLD_VIEW:
        frame = old_unit_totals(daily, measure, how, period, context.legacy, context.ward_codes, wards=wards)
        name_column = "name_en" if lang == "en" else "name"
        ward_names = dict(zip(context.units["code"], context.units[name_column], strict=True))
        table = build_old_units_table(frame, label, ward_names, lang)
    else:
        codes = list(context.units["code"])
        frame = new_unit_totals(daily, measure, how, period, context.pre_reform_crosswalk, codes, wards=wards)
        table = build_new_units_table(frame, label, context.units, lang)
    return table, build_summary(frame, view, how, period, lang), period


@callback(
    Output(ids.OLD_UNITS_TABLE, "columns"),
    Output(ids.OLD_UNITS_TABLE, "data"),
    Output(ids.OLD_UNITS_SUMMARY, "children"),
    *(Input(choice, "value") for choice in CHOICES),
    Input(ids.VERSIONS, "data"),
)
@secured(VIEW)
def update_old_units(dataset_id, measure, first, last, view, _versions):
    """Rebuild the table when a choice or the dataset's snapshot changes."""
    if measure is None:
        raise PreventUpdate
    result = old_units_result(
        get_context(), current_account(), request_language(), dataset_id, measure, first, last, view
    )
    if isinstance(result, str):
        return [], [], result
    table, summary, _ = result
    return table.columns, table.rows, summary


@callback(
    Output(ids.OLD_UNITS_DOWNLOAD, "data"),
    Input(ids.OLD_UNITS_EXPORT, "n_clicks"),
    *(State(choice, "value") for choice in CHOICES),
    prevent_initial_call=True,
)
@secured(VIEW)
def export_old_units(n_clicks, dataset_id, measure, first, last, view):
    """Every row of the current choice as CSV (not only the visible page), within the account's scope."""
    if not n_clicks:
        raise PreventUpdate
    result = old_units_result(
        get_context(), current_account(), request_language(), dataset_id, measure, first, last, view
    )
    if isinstance(result, str):
        return no_update
    table, _, period = result
    return dcc.send_bytes(
        build_csv(table.export), csv_filename(dataset_id, view if view in VIEWS else OLD_VIEW, period)
    )
