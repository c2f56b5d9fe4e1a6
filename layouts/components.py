"""Reusable pieces of the interface: no data access, only what they are given."""

from __future__ import annotations

from dash import dcc, html

from layouts.i18n import format_number, t

TREND_ICONS = {"good": "▲", "bad": "▼", "flat": "●"}


def kpi_tile(
    tile_id: dict | str,
    label: str,
    value: float | None,
    lang: str,
    *,
    unit: str = "",
    decimals: int = 0,
    caption: str = "",
    href: str | None = None,
    status: str = "",
) -> html.Div:
    """A KPI tile: label, big value with unit, caption; a missing value says so in words."""
    shown = format_number(value, lang, decimals) if value is not None else t("empty.no_value", lang)
    body = [
        html.Div(label, className="kpi-label"),
        html.Div(
            [html.Span(shown, className="kpi-value"), html.Span(f" {unit}" if unit else "", className="kpi-unit")],
            className="kpi-figure",
        ),
        html.Div(caption, className="kpi-caption"),
    ]
    content = dcc.Link(body, href=href, className="kpi-link") if href else html.Div(body)
    return html.Div(content, id=tile_id, className=f"kpi-tile {status}".strip())


def card(title: str, children, *, card_id: str | None = None, extra=None) -> html.Section:
    """A titled card frame."""
    header = [html.H3(title, className="card-title")]
    if extra is not None:
        header.append(html.Div(extra, className="card-extra"))
    props = {"id": card_id} if card_id else {}
    return html.Section(
        [html.Header(header, className="card-header"), html.Div(children, className="card-body")],
        className="card",
        **props,
    )


def empty_state(message: str) -> html.Div:
    """An explicit "nothing here" message in place of a blank chart."""
    return html.Div(message, className="empty-state", role="status")
