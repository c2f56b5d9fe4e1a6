"""One figure look for every card, readable on a video wall and on a desk."""

from __future__ import annotations

import plotly.graph_objects as go

from layouts.i18n import normalise_language

FONT = "Inter, 'Segoe UI', Roboto, 'Noto Sans', Arial, sans-serif"
SERIES_COLOURS = ["#1f6feb", "#2da44e", "#d4a72c", "#cf222e", "#8250df", "#0a7e8c"]
SEQUENTIAL = "YlOrRd"


def base_layout(**overrides) -> go.Layout:
    """A plain, high-contrast layout with room for Vietnamese diacritics."""
    layout = {
        "font": {"family": FONT, "size": 14, "color": "#1f2328"},
        "colorway": SERIES_COLOURS,
        "margin": {"l": 48, "r": 16, "t": 16, "b": 40},
        "paper_bgcolor": "rgba(0,0,0,0)",
        "plot_bgcolor": "rgba(0,0,0,0)",
        "legend": {"orientation": "h", "y": -0.2},
        "hoverlabel": {"font": {"family": FONT}},
        "xaxis": {"gridcolor": "#e6e8eb"},
        "yaxis": {"gridcolor": "#e6e8eb", "rangemode": "tozero"},
    }
    layout.update(overrides)
    return go.Layout(**layout)


def graph_config(lang: str, **overrides) -> dict:
    """``dcc.Graph`` config in the interface language: Plotly's locale (month and day names, number
    separators, modebar texts; registered by ``assets/plotly-locales.js``) and no Plotly logo."""
    config = {"displaylogo": False, "locale": normalise_language(lang)}
    config.update(overrides)
    return config


def date_axis(lang: str) -> dict:
    """Date-axis tick and hover formats in the language's conventions (vi 21/11, en Nov 21)."""
    if normalise_language(lang) == "en":
        day, month, hover = "%b %-d", "%b %Y", "%Y-%m-%d %H:%M"
    else:
        day, month, hover = "%d/%m", "%m/%Y", "%d/%m/%Y %H:%M"
    hour = "%H:%M<br>" + day
    return {
        "hoverformat": hover,
        "tickformatstops": [
            {"dtickrange": [None, 86_400_000 - 1], "value": hour},
            {"dtickrange": [86_400_000, 28 * 86_400_000], "value": day},
            {"dtickrange": [28 * 86_400_000, 365 * 86_400_000], "value": month},
            {"dtickrange": [365 * 86_400_000, None], "value": "%Y"},
        ],
    }
