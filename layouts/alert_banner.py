"""The active-alerts slot every page carries (filled by ``dashboards/alerts/banner.py``)."""

from __future__ import annotations

from dash import dcc, html

from layouts import ids
from layouts.i18n import t


def alert_banner(lang: str) -> html.Div:
    """Ticker of active alerts plus the acknowledge dialog; empty until the first refresh."""
    dialog = html.Div(
        [
            html.Div(id=ids.ALERT_ACK_TITLE, className="alert-ack-title"),
            html.Label(
                [
                    t("alerts.ack.comment", lang),
                    dcc.Textarea(id=ids.ALERT_ACK_COMMENT, value="", maxLength=2000, className="alert-ack-comment"),
                ]
            ),
            html.Div(id=ids.ALERT_ACK_ERROR, className="field-error", role="alert"),
            html.Div(
                [
                    html.Button(t("alerts.ack.submit", lang), id=ids.ALERT_ACK_SUBMIT, n_clicks=0, className="primary"),
                    html.Button(t("alerts.ack.cancel", lang), id=ids.ALERT_ACK_CANCEL, n_clicks=0),
                ],
                className="button-row",
            ),
        ],
        id=ids.ALERT_ACK_PANEL,
        className="alert-ack-panel",
        hidden=True,
        role="dialog",
    )
    return html.Div(
        [
            dcc.Store(id=ids.ALERT_BANNER_STATE, data=None),
            dcc.Store(id=ids.ALERT_ACK_TARGET, data=None),
            html.Div(id=ids.ALERT_TICKER, className="alert-ticker", role="status", **{"aria-live": "polite"}),
            dialog,
        ],
        id=ids.ALERT_BANNER,
        className="alert-banner",
        role="region",
        **{"aria-label": t("alerts.banner.label", lang)},
    )
