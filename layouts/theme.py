"""One figure look for every card, readable on a video wall and on a desk."""

from __future__ import annotations

import plotly.graph_objects as go

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
