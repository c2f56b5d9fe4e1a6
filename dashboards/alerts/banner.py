"""The active-alerts banner on every page, and acknowledging an alert with a comment.

The banner rides on the page's refresh tick: one cheap query for a fingerprint of the active alerts
the account may see; nothing is sent when it did not change. Department heads see only alerts of
their sectors and wards; muted alerts leave the banner (they stay on the alerts page).
"""

from __future__ import annotations

from collections.abc import Mapping

from dash import ALL, Input, Output, State, ctx, dcc, html, no_update
from dash.exceptions import PreventUpdate
from flask import abort, request

from config.roles import EDIT_ALERTS, VIEW, has_permission
from dashboards.alerts.text import SEVERITY_ICONS, condition_text, severity_label, subject_label, value_text, when_text
from dashboards.context import AppContext, get_context
from dashboards.registry import callback
from dashboards.sectors import sector_page_for
from dashboards.security import current_account, request_language, secured
from data_sources.alerts.evaluate import FIRING, TransitionError
from data_sources.alerts.store import ActiveAlert, acknowledge_alert, active_alerts, alerts_signature
from data_sources.users import Account
from layouts import ids
from layouts.i18n import t

ALERTS_PATH = "/alerts"
BANNER_LIMIT = 5


def ward_names(context: AppContext, lang: str) -> dict[str, str]:
    """Current ward code -> display name in ``lang``."""
    column = "name_en" if lang == "en" and "name_en" in context.units else "name"
    return dict(zip(context.units["code"], context.units[column], strict=True))


def kpi_decimals(context: AppContext, dataset: str, kpi: str) -> int:
    """Decimals the KPI is shown with (2 when the KPI left the configuration)."""
    try:
        return context.catalogue.get(dataset).kpi(kpi).decimals
    except KeyError:
        return 2


def alert_line(
    alert: ActiveAlert, lang: str, names: Mapping[str, str], decimals: int, *, can_ack: bool, compact: bool
) -> html.Div:
    """One alert: severity icon and word, rule, where, value against threshold, since when, acknowledge."""
    value = value_text(alert.value, lang, decimals)
    condition = condition_text(alert.comparator, alert.threshold, lang)
    parts = [
        html.Span(severity_label(alert.severity, lang), className="alert-severity"),
        html.Span(alert.rule_name, className="alert-rule"),
        html.Span(subject_label(alert.subject, alert.subject_label, names, lang), className="alert-subject"),
        html.Span(f"{value} ({condition})" if condition else value, className="alert-value"),
        html.Span(t("alerts.since", lang, when=when_text(alert.since, lang)), className="alert-since"),
    ]
    if alert.state == FIRING:
        if can_ack:
            parts.append(
                html.Button(
                    t("alerts.ack.open", lang),
                    id=ids.alert_ack_open(alert.alert_id),
                    n_clicks=0,
                    className="ack-button",
                )
            )
    else:
        acked = t("alerts.acked_by", lang, who=alert.acked_by or "", when=when_text(alert.acked_at, lang))
        parts.append(html.Span(f"✔ {acked}", className="alert-acked", title=alert.ack_comment or ""))
        if not compact and alert.ack_comment:
            parts.append(html.Span(f"“{alert.ack_comment}”", className="alert-comment"))
    if alert.silenced:
        parts.append(html.Span(f"🔇 {t('alerts.muted', lang)}", className="alert-muted"))
    return html.Div(parts, className=f"alert-item {alert.severity} {alert.state}", **{"data-alert": alert.alert_id})


def build_ticker(
    alerts: list[ActiveAlert],
    lang: str,
    names: Mapping[str, str],
    decimals: Mapping[tuple[str, str], int],
    can_ack: bool,
) -> list:
    """The banner's content: the most urgent alerts, a count and a link to the alerts page."""
    if not alerts:
        return []
    shown = alerts[:BANNER_LIMIT]
    counts = {s: sum(1 for a in alerts if a.severity == s) for s in SEVERITY_ICONS}
    summary = " · ".join(f"{severity_label(s, lang)}: {n}" for s, n in counts.items() if n)
    header = html.Div(
        [
            html.Strong(t("alerts.banner.title", lang, n=len(alerts)), className="alert-banner-title"),
            html.Span(summary, className="alert-banner-summary"),
            dcc.Link(t("alerts.banner.all", lang), href=ALERTS_PATH, className="alert-banner-link"),
        ],
        className="alert-banner-header",
    )
    lines = [
        alert_line(a, lang, names, decimals.get((a.dataset, a.kpi), 2), can_ack=can_ack, compact=True) for a in shown
    ]
    return [header, *lines]


