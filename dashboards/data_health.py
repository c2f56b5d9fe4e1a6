"""Data health: how fresh and how clean each dataset is, per check and per ward, with example rows;
and, for operators and admins, the poller's own health.

Everything comes from the snapshot store (the poller's rollups, quality counts, examples and its
status document): the page never reads the warehouse. A department head sees only the datasets of
their sectors and the wards of their scope; a forged request for anything else gets 403.

Poll health (last run, duration, rows, attempts, errors, next run, late arrivals) is shown to
operators and admins only (``VIEW_POLL_HEALTH``): it is what they act on, and error texts name hosts,
tables and columns. Leaders and department heads get what they need to trust a figure instead: each
dataset's freshness (live / late / stale with its age) and its bad-row counts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import parse_qs

import pandas as pd
from dash import ALL, ClientsideFunction, Input, Output, dcc, html
from flask import abort

from config.datasets import Dataset, DatasetCatalogue
from config.roles import VIEW, VIEW_POLL_HEALTH, has_permission
from dashboards.context import AppContext, get_context
from dashboards.pages import LATE_FACTOR, STALE_FACTOR, freshness_labels
from dashboards.registry import callback, clientside_callback
from dashboards.routes import Page, PageRequest, register_page
from dashboards.security import current_account, request_language, secured
from data_sources.clock import from_local_naive
from data_sources.kpis import frame_bucket_seconds, window_frame, window_start
from data_sources.quality import DIMENSIONS, LATE, MISSING_UNIT, NO_WARD, UNKNOWN_UNIT, quality_by_ward, scoped_examples
from data_sources.scheduler import STATUS_NAME
from data_sources.snapshots import Snapshot
from data_sources.sql import DUPLICATES, OUTSIDE, ROWS
from data_sources.users import Account
from layouts import ids
from layouts.components import card, empty_state
from layouts.i18n import MISSING, catalogue, format_datetime, format_duration, format_number, format_percent, t

PATH = "/data-health"
WINDOWS = ("24h", "7d", "30d", "all")
DEFAULT_WINDOW = "24h"


# --- who sees what ----------------------------------------------------------------------------------


def visible_datasets(catalogue_: DatasetCatalogue, account: Account) -> list[Dataset]:
    """Datasets of the sectors the account may see, in catalogue order."""
    return [d for d in catalogue_ if account.scope.allows_sector(d.sector)]


def _page_datasets(account: Account) -> tuple[str, ...]:
    return tuple(d.id for d in visible_datasets(get_context().catalogue, account))


# --- pure figures -----------------------------------------------------------------------------------


def freshness_state(age_seconds: float | None, interval_seconds: float) -> str:
    """live / late / stale for an age against an interval, with the header badge's factors."""
    if age_seconds is None:
        return "unknown"
    if age_seconds > interval_seconds * STALE_FACTOR:
        return "stale"
    if age_seconds > interval_seconds * LATE_FACTOR:
        return "late"
    return "live"


def freshness_info(dataset: Dataset, meta: dict[str, Any] | None) -> dict[str, dict[str, float] | None]:
    """What the browser needs to age a dataset on its own clock: when it last polled (against the poll
    interval) and how new its newest row is (against the expected update interval)."""
    meta = meta or {}
    info: dict[str, dict[str, float] | None] = {"poll": None, "source": None}
    if meta.get("polled_at"):
        at = datetime.fromisoformat(meta["polled_at"])
        info["poll"] = _aging(at, dataset.poll_seconds)
    if meta.get("watermark"):
        at = from_local_naive(datetime.fromisoformat(meta["watermark"]))
        info["source"] = _aging(at, dataset.expected_seconds)
    return info


def _aging(moment: datetime, interval: int) -> dict[str, float]:
    return {
        "at_ms": int(moment.timestamp() * 1000),
        "late_after_s": interval * LATE_FACTOR,
        "stale_after_s": interval * STALE_FACTOR,
        "interval_s": interval,
    }


