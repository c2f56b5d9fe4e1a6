"""Card: one record's detail, every configured column, personal data masked unless the role may see it.

The record is looked up by key and then checked on the server: its unit must map to the selected
ward, which the account must be allowed to see; a record of a ward outside the account's scope is
refused with 403 and nothing of it is sent. Each unmasked view is written to the audit log
(Decree 13/2023/NĐ-CP).
"""

from __future__ import annotations

from datetime import datetime

import pandas as pd
from dash import Input, Output, State, html
from flask import abort

from config.roles import VIEW
from dashboards.cards.records import may_unmask, reflected_for, value_labels
from dashboards.registry import callback
from dashboards.security import audit_unmasked_view, secured
from dashboards.view import resolve_sector_view
from data_sources.records import RecordsError, fetch_record, key_value
from layouts import ids
from layouts.components import empty_state
from layouts.i18n import format_datetime, format_number, t


def display_value(column: str, value, lang: str) -> str:
    """A field as the interface shows it: dates and numbers in the language's format, codes by label."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "–"
    if isinstance(value, pd.Timestamp | datetime):
        return format_datetime(pd.Timestamp(value).to_pydatetime(), lang)
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, int | float) or hasattr(value, "item"):
        number = value.item() if hasattr(value, "item") else value
        if isinstance(number, int) or float(number).is_integer():
            return str(int(number)) if column.endswith("id") or column == "age" else format_number(number, lang)
        return format_number(number, lang, 2)
    labels = value_labels(column, lang)
    return labels.get(value, str(value))


def build_detail(record: dict, columns: list[str], personal: tuple[str, ...], lang: str, *, unmasked: bool) -> html.Div:
    """A definition list of every configured column; personal fields marked (masked or audited)."""
    items = []
    for column in columns:
        note = ""
        if column in personal:
            note = t("detail.personal_unmasked" if unmasked else "detail.personal_masked", lang)
        items.append(html.Dt(t(f"column.{column}", lang)))
        items.append(
            html.Dd(
                [
                    html.Span(display_value(column, record.get(column), lang)),
                    html.Span(note, className="personal-note"),
                ],
                className="personal" if column in personal else "",
            )
        )
    return html.Dl(items, className="detail-list")


@callback(
    Output(ids.RECORD_DETAIL, "children"),
    Input(ids.URL, "search"),
    State(ids.URL, "pathname"),
)
@secured(VIEW)
def update_record_detail(search, pathname):
    """The opened record, or nothing when no record is opened."""
    view = resolve_sector_view(pathname, search)
    if not view.state.record or not view.state.ward:
        return []
    context, lang = view.context, view.lang
    dataset_id = view.records_dataset
    dataset = context.catalogue.get(dataset_id)
    reflected = reflected_for(context, dataset_id)
    unmasked = may_unmask(view, context)
    try:
        key = key_value(reflected, view.state.record)
    except RecordsError:
        return empty_state(t("detail.not_found", lang, number=view.state.record))
    record = fetch_record(context.warehouse, reflected, key, unmasked=unmasked)
    if record is None:
        return empty_state(t("detail.not_found", lang, number=view.state.record))
    ward = context.crosswalk.get(str(record.get(dataset.unit)))
    if ward is None or not view.account.scope.allows_ward(ward):
        abort(403)
    if ward != view.state.ward:
        return empty_state(
            t("detail.other_ward", lang, number=view.state.record, ward=context.ward_name(view.state.ward, lang))
        )
    if unmasked and dataset.personal:
        audit_unmasked_view(context.app_db, view.account, f"{dataset_id}:{view.state.record}")
    columns = list(dataset.records_columns) or [c for c in record if c != dataset.unit]
    title = t("detail.title", lang, dataset=t(f"records.dataset.{dataset_id}", lang), number=view.state.record)
    return html.Div(
        [
            html.H3(title),
            html.P(t("detail.ward", lang, ward=context.ward_name(ward, lang)), className="detail-ward"),
            build_detail(record, columns, dataset.personal, lang, unmasked=unmasked),
        ],
        className="record-card",
    )
