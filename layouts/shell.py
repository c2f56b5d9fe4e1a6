"""The app shell: header with navigation, freshness badge and language switch around the page."""

from __future__ import annotations

from dash import dcc, html

from layouts import ids
from layouts.alert_banner import alert_banner
from layouts.i18n import LANGUAGES, t

CLOCK_TICK_MS = 1000


def navigation(items: list[tuple[str, str]], current_path: str) -> list:
    """Links for the pages the account may open (``items`` are (href, label))."""
    return [
        dcc.Link(label, href=href, className="nav-link active" if href == current_path else "nav-link")
        for href, label in items
    ]


def logout_form(lang: str, csrf_token: str) -> html.Form:
    """Logout is a POST carrying the CSRF token (a link could be triggered by any other site)."""
    return html.Form(
        html.Button(
            t("nav.logout", lang), id=ids.LOGOUT, type="submit", name="csrf_token", value=csrf_token, className="logout"
        ),
        action="/logout",
        method="post",
        className="logout-form",
    )


def shell(lang: str, user_label: str, refresh_seconds: int, csrf_token: str = "") -> html.Div:
    """The frame every page renders inside; page content goes to ``ids.PAGE``."""
    return html.Div(
        [
            dcc.Location(id=ids.URL, refresh=False),
            dcc.Store(id=ids.LANGUAGE_STORE, data=lang),
            dcc.Store(id=ids.VERSIONS, data={}),
            dcc.Store(id=ids.FRESHNESS_STORE, data={}),
            dcc.Interval(id=ids.REFRESH, interval=refresh_seconds * 1000),
            dcc.Interval(id=ids.CLOCK_TICK, interval=CLOCK_TICK_MS),
            html.Header(
                [
                    html.Div(t("app.title", lang), className="brand"),
                    html.Nav(id=ids.NAV, className="nav"),
                    html.Div(
                        [
                            html.Span(
                                t("freshness.unknown", lang),
                                id=ids.FRESHNESS_BADGE,
                                className="freshness unknown",
                                role="status",
                                **{"aria-live": "polite"},
                            ),
                            html.Nav(
                                [
                                    html.A(
                                        t(f"lang_short.{code}", lang),
                                        href=f"/lang/{code}",
                                        title=t(f"lang.{code}", lang),
                                        className="active" if code == lang else "",
                                    )
                                    for code in LANGUAGES
                                ],
                                id=ids.LANGUAGE,
                                className="language-switch",
                            ),
                            html.Span(user_label, id=ids.USER_NAME, className="user-name"),
                            logout_form(lang, csrf_token),
                        ],
                        className="header-right",
                    ),
                ],
                className="app-header",
            ),
            html.Div(id=ids.UNAVAILABLE, className="unavailable", role="alert"),
            # alerts: active alerts on every page (filled by dashboards/alerts/banner.py)
            alert_banner(lang),
            html.Main(id=ids.PAGE, className="page"),
        ],
        className="app",
        lang=lang,
    )