def age_of(info: dict[str, float] | None, now: datetime) -> float | None:
    """Seconds since ``info``'s moment."""
    return None if info is None else now.timestamp() - info["at_ms"] / 1000


def dataset_quality(
    dataset: Dataset,
    snapshot: Snapshot | None,
    now: datetime,
    crosswalk: dict[str, str],
    window: str,
    wards: frozenset[str] | None,
) -> tuple[pd.DataFrame, dict[str, dict[str, Any]]]:
    """Per ward (in scope) rows and bad rows per check over ``window``, and the check catalogue."""
    if snapshot is None:
        return pd.DataFrame(columns=["ward", "unit_status", ROWS]), {}
    quality = snapshot.meta.get("quality") or {}
    checks = quality.get("checks") or {}
    frame_name = window_frame(window)
    start = window_start(window, now, frame_bucket_seconds(dataset, frame_name))
    late = (quality.get("late_arrivals") or {}).get("by_unit") or {}
    undated = quality.get("undated") or {}
    totals = {undated["check"]: undated.get("by_unit") or {}} if undated.get("check") else {}
    table = quality_by_ward(
        snapshot.frame(frame_name),
        checks,
        crosswalk,
        start=start,
        wards=wards,
        late_by_unit=late,
        totals_by_unit=totals,
    )
    return table, checks


