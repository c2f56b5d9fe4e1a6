"""CSV export of a drill-down: every row matching the view's filters, streamed page by keyset page.

``GET /export/<sector path>.csv?window=...&ward=...&data=<dataset>&sort=<col>:<dir>&q=<filter>``.
The route is guarded like every other (login guard, then ``secured(VIEW)``) and checks the scope
itself: the sector, the ward, and that the dataset belongs to the sector's page; anything else is
403 with no data. UTF-8 with a byte-order mark so Excel shows Vietnamese correctly; headers in the
interface language; personal columns masked unless the role may see them; every export audited.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime

import pandas as pd
from flask import Blueprint, Response, abort, request, stream_with_context

from config.roles import VIEW
from dashboards.cards.records import may_unmask, parse_filter_query, records_query, reflected_for, value_labels
from dashboards.context import get_context
from dashboards.sectors import sector_page_for
from dashboards.security import current_account, request_language, secured
from dashboards.view import view_state_for
from data_sources.records import RecordsError, check_filters, iter_records, records_statement
from data_sources.users import audit
from layouts.i18n import t

BOM = "\ufeff"
blueprint = Blueprint("records_export", __name__)


def csv_cell(value) -> str:
    """A value as CSV text: ISO local times (Excel reads them), empty for missing."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return ""
    if isinstance(value, pd.Timestamp | datetime):
        return pd.Timestamp(value).strftime("%Y-%m-%d %H:%M:%S")
    if hasattr(value, "item"):
        value = value.item()
    return str(value)


def csv_lines(frames: Iterator[pd.DataFrame], columns: list[str], headers: list[str], lang: str) -> Iterator[str]:
    """The CSV text, BOM and header first, then one chunk per page of rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(headers)
    yield BOM + buffer.getvalue()
    labels = {c: value_labels(c, lang) for c in columns}
    for frame in frames:
        buffer.seek(0)
        buffer.truncate()
        for row in frame[columns].itertuples(index=False, name=None):
            writer.writerow(
                [
                    labels[c].get(v, csv_cell(v)) if labels[c] and isinstance(v, str) else csv_cell(v)
                    for c, v in zip(columns, row, strict=True)
                ]
            )
        yield buffer.getvalue()


@blueprint.route("/export/<path:sector_path>.csv")
@secured(VIEW)
def export_records(sector_path: str) -> Response:
    """Stream the records of the requested view as CSV, after checking sector, ward and dataset scope."""
    context = get_context()
    account = current_account()
    lang = request_language()
    page = sector_page_for("/" + sector_path)
    if page is None:
        abort(404)
    if not account.scope.allows_sector(page.sector):
        abort(403)
    dataset_id = request.args.get("data") or page.records[0]
    if dataset_id not in page.records:
        abort(403)
    state = view_state_for(page, request.query_string.decode("utf-8", "replace"), context)
    requested_ward = request.args.get("ward")
    if requested_ward and requested_ward not in context.ward_codes:
        abort(400)  # never widen a forged ward into the whole province
    if state.ward and not account.scope.allows_ward(state.ward):
        abort(403)
    dataset = context.catalogue.get(dataset_id)
    unmasked = may_unmask(account.role, context)
    sort = (request.args.get("sort") or "").split(":")
    sort_by = [{"column_id": sort[0], "direction": sort[1] if len(sort) > 1 else "desc"}] if sort[0] else []
    reflected = reflected_for(context, dataset_id)
    try:
        filters = parse_filter_query(request.args.get("q"), lang)
        check_filters(dataset, filters, unmasked=unmasked)
        query = records_query(state, context, dataset_id, wards=account.scope.wards, sort_by=sort_by, filters=filters)
        records_statement(reflected, query)  # values that do not fit their column fail here, before streaming
    except RecordsError as error:
        return Response(t("records.bad_filter", lang, problem=str(error)), status=400, mimetype="text/plain")
    columns = list(dataset.records_columns) or [c.name for c in reflected.table.c]
    headers = [t(f"column.{c}", lang) for c in columns]
    audit(
        context.app_db,
        "records_export_unmasked" if unmasked and dataset.personal else "records_export",
        username=account.username,
        detail=f"{dataset_id} {state.query()} filters={len(filters)}",
        address=request.remote_addr,
    )
    frames = iter_records(context.warehouse, reflected, query, unmasked=unmasked)
    place = state.ward or "province"
    filename = f"{dataset_id}_{place}_{state.window}.csv"
    return Response(
        stream_with_context(csv_lines(frames, columns, headers, lang)),
        mimetype="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"', "Cache-Control": "no-store"},
    )