def visible_alerts(context: AppContext, account: Account, *, include_silenced: bool) -> list[ActiveAlert]:
    """Active alerts in the account's scope."""
    return active_alerts(context.app_db, account.scope, context.now(), include_silenced=include_silenced)


def ticker_for(context: AppContext, account: Account, lang: str) -> list:
    """The banner content for one account."""
    alerts = visible_alerts(context, account, include_silenced=False)
    decimals = {(a.dataset, a.kpi): kpi_decimals(context, a.dataset, a.kpi) for a in alerts}
    return build_ticker(alerts, lang, ward_names(context, lang), decimals, has_permission(account.role, EDIT_ALERTS))


@callback(
    Output(ids.ALERT_TICKER, "children"),
    Output(ids.ALERT_BANNER_STATE, "data"),
    Input(ids.REFRESH, "n_intervals"),
    Input(ids.URL, "pathname"),
    State(ids.ALERT_BANNER_STATE, "data"),
)
@secured(VIEW)
def update_banner(_n, pathname, known):
    """Refresh the banner when the active alerts the account may see changed."""
    context = get_context()
    account = current_account()
    page = sector_page_for(pathname or "")
    if page is not None and not account.scope.allows_sector(page.sector):
        abort(403)  # a forged path outside the account's scope is refused like on every other callback
    lang = request_language()
    signature = alerts_signature(context.app_db, account.scope, context.now()) + lang
    if signature == known and ctx.triggered_id == ids.REFRESH:
        raise PreventUpdate
    return ticker_for(context, account, lang), signature


@callback(
    Output(ids.ALERT_ACK_TARGET, "data"),
    Output(ids.ALERT_ACK_PANEL, "hidden"),
    Output(ids.ALERT_ACK_TITLE, "children"),
    Output(ids.ALERT_ACK_COMMENT, "value"),
    Output(ids.ALERT_ACK_ERROR, "children"),
    Input(ids.alert_ack_open(ALL), "n_clicks"),
    prevent_initial_call=True,
)
@secured(EDIT_ALERTS)
def open_acknowledge(clicks):
    """Open the acknowledge dialog for the clicked alert."""
    trigger = ctx.triggered_id
    if not isinstance(trigger, dict) or not any(clicks or []):
        raise PreventUpdate
    context = get_context()
    account = current_account()
    lang = request_language()
    alert_id = trigger.get("alert")
    found = next((a for a in visible_alerts(context, account, include_silenced=True) if a.alert_id == alert_id), None)
    if found is None:
        return None, True, "", "", ""
    title = t(
        "alerts.ack.title",
        lang,
        rule=found.rule_name,
        subject=subject_label(found.subject, found.subject_label, ward_names(context, lang), lang),
    )
    return alert_id, False, title, "", ""


@callback(
    Output(ids.ALERT_ACK_PANEL, "hidden", allow_duplicate=True),
    Output(ids.ALERT_ACK_ERROR, "children", allow_duplicate=True),
    Output(ids.ALERT_TICKER, "children", allow_duplicate=True),
    Output(ids.ALERT_BANNER_STATE, "data", allow_duplicate=True),
    Input(ids.ALERT_ACK_SUBMIT, "n_clicks"),
    State(ids.ALERT_ACK_TARGET, "data"),
    State(ids.ALERT_ACK_COMMENT, "value"),
    prevent_initial_call=True,
)
@secured(EDIT_ALERTS)
def submit_acknowledge(n_clicks, alert_id, comment):
    """Acknowledge with a comment; a clear message when the alert changed meanwhile."""
    if not n_clicks or not alert_id:
        raise PreventUpdate
    context = get_context()
    account = current_account()
    lang = request_language()
    if not (comment or "").strip():
        return False, t("alerts.error.comment_required", lang), no_update, no_update
    try:
        acknowledge_alert(
            context.app_db,
            str(alert_id),
            actor=account.username,
            comment=str(comment)[:2000],
            now=context.now(),
            scope=account.scope,
            address=request.remote_addr,
        )
    except LookupError:
        return False, t("alerts.error.alert_not_found", lang), no_update, no_update
    except TransitionError as error:
        return False, t(f"alerts.error.{error.reason}", lang), ticker_for(context, account, lang), None
    return True, "", ticker_for(context, account, lang), None


@callback(
    Output(ids.ALERT_ACK_PANEL, "hidden", allow_duplicate=True),
    Input(ids.ALERT_ACK_CANCEL, "n_clicks"),
    prevent_initial_call=True,
)
@secured(VIEW)
def cancel_acknowledge(n_clicks):
    """Close the dialog."""
    if not n_clicks:
        raise PreventUpdate
    return True