def check_totals(table: pd.DataFrame, checks: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Bad rows per check summed over the table's wards."""
    return {check: float(table[check].sum()) if check in table else 0.0 for check in checks}


def dimension_totals(totals: dict[str, float], checks: dict[str, dict[str, Any]]) -> dict[str, float]:
    """Bad rows per quality dimension (completeness, validity, uniqueness, timeliness)."""
    found = dict.fromkeys(DIMENSIONS, 0.0)
    for check, count in totals.items():
        found[checks[check]["dimension"]] += count
    return found


# --- labels -------------------------------------------------------------------------------------------


def dataset_label(dataset_id: str, lang: str) -> str:
    """Display name of a dataset (its id when the catalogue has no name for it)."""
    key = f"health.dataset.{dataset_id}"
    return t(key, lang) if key in catalogue(lang) else dataset_id


def column_label(column: str, lang: str) -> str:
    """Display name of a column, or of several joined by commas."""
    strings = catalogue(lang)
    parts = [part.strip() for part in column.split(",")]
    return ", ".join(t(f"column.{p}", lang) if f"column.{p}" in strings else p for p in parts)


def check_label(check: str, info: dict[str, Any], lang: str) -> str:
    """What a check finds, in words, naming its column."""
    column = column_label(str(info.get("column") or ""), lang)
    if check.startswith("_missing_") and info.get("total"):
        return t("health.check.missing_time", lang, column=column)
    for prefix, key in (("_missing_", "health.check.missing"), ("_sentinel_", "health.check.sentinel")):
        if check.startswith(prefix) and check != MISSING_UNIT:
            return t(key, lang, column=column)
    if check.startswith("_invalid_"):
        return t("health.check.invalid", lang, column=column)
    names = {
        OUTSIDE: "health.check.outside_area",
        UNKNOWN_UNIT: "health.check.unknown_unit",
        MISSING_UNIT: "health.check.missing_unit",
        DUPLICATES: "health.check.duplicates",
        LATE: "health.check.late",
    }
    return t(names[check], lang, column=column) if check in names else check


def ward_label(context: AppContext, ward: str, status: str, lang: str) -> str:
    """A current ward's name; unknown and missing codes say so."""
    if status == "unknown":
        return t("health.ward.unknown", lang, code=ward)
    if status == "missing" or ward == NO_WARD:
        return t("health.ward.missing", lang)
    return context.ward_name(ward, lang)


# --- building blocks ----------------------------------------------------------------------------------


def _table(header: list[str], rows: list[list[Any]], *, class_name: str = "health-table") -> html.Table:
    return html.Table(
        [
            html.Thead(html.Tr([html.Th(h) for h in header])),
            html.Tbody([html.Tr([html.Td(c) for c in r]) for r in rows]),
        ],
        className=class_name,
    )


def freshness_cell(dataset_id: str, kind: str, info: dict[str, float] | None, now: datetime, lang: str) -> html.Span:
    """A live/late/stale label with the age; the browser keeps ageing it between server updates."""
    age = age_of(info, now)
    state = freshness_state(age, info["interval_s"]) if info else "unknown"
    text = t(f"freshness.{state}", lang)
    if age is not None:
        text += " · " + t("freshness.age", lang, age=format_duration(age, lang))
    return html.Span(text, id=ids.health_age(dataset_id, kind), className=f"freshness {state}")


def build_overview(
    context: AppContext, datasets: list[Dataset], window: str, wards: frozenset[str] | None, now: datetime, lang: str
) -> tuple[html.Table, dict[str, Any]]:
    """One line per dataset: freshness of data and poll, rows and bad rows per dimension."""
    rows, ages = [], {}
    for dataset in datasets:
        snapshot = context.snapshot(dataset.id)
        info = freshness_info(dataset, snapshot.meta if snapshot else None)
        ages[dataset.id] = info
        table, checks = dataset_quality(dataset, snapshot, now, context.crosswalk, window, wards)
        dims = dimension_totals(check_totals(table, checks), checks)
        rows.append(
            [
                dataset_label(dataset.id, lang),
                t(f"sector.{dataset.sector}", lang),
                freshness_cell(dataset.id, "source", info["source"], now, lang),
                freshness_cell(dataset.id, "poll", info["poll"], now, lang),
                format_number(table[ROWS].sum() if not table.empty else 0, lang),
                *(format_number(dims[d], lang) for d in DIMENSIONS),
            ]
        )
    header = [
        t("health.col.dataset", lang),
        t("health.col.sector", lang),
        t("health.col.data_age", lang),
        t("health.col.poll_age", lang),
        t("health.col.rows", lang),
        *(t(f"health.dimension.{d}", lang) for d in DIMENSIONS),
    ]
    return _table(header, rows), ages


def build_checks(table: pd.DataFrame, checks: dict[str, dict[str, Any]], lang: str) -> html.Table:
    """Bad rows per check with their share of the window's rows."""
    totals = check_totals(table, checks)
    rows_total = float(table[ROWS].sum()) if not table.empty else 0.0
    rows = [
        [
            check_label(check, checks[check], lang),
            t(f"health.dimension.{checks[check]['dimension']}", lang),
            format_number(count, lang),
            format_percent(count / rows_total, lang, 2)
            if rows_total and check != LATE and not checks[check].get("total")
            else MISSING,
        ]
        for check, count in totals.items()
    ]
    header = [t("health.col.check", lang), t("health.col.dimension", lang), t("health.col.bad", lang)]
    return _table(header + [t("health.col.share", lang)], rows)


def build_wards(
    context: AppContext, table: pd.DataFrame, checks: dict[str, dict[str, Any]], lang: str
) -> html.Table | html.Div:
    """Wards with bad rows, worst first; one column per check that found any."""
    found = [c for c in checks if c in table and table[c].sum() > 0]
    if table.empty or not found:
        return empty_state(t("health.no_bad_rows", lang))
    worst = table.assign(_bad=table[found].sum(axis=1)).sort_values("_bad", ascending=False)
    worst = worst.loc[worst["_bad"] > 0]
    rows = [
        [ward_label(context, r["ward"], r["unit_status"], lang), format_number(r[ROWS], lang)]
        + [format_number(r[c], lang) for c in found]
        for _, r in worst.iterrows()
    ]
    header = [t("health.col.ward", lang), t("health.col.rows", lang)]
    return _table(header + [check_label(c, checks[c], lang) for c in found], rows)


def build_examples(
    context: AppContext, examples: dict[str, list[dict[str, Any]]], checks: dict[str, dict[str, Any]], lang: str
) -> html.Div:
    """A few example rows per check: key, ward, event time, the value at issue (personal data masked)."""
    if not examples:
        return empty_state(t("health.no_examples", lang))
    blocks = []
    for check, rows in examples.items():
        info = checks.get(check, {"column": ""})
        body = []
        for row in rows:
            moment = row.get("event_time")
            ward = row.get("ward")
            unit = row.get("unit")
            if ward:
                place = context.ward_name(ward, lang)
            else:
                place = t("health.ward.unknown", lang, code=unit) if unit else t("health.ward.missing", lang)
            if unit and ward and unit != ward:
                place += f" ({unit})"
            value = row.get("value")
            body.append(
                [
                    str(row.get("key")),
                    place,
                    format_datetime(datetime.fromisoformat(moment), lang) if moment else MISSING,
                    MISSING if value is None else str(value),
                ]
            )
        header = [t("health.col.key", lang), t("health.col.ward", lang), t("health.col.time", lang)]
        blocks.append(
            html.Div(
                [html.H4(check_label(check, info, lang)), _table(header + [t("health.col.value", lang)], body)],
                className="health-examples",
            )
        )
    return html.Div(blocks)


def build_poll_health(catalogue_: DatasetCatalogue, status: dict[str, Any] | None, lang: str) -> html.Div | html.Table:
    """The poller's status document as a table, one line per dataset."""
    if not status:
        return empty_state(t("health.poller_never", lang))
    datasets = status.get("datasets") or {}
    rows = []
    for dataset in catalogue_:
        entry = datasets.get(dataset.id) or {}
        started = entry.get("started_at")
        nxt = entry.get("next_run")
        error = entry.get("error")
        rows.append(
            [
                dataset_label(dataset.id, lang),
                format_datetime(datetime.fromisoformat(started), lang) if started else MISSING,
                t("units.milliseconds", lang, n=format_number(entry.get("duration_ms"), lang)) if started else MISSING,
                format_number(entry.get("rows_read"), lang) if started else MISSING,
                format_number(entry.get("window_rows"), lang) if started else MISSING,
                format_number(entry.get("attempts"), lang) if started else MISSING,
                format_number(entry.get("consecutive_failures", 0), lang),
                t(
                    "health.late_counts",
                    lang,
                    last=format_number(entry.get("late_rows") or 0, lang),
                    total=format_number(entry.get("late_total") or 0, lang),
                ),
                html.Span(error, className="health-error") if error else t("health.ok", lang),
                format_datetime(datetime.fromisoformat(nxt), lang) if nxt else MISSING,
                _reconcile_cell(entry, lang),
            ]
        )
    header = [
        t(f"health.poll.{key}", lang)
        for key in (
            "dataset",
            "last_run",
            "duration",
            "rows_read",
            "window_rows",
            "attempts",
            "failures",
            "late",
            "error",
            "next_run",
            "reconcile",
        )
    ]
    owner = html.P(t("health.poller_owner", lang, owner=status.get("owner", MISSING)), className="health-note")
    return html.Div([owner, _table(header, rows, class_name="health-table health-polls")])


def _reconcile_cell(entry: dict[str, Any], lang: str) -> str:
    """When the poller last compared the history with the warehouse, what it fixed, when it will next."""
    last, nxt = entry.get("last_reconcile_at"), entry.get("next_reconcile_at")
    if not last:
        return MISSING
    return t(
        "health.reconcile_counts",
        lang,
        at=format_datetime(datetime.fromisoformat(last), lang),
        days=format_number(entry.get("last_reconcile_days") or 0, lang),
        next=format_datetime(datetime.fromisoformat(nxt), lang) if nxt else MISSING,
    )


# --- page ---------------------------------------------------------------------------------------------


def render(request: PageRequest) -> html.Div:
    """The page frame; the callbacks fill it."""
    context = get_context()
    lang = request.lang
    datasets = visible_datasets(context.catalogue, request.account)
    if not datasets:
        return html.Div([html.H1(t("nav.data_health", lang)), empty_state(t("health.no_datasets", lang))])
    wanted = (parse_qs(request.search.lstrip("?")).get("dataset") or [None])[0]
    chosen = wanted if wanted in {d.id for d in datasets} else datasets[0].id
    controls = html.Div(
        [
            dcc.Dropdown(
                id=ids.HEALTH_DATASET,
                options=[{"label": dataset_label(d.id, lang), "value": d.id} for d in datasets],
                value=chosen,
                clearable=False,
                className="health-dataset",
            ),
            dcc.RadioItems(
                id=ids.HEALTH_WINDOW,
                options=[{"label": t(f"window.{w}", lang), "value": w} for w in WINDOWS],
                value=DEFAULT_WINDOW,
                inline=True,
                className="window-select",
            ),
        ],
        className="controls",
    )
    parts = [
        html.H1(t("nav.data_health", lang)),
        html.P(t("health.intro", lang), className="health-note"),
        controls,
        dcc.Store(id=ids.HEALTH_FRESHNESS, data={}),
        card(t("health.card.overview", lang), html.Div(id=ids.HEALTH_OVERVIEW)),
        html.Div(id=ids.HEALTH_DETAIL),
    ]
    if has_permission(request.account.role, VIEW_POLL_HEALTH):
        parts.append(card(t("health.card.polls", lang), html.Div(id=ids.HEALTH_POLLS)))
    return html.Div(parts, className="data-health")


register_page(Page(PATH, "nav.data_health", VIEW, render, order=80, datasets=_page_datasets))


@callback(
    Output(ids.HEALTH_OVERVIEW, "children"),
    Output(ids.HEALTH_DETAIL, "children"),
    Output(ids.HEALTH_FRESHNESS, "data"),
    Input(ids.VERSIONS, "data"),
    Input(ids.HEALTH_DATASET, "value"),
    Input(ids.HEALTH_WINDOW, "value"),
)
@secured(VIEW)
def update_data_health(_versions, dataset_id, window):
    """Freshness and quality of the account's datasets; details of the chosen one, in its wards."""
    context = get_context()
    account = current_account()
    lang = request_language()
    if window not in WINDOWS:
        abort(400)
    try:
        dataset = context.catalogue.get(dataset_id)
    except KeyError:
        abort(404)
    if not account.scope.allows_sector(dataset.sector):
        abort(403)
    datasets = visible_datasets(context.catalogue, account)
    wards = account.scope.wards
    now = context.now()
    overview, ages = build_overview(context, datasets, window, wards, now, lang)
    snapshot = context.snapshot(dataset.id)
    table, checks = dataset_quality(dataset, snapshot, now, context.crosswalk, window, wards)
    quality = (snapshot.meta.get("quality") or {}) if snapshot else {}
    examples = dict(quality.get("examples") or {})
    late_examples = (quality.get("late_arrivals") or {}).get("examples") or []
    if late_examples:
        examples[LATE] = late_examples
    examples = scoped_examples(examples, context.crosswalk, wards)
    if snapshot is None:
        detail = card(dataset_label(dataset.id, lang), empty_state(t("empty.no_data", lang)))
    else:
        detail = html.Div(
            [
                card(
                    t("health.card.checks", lang, dataset=dataset_label(dataset.id, lang)),
                    build_checks(table, checks, lang),
                ),
                card(t("health.card.wards", lang), build_wards(context, table, checks, lang)),
                card(t("health.card.examples", lang), build_examples(context, examples, checks, lang)),
            ]
        )
    return overview, detail, {"datasets": ages, "labels": freshness_labels(lang)}


@callback(
    Output(ids.HEALTH_POLLS, "children"),
    Input(ids.VERSIONS, "data"),
)
@secured(VIEW_POLL_HEALTH)
def update_poll_health(_versions):
    """The poller's last run per dataset, for operators and admins."""
    context = get_context()
    return build_poll_health(context.catalogue, context.store.get_status(STATUS_NAME), request_language())


clientside_callback(
    ClientsideFunction("ioc_health", "ages"),
    Output(ids.health_age(ALL, ALL), "children"),
    Output(ids.health_age(ALL, ALL), "className"),
    Input(ids.CLOCK_TICK, "n_intervals"),
    Input(ids.HEALTH_FRESHNESS, "data"),
)
